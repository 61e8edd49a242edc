"""``kilnflow session``: the recorded runs of a project or of installed packages."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

__all__ = ["session"]


def _store() -> Any:
    """The project's store inside a project, else the one packaged runs write to.

    ``$KILNFLOW_STORE`` (or the project's ``SESSION_STORE_URL``) names a
    shared store instead; the store says where it is, password hidden.
    """
    from kilnflow.project import bootstrap_project, find_project_root
    from kilnflow.session import history_store

    root = find_project_root(Path.cwd())
    if root is not None:
        bootstrap_project(root)
    return history_store(root)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


OUTCOMES = ("success", "failed", "running", "lost", "interrupted", "not run")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    del ctx, param
    if value is None:
        return None
    from kilnflow.cli._history import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
def session() -> None:
    """List, show, compare and rerun recorded sessions."""


@session.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--pipeline", help="Only sessions that ran this pipeline.")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="Only sessions with this outcome.")
@click.option(
    "--since",
    callback=_since,
    help="Only sessions started since a date (2026-12-01), a time (2026-12-01T09:30, "
    "local) or a time ago (30m, 12h, 7d, 2w).",
)
@click.option("--dag-run", help="Only the task sessions of this Airflow DAG run id.")
def list_sessions(
    limit: int,
    pipeline: str | None,
    outcome: str | None,
    since: datetime | None,
    dag_run: str | None,
) -> None:
    """Recent sessions, newest first, one a line; failed runs name their failed node.

    Which store is read goes to stderr, so the lines stay easy to script.
    """
    from kilnflow.cli._history import list_line

    with _store() as store:
        rows = store.summaries(
            limit, pipeline=pipeline, outcome=outcome, since=since, dag_run=dag_run
        )
    click.echo(f"Sessions in {store.location}", err=True)
    if rows:
        for row in rows:
            click.echo(list_line(row))
    elif dag_run:
        click.echo(f"No sessions of {dag_run}.")
    elif pipeline or outcome or since:
        click.echo("No sessions match these filters.")
    else:
        click.echo("No sessions recorded yet.")


@session.command("show")
@click.argument("session_id")
@click.option("--json", "as_json", is_flag=True, help="The raw record, as stored.")
def show_session(session_id: str, as_json: bool) -> None:
    """A session as tables: identity, parameters, nodes and failure (a unique id prefix will do)."""
    with _store() as store:
        record = store.find(session_id)
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
        return
    from kilnflow.cli._history import render_show

    render_show(record, _console())


@session.command("diff")
@click.argument("first")
@click.argument("second")
def diff_sessions(first: str, second: str) -> None:
    """Two sessions side by side: identity, parameters, environment, versions, build, nodes."""
    from kilnflow.cli._history import render_diff

    with _store() as store:
        records = store.find(first), store.find(second)
    render_diff(*records, _console())


@session.command("rerun")
@click.argument("session_id")
def rerun_session(session_id: str) -> None:
    """Repeat a session's command line, from the folder it ran in."""
    from kilnflow._redact import REDACTED
    from kilnflow.errors import SessionError

    with _store() as store:
        record = store.find(session_id)
    cli = record.get("cli")
    if not cli:
        raise SessionError(
            f"Session {record['session_id']} was not started from the command line, so there "
            "is no command to repeat; 'kilnflow session show' lists its run arguments."
        )
    module = "kilnflow" if cli["command"] == "kilnflow" else record["package_name"]
    command = [sys.executable, "-m", module, *cli["args"]]
    if any(REDACTED in argument for argument in cli["args"]):
        raise SessionError(
            f"Session {record['session_id']} was given secret values, recorded as {REDACTED}, "
            f"so repeating it would run without them; run '{shlex.join(command[2:])}' with the "
            f"values in place of {REDACTED}, or move them to credentials."
        )
    cwd = record.get("cwd")
    if cwd is not None and not Path(cwd).is_dir():
        raise SessionError(
            f"Session {record['session_id']} ran in {cwd}, which no longer exists; recreate "
            f"that folder, or run '{shlex.join(command[2:])}' from where it should run."
        )
    click.echo(f"Rerunning {record['session_id']}: {shlex.join(command[2:])}", err=True)
    environment = {**os.environ, "KILNFLOW_RERUN_OF": record["session_id"]}
    # The session's own environment, not whatever KILNFLOW_ENV this shell has now.
    environment.pop("KILNFLOW_ENV", None)
    if record.get("env"):
        environment["KILNFLOW_ENV"] = record["env"]
    completed = subprocess.run(command, cwd=cwd, env=environment, check=False)
    if completed.returncode:
        raise SystemExit(completed.returncode)
