"""Readable history: ``kilnflow session show``, ``list`` filters and ``diff``, as users run them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import new_project, run_cli, session_ids

NODES = Path("src") / "demo" / "pipelines" / "readings" / "nodes.py"


def _break_summarise(project: Path) -> str:
    nodes = project / NODES
    source = nodes.read_text()
    nodes.write_text(source.replace('"""Count, mean', 'raise KeyError("station")\n    """', 1))
    return source


def test_show_renders_identity_params_nodes_and_the_failure(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    _break_summarise(project)
    run_cli("run", "--params", "min_valid=1,db_password=hunter2", cwd=project, check=False)
    (session_id,) = session_ids(project)

    shown = run_cli("session", "show", session_id[:22], cwd=project).stdout
    raw = json.loads(run_cli("session", "show", "--json", session_id, cwd=project).stdout)

    assert f"Session {session_id}" in shown
    for field, value in [
        ("project", "demo"),
        ("mode", "project"),
        ("pipeline", "__default__"),
        ("outcome", "failed"),
    ]:
        assert any(field in line and value in line for line in shown.splitlines()), field
    assert "db_password" in shown
    assert "***" in shown
    assert "hunter2" not in shown
    nodes = shown[shown.index("Nodes, in run order") :]
    assert nodes.index("clean") < nodes.index("summarise")
    assert any("summarise" in line and "failed" in line for line in nodes.splitlines())
    assert "Failure: kilnflow.errors.NodeFailedError" in shown
    assert "Traceback (most recent call last)" in shown
    assert "KeyError: 'station'" in shown
    assert raw["session_id"] == session_id
    assert raw["exception"]["node"] == "summarise"


def test_list_filters_by_pipeline_outcome_and_time(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", cwd=project)
    run_cli("run", "--pipeline", "readings", "--nodes", "clean", cwd=project)
    _break_summarise(project)
    run_cli("run", cwd=project, check=False)
    failed, readings, default = session_ids(project)

    def listed(*options: str) -> list[str]:
        return run_cli("session", "list", *options, cwd=project).stdout.splitlines()

    (line,) = listed("--pipeline", "readings")
    assert line.split()[0] == readings
    (line,) = listed("--outcome", "failed")
    assert line.split()[0] == failed
    assert line.endswith("failed at summarise")
    assert [line.split()[0] for line in listed("--outcome", "success")] == [readings, default]
    assert len(listed("--since", "1h")) == 3
    assert listed("--since", "2999-01-01") == ["No sessions match these filters."]
    assert listed("--pipeline", "readings", "--outcome", "failed") == [
        "No sessions match these filters."
    ]
    bad = run_cli("session", "list", "--since", "last tuesday", cwd=project, check=False)
    assert bad.returncode == 2
    assert "Invalid value for '--since'" in bad.stderr
    assert "30m, 12h, 7d" in bad.stderr


def test_diff_puts_two_runs_side_by_side(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", "--params", "min_valid=0", cwd=project)
    run_cli("run", "--params", "min_valid=11", cwd=project, env={"KILNFLOW_TEAM": "ops"})
    newer, older = session_ids(project)

    diff = run_cli("session", "diff", older, newer[:24], cwd=project).stdout
    rows = [line for line in diff.splitlines() if "│" in line]

    def row(field: str) -> str:
        return next(line for line in rows if f"│ {field} " in line)

    assert f"A = {older}" in diff
    assert f"B = {newer}" in diff
    assert "≠" in row("min_valid")
    assert "0" in row("min_valid")
    assert "11" in row("min_valid")
    assert "≠" in row("KILNFLOW_TEAM")
    assert "ops" in row("KILNFLOW_TEAM")
    assert "≠" not in row("kilnflow")  # same Kilnflow version on both sides
    for node in ("clean", "summarise", "report"):
        assert len(re.findall(r"\d\.\d+s ", row(node))) == 2  # a duration in each column
