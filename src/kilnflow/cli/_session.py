"""``kilnflow session``: the recorded runs of a project or of installed packages."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["session"]


def _store() -> Any:
    """The project's store inside a project, else the one packaged runs write to."""
    from kilnflow.project import bootstrap_project, find_project_root
    from kilnflow.session import SQLiteStore, default_store_dir, make_store

    root = find_project_root(Path.cwd())
    if root is None:
        return SQLiteStore(default_store_dir(None), session_id="")
    bootstrap_project(root)
    return make_store(root)


# Sessions read when filtering, newest first: far more than a store holds in practice.
_ALL = 1_000_000


@click.group()
def session() -> None:
    """List, show and rerun recorded sessions."""


@session.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--dag-run", help="Only the task sessions of this Airflow DAG run id.")
def list_sessions(limit: int, dag_run: str | None) -> None:
    """Recent sessions, newest first; Airflow task sessions show their DAG run."""
    store = _store()
    if dag_run:
        records = [
            record
            for record in store.sessions(_ALL)
            if (record.get("airflow") or {}).get("run_id") == dag_run
        ][:limit]
    else:
        records = store.sessions(limit)
    if not records:
        click.echo("No sessions recorded yet." if not dag_run else f"No sessions of {dag_run}.")
        return
    for record in records:
        run = record.get("run") or {}
        seconds = record.get("run_seconds")
        took = f"{seconds:.2f}s" if isinstance(seconds, (int, float)) else "-"
        airflow = record.get("airflow") or {}
        task = f"  airflow={airflow.get('run_id')}/{airflow.get('task_id')}" if airflow else ""
        click.echo(
            f"{record['session_id']}  {record.get('outcome', '?'):<8} "
            f"{record.get('package_name')}  pipeline={run.get('pipeline_name', '-')}  "
            f"env={record.get('env') or '-'}  {took}{task}"
        )


@session.command("show")
@click.argument("session_id")
def show_session(session_id: str) -> None:
    """Everything recorded about a session (a unique prefix of its id will do)."""
    click.echo(json.dumps(_store().find(session_id), indent=2, sort_keys=True))


@session.command("rerun")
@click.argument("session_id")
def rerun_session(session_id: str) -> None:
    """Repeat a session's command line, from the folder it ran in."""
    from kilnflow.errors import SessionError

    record = _store().find(session_id)
    cli = record.get("cli")
    if not cli:
        raise SessionError(
            f"Session {record['session_id']} was not started from the command line, so there "
            "is no command to repeat; 'kilnflow session show' lists its run arguments."
        )
    module = "kilnflow" if cli["command"] == "kilnflow" else record["package_name"]
    command = [sys.executable, "-m", module, *cli["args"]]
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
