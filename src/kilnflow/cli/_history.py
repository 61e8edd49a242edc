"""Run history for people: a session as tables, two sessions side by side.

Records are read as stored; anything that looks secret is redacted again
before it is shown, so a record written by an older Kilnflow, or a hook
that stored a value in clear, still shows nothing secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kilnflow._redact import redact_values

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["list_line", "parse_since", "render_diff", "render_show"]

_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> datetime:
    """A point in time from ``2026-12-01``, ``2026-12-01T09:30`` (local time) or ``12h`` ago.

    Raises ValueError with the forms it takes.
    """
    ago = _AGO.fullmatch(text.strip())
    if ago:
        amount, unit = ago.groups()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date (2026-12-01), a time (2026-12-01T09:30) nor a time "
            "ago (30m, 12h, 7d, 2w)."
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:.3f}s" if value < 1 else f"{value:.2f}s"


def list_line(row: Mapping[str, Any]) -> str:
    """One session summary as one line: id first, so scripts can cut it."""
    task = f"  airflow={row['dag_run']}/{row['task_id']}" if row.get("dag_run") else ""
    failed = f"  failed at {row['failed_node']}" if row.get("failed_node") else ""
    return (
        f"{row['session_id']}  {row.get('outcome') or '?':<8} {row.get('package_name')}  "
        f"pipeline={row.get('pipeline_name') or '-'}  env={row.get('env') or '-'}  "
        f"{_seconds(row.get('run_seconds'))}{task}{failed}"
    )


def _duration(record: Mapping[str, Any]) -> str:
    if isinstance(record.get("run_seconds"), (int, float)):
        return _seconds(record["run_seconds"])
    try:
        start = datetime.fromisoformat(record["started_at"])
        end = datetime.fromisoformat(record["ended_at"])
    except (KeyError, TypeError, ValueError):
        return "-"
    return _seconds((end - start).total_seconds())


def _git(record: Mapping[str, Any]) -> str:
    git = record.get("git") or {}
    if not git.get("commit"):
        return "-"
    dirty = " (dirty)" if git.get("dirty") else ""
    return f"{git['commit'][:12]} {git.get('branch') or 'detached'}{dirty}"


def _build(record: Mapping[str, Any]) -> str:
    build = record.get("build")
    if not build:
        return "- (project mode)" if record.get("mode") == "project" else "-"
    return " ".join(f"{key}={value}" for key, value in sorted(_flat(build)))


def _flat(values: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, value)`` for every leaf of nested mappings."""
    if not isinstance(values, Mapping):
        yield prefix.rstrip("."), values
    elif not values and prefix:
        yield prefix.rstrip("."), {}
    for key, value in values.items() if isinstance(values, Mapping) else ():
        yield from _flat(value, f"{prefix}{key}.")


def _identity(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    run = record.get("run") or {}
    project = record.get("package_name") or "-"
    if record.get("project_path"):
        project += f" ({record['project_path']})"
    return [
        ("id", str(record.get("session_id"))),
        ("project", project),
        ("mode", str(record.get("mode") or "-")),
        ("env", str(record.get("env") or "-")),
        ("pipeline", str(run.get("pipeline_name") or "-")),
        ("outcome", str(record.get("outcome") or "-")),
        ("duration", _duration(record)),
        ("started", str(record.get("started_at") or "-")),
        ("git", _git(record)),
        ("build", _build(record)),
        ("host", f"{record.get('host') or '-'} pid {record.get('pid') or '-'}"),
    ]


def _nodes(record: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Nodes in the order they finished, then the one that failed."""
    rows = [
        (name, _seconds(seconds), "success")
        for name, seconds in (record.get("node_durations") or {}).items()
    ]
    failed = (record.get("exception") or {}).get("node")
    if failed:
        rows = [row for row in rows if row[0] != failed]
        rows.append((failed, "-", "failed"))
    return rows


def render_show(record: Mapping[str, Any], console: Console) -> None:
    """A session as tables: identity, parameters, nodes, and its failure."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    identity = Table(title=f"Session {record.get('session_id')}", show_header=False)
    identity.add_column(style="bold")
    identity.add_column(overflow="fold")
    for key, value in _identity(record):
        identity.add_row(key, Text(value))
    console.print(identity)

    params = sorted(_flat(redact_values(record.get("extra_params") or {})))
    if params:
        table = Table(title="Runtime parameters")
        table.add_column("parameter")
        table.add_column("value", overflow="fold")
        for key, value in params:
            table.add_row(key, Text(repr(value) if not isinstance(value, str) else value))
        console.print(table)

    nodes = _nodes(record)
    if nodes:
        table = Table(title="Nodes, in run order")
        table.add_column("node")
        table.add_column("duration", justify="right")
        table.add_column("outcome")
        for name, took, outcome in nodes:
            table.add_row(name, took, Text(outcome, style="red" if outcome == "failed" else ""))
        console.print(table)

    exception = record.get("exception")
    if exception:
        title = f"{exception.get('type')}: {exception.get('message')}"
        console.print(
            Panel(
                Text(str(exception.get("traceback") or title).rstrip()),
                title=Text(f"Failure: {title}"),
                title_align="left",
                border_style="red",
            )
        )


def _side_by_side(
    a: Mapping[str, Any], b: Mapping[str, Any]
) -> Iterator[tuple[str, str, str, str, bool]]:
    """``(section, key, value in A, value in B, differs)`` for every compared field."""
    sections = {
        "identity": (dict(_identity(a)), dict(_identity(b))),
        "params": (
            dict(_flat(redact_values(a.get("extra_params") or {}))),
            dict(_flat(redact_values(b.get("extra_params") or {}))),
        ),
        "environment": (
            redact_values(a.get("environment") or {}),
            redact_values(b.get("environment") or {}),
        ),
        "versions": (a.get("versions") or {}, b.get("versions") or {}),
        "build": (dict(_flat(a.get("build") or {})), dict(_flat(b.get("build") or {}))),
        "node seconds": (a.get("node_durations") or {}, b.get("node_durations") or {}),
    }
    for section, (left, right) in sections.items():
        for key in [*left, *(k for k in right if k not in left)]:
            if section == "identity" and key in ("id", "started"):
                continue
            one, two = left.get(key, "-"), right.get(key, "-")
            if section == "node seconds":
                shown = _seconds(one), _seconds(two)
            else:
                shown = str(one), str(two)
            yield section, key, *shown, shown[0] != shown[1]


def render_diff(a: Mapping[str, Any], b: Mapping[str, Any], console: Console) -> None:
    """Two sessions side by side; rows that differ are marked and highlighted."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"A = {a.get('session_id')}   B = {b.get('session_id')}")
    for header in ("", "section", "field", "A", "B"):
        table.add_column(header, overflow="fold")
    for section, key, one, two, differs in _side_by_side(a, b):
        style = "yellow" if differs else ""
        table.add_row("≠" if differs else "", section, key, Text(one, style), Text(two, style))
    console.print(table)
