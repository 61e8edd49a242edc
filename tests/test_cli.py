"""The ``kilnflow`` command as users run it: a subprocess, in projects made by ``kilnflow new``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SCRIPTS,
    error_line,
    new_project,
    run_cli,
    run_concurrently,
    run_project_tests,
    session_ids,
    show,
)
from kilnflow import __version__

REPORT = """\
Station report

east     n=2   mean=10.10 min=9.80 max=10.40
north    n=2   mean=12.80 min=12.50 max=13.10
south    n=3   mean=18.27 min=17.60 max=19.00
"""

# The report with readings below 11 dropped: east has none left.
REPORT_MIN_11 = """\
Station report

north    n=2   mean=12.80 min=12.50 max=13.10
south    n=3   mean=18.27 min=17.60 max=19.00
"""

SUMMARY = {
    "east": {"count": 2, "mean": pytest.approx(10.1), "min": 9.8, "max": 10.4},
    "north": {"count": 2, "mean": pytest.approx(12.8), "min": 12.5, "max": 13.1},
    "south": {"count": 3, "mean": pytest.approx(18.2667, abs=1e-4), "min": 17.6, "max": 19.0},
}

ALL_NODES = {"clean", "summarise", "report"}


def summary_file(project: Path) -> Path:
    return project / "data" / "processed" / "station_summary.json"


def report_file(project: Path) -> Path:
    return project / "data" / "reporting" / "report.txt"


def nodes_py(project: Path, package: str = "demo") -> Path:
    return project / "src" / package / "pipelines" / "readings" / "nodes.py"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def empty(folder: Path) -> bool:
    """True when ``folder`` is missing or holds nothing (no partial or temporary files)."""
    return not folder.exists() or not any(folder.iterdir())


def latest(project: Path) -> dict[str, Any]:
    return show(project, session_ids(project)[0])


# --- kilnflow new ------------------------------------------------------------


def test_new_then_run_produces_the_example_outputs(tmp_path: Path) -> None:
    result = run_cli("new", "demo", cwd=tmp_path)
    project = tmp_path / "demo"
    assert result.stdout.splitlines() == [
        f"Created {project}",
        f"Next: cd {project} && kilnflow run",
    ]
    for relative in (
        "pyproject.toml",
        "README.md",
        ".gitignore",
        "conf/base/catalog.yml",
        "conf/base/parameters.yml",
        "conf/local/.gitkeep",
        "data/raw/readings.json",
        "src/demo/__init__.py",
        "src/demo/settings.py",
        "src/demo/pipeline_registry.py",
        "src/demo/pipelines/readings/nodes.py",
        "tests/test_pipeline.py",
    ):
        assert (project / relative).is_file(), relative
    assert not list(project.rglob("*.jinja"))
    pyproject = (project / "pyproject.toml").read_text()
    assert 'package_name = "demo"' in pyproject
    assert f'kilnflow_version = "{__version__}"' in pyproject

    run = run_cli("run", cwd=project)

    assert json.loads(summary_file(project).read_text()) == SUMMARY
    assert report_file(project).read_text() == REPORT
    assert "Completed node 3 of 3: report" in run.stderr


def test_new_project_passes_its_own_tests(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    result = run_project_tests(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_new_turns_dashes_into_underscores_in_the_package(tmp_path: Path) -> None:
    project = new_project(tmp_path, "sales-forecast")

    assert (project / "src" / "sales_forecast" / "pipeline_registry.py").is_file()
    pyproject = (project / "pyproject.toml").read_text()
    assert 'package_name = "sales_forecast"' in pyproject
    assert 'project_name = "sales-forecast"' in pyproject
    assert 'sales-forecast = "sales_forecast.__main__:main"' in pyproject
    run_cli("run", cwd=project)
    assert report_file(project).read_text() == REPORT


def test_new_into_an_empty_directory(tmp_path: Path) -> None:
    target = tmp_path / "here"
    target.mkdir()

    run_cli("new", "demo", "--directory", str(target), cwd=tmp_path)

    assert 'package_name = "demo"' in (target / "pyproject.toml").read_text()
    assert sorted(os.listdir(tmp_path)) == ["here"]


def test_new_without_example(tmp_path: Path) -> None:
    project = new_project(tmp_path, "demo", "--no-example")

    assert not (project / "data" / "raw" / "readings.json").exists()
    assert not (project / "src" / "demo" / "pipelines" / "readings").exists()
    assert (project / "src" / "demo" / "pipeline_registry.py").is_file()
    assert "readings" not in (project / "conf" / "base" / "catalog.yml").read_text()
    assert "from demo.pipelines" not in (project / "tests" / "test_pipeline.py").read_text()
    assert run_cli("pipeline", "list", cwd=project).stdout == "__default__  (0 nodes)\n"
    run_cli("run", cwd=project)
    assert not (project / "data" / "reporting").exists()


@pytest.mark.parametrize("where", ["NAME", "--directory"])
def test_new_refuses_a_non_empty_directory(tmp_path: Path, where: str) -> None:
    existing = tmp_path / "demo"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    args = ["new", "demo"] if where == "NAME" else ["new", "other", "--directory", "demo"]

    line = error_line(run_cli(*args, cwd=tmp_path, check=False))

    assert str(existing) in line
    assert "not empty" in line
    assert sorted(os.listdir(tmp_path)) == ["demo"]
    assert os.listdir(existing) == ["notes.txt"]
    assert (existing / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("name", "explains"),
    [
        ("1demo", "starting with a letter"),
        ("my demo", "letters, digits"),
        ("class", "class"),
        ("json", "shadows"),
    ],
)
def test_new_rejects_invalid_names(tmp_path: Path, name: str, explains: str) -> None:
    line = error_line(run_cli("new", name, cwd=tmp_path, check=False))

    assert repr(name) in line
    assert explains in line
    assert os.listdir(tmp_path) == []


def test_new_explains_that_a_keyword_cannot_name_a_package(tmp_path: Path) -> None:
    line = error_line(run_cli("new", "class", cwd=tmp_path, check=False))

    assert "keyword" in line


# --- kilnflow run ------------------------------------------------------------


def test_run_params_override_parameters(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    run_cli("run", "--params", "min_valid=11,report.title=Weekly report", cwd=project)

    assert report_file(project).read_text() == REPORT_MIN_11.replace(
        "Station report", "Weekly report"
    )
    assert set(json.loads(summary_file(project).read_text())) == {"north", "south"}


def test_run_env_overrides_base_configuration(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    prod = project / "conf" / "prod"
    prod.mkdir()
    (prod / "parameters.yml").write_text("min_valid: 11\n")
    (prod / "catalog.yml").write_text(
        "report:\n  type: TextDataset\n  filepath: data/reporting/prod_report.txt\n"
    )

    run_cli("run", "--env", "prod", cwd=project)

    assert (project / "data" / "reporting" / "prod_report.txt").read_text() == REPORT_MIN_11
    assert not report_file(project).exists()
    assert latest(project)["env"] == "prod"


def test_run_unknown_env_lists_the_existing_ones(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    (project / "conf" / "prod").mkdir()

    line = error_line(run_cli("run", "--env", "missing", cwd=project, check=False))

    assert "'missing'" in line
    assert "base, local, prod" in line
    assert not (project / "data" / "processed").exists()


@pytest.mark.parametrize(
    ("args", "ran"),
    [
        (["--nodes", "clean,summarise"], {"clean", "summarise"}),
        (["--nodes", "clean", "--nodes", "summarise"], {"clean", "summarise"}),
        (["--to-nodes", "summarise"], {"clean", "summarise"}),
        (["--to-outputs", "station_summary"], {"clean", "summarise"}),
        (["--tags", "readings"], ALL_NODES),
    ],
    ids=" ".join,
)
def test_run_filters_select_nodes(tmp_path: Path, args: list[str], ran: set[str]) -> None:
    project = new_project(tmp_path)

    run_cli("run", *args, cwd=project)

    record = latest(project)
    assert set(record["node_durations"]) == ran
    assert summary_file(project).exists()
    assert report_file(project).exists() == ("report" in ran)


def test_run_tags_of_a_single_node(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    edit(
        project / "src" / "demo" / "pipelines" / "readings" / "__init__.py",
        'name="report")',
        'name="report", tags="reporting")',
    )
    run_cli("run", cwd=project)
    report_file(project).unlink()
    summary_file(project).write_text('{"west": {"count": 1, "mean": 1, "min": 1, "max": 1}}')

    run_cli("run", "--tags", "reporting", cwd=project)

    assert set(latest(project)["node_durations"]) == {"report"}
    assert report_file(project).read_text() == (
        "Station report\n\nwest     n=1   mean=1.00 min=1.00 max=1.00\n"
    )


def test_run_unknown_tag_is_one_clear_line(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    line = error_line(run_cli("run", "--tags", "nope", cwd=project, check=False))

    assert "'nope'" in line


def test_run_from_nodes_reuses_persisted_inputs(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", cwd=project)
    report_file(project).unlink()

    run_cli("run", "--from-nodes", "report", cwd=project)

    assert set(latest(project)["node_durations"]) == {"report"}
    assert report_file(project).read_text() == REPORT


def test_run_from_inputs(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", cwd=project)
    report_file(project).unlink()

    run_cli("run", "--from-inputs", "station_summary", cwd=project)

    assert set(latest(project)["node_durations"]) == {"report"}
    assert report_file(project).read_text() == REPORT


def test_run_conf_source_replaces_the_project_configuration(tmp_path: Path) -> None:
    import shutil

    project = new_project(tmp_path)
    alternative = tmp_path / "alt-conf"
    shutil.copytree(project / "conf", alternative)
    (alternative / "base" / "parameters.yml").write_text(
        "min_valid: 11\nreport:\n  title: Station report\n  decimals: 2\n"
    )

    run_cli("run", "--conf-source", str(alternative), cwd=project)

    assert report_file(project).read_text() == REPORT_MIN_11
    assert latest(project)["conf_source"] == str(alternative)


@pytest.mark.parametrize("runner", ["sequential", "kilnflow.runner.SequentialRunner"])
def test_run_runner_by_name_or_class_path(tmp_path: Path, runner: str) -> None:
    project = new_project(tmp_path)

    run_cli("run", "--runner", runner, cwd=project)

    assert latest(project)["run"]["runner"] == "SequentialRunner"
    assert report_file(project).read_text() == REPORT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runner", "nope"], "Unknown runner 'nope'."),
        (["--runner", "os.path"], "Runner 'os.path' is not a subclass"),
        (["--nodes", "nope"], "'nope' is not a node"),
        (["--namespace", "nope"], "'nope' is not a namespace"),
        (["--load-versions", "report:2020"], "dataset 'report', which is not versioned"),
        (["--conf-source", "missing-conf"], "'missing-conf' does not exist"),
    ],
    ids=" ".join,
)
def test_run_bad_option_values_are_one_clear_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    project = new_project(tmp_path)

    result = run_cli("run", *args, cwd=project, check=False)

    assert result.returncode == 1
    assert message in error_line(result)
    assert empty(project / "data" / "processed")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--params", "min_valid"], "Invalid value for '--params': 'min_valid' is not key=value"),
        (
            ["--load-versions", "report"],
            "Invalid value for '--load-versions': 'report' is not dataset:version",
        ),
        (["--nodes"], "Option '--nodes' requires an argument."),
        (["--bogus"], "No such option '--bogus'."),
    ],
    ids=" ".join,
)
def test_run_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    project = new_project(tmp_path)

    result = run_cli("run", *args, cwd=project, check=False)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {message}")
    assert session_ids(project) == []


def test_run_unknown_pipeline_is_one_line_without_traceback(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    result = run_cli("run", "--pipeline", "reading", cwd=project, check=False)

    assert result.returncode == 1
    line = error_line(result)
    assert "Pipeline 'reading' is not registered." in line
    assert "Did you mean 'readings'?" in line
    assert "__default__, readings" in line


@pytest.mark.parametrize("args", [["--verbose", "run"], ["run", "--verbose"], ["-v", "run"]])
def test_run_verbose_shows_the_traceback(tmp_path: Path, args: list[str]) -> None:
    project = new_project(tmp_path)

    result = run_cli(*args, "--pipeline", "nope", cwd=project, check=False)

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "kilnflow.errors.PipelineError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Pipeline 'nope'")


def test_run_failing_node_names_it_and_prints_how_to_resume(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    source = nodes_py(project).read_text()
    edit(
        nodes_py(project),
        '    places = options["decimals"]',
        '    raise RuntimeError("report exploded")',
    )

    result = run_cli("run", "--params", "min_valid=11", cwd=project, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Node 'report' failed with RuntimeError: report exploded" in result.stderr
    (resume,) = [
        line.removeprefix("To resume: ")
        for line in result.stderr.splitlines()
        if line.startswith("To resume: ")
    ]
    assert shlex.split(resume) == [
        "kilnflow",
        "run",
        "--params",
        "min_valid=11",
        "--from-nodes",
        "report",
    ]
    assert json.loads(summary_file(project).read_text())["north"]["count"] == 2
    assert empty(report_file(project).parent)

    record = latest(project)
    assert record["outcome"] == "failed"
    assert record["exception"]["type"] == "kilnflow.errors.NodeFailedError"
    assert "Node 'report'" in record["exception"]["message"]
    assert "RuntimeError: report exploded" in record["exception"]["traceback"]
    assert str(nodes_py(project)) in record["exception"]["traceback"]

    nodes_py(project).write_text(source)
    run_cli(*shlex.split(resume)[1:], cwd=project)

    assert set(latest(project)["node_durations"]) == {"report"}
    assert report_file(project).read_text() == REPORT_MIN_11


def test_run_failing_node_resumes_from_the_last_persisted_input(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    edit(
        nodes_py(project),
        "    by_station: dict[str, list[float]] = {}",
        '    raise ValueError("bad station")',
    )

    result = run_cli("run", cwd=project, check=False)

    assert result.returncode == 1
    assert "Node 'summarise' failed with ValueError: bad station" in result.stderr
    assert "To resume: kilnflow run --from-nodes clean" in result.stderr.splitlines()
    assert empty(project / "data" / "processed")
    assert empty(project / "data" / "reporting")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_run_killed_midway_leaves_a_lost_record_that_can_be_rerun(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    source = nodes_py(project).read_text()
    edit(
        nodes_py(project),
        '    places = options["decimals"]',
        "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)",
    )

    result = run_cli("run", "--params", "min_valid=11", cwd=project, check=False)

    assert result.returncode == -9
    (killed,) = session_ids(project)
    record = show(project, killed)
    assert record["outcome"] == "lost"  # its process is gone: not "running" forever
    assert record["cli"]["args"] == ["run", "--params", "min_valid=11"]
    assert not report_file(project).exists()

    nodes_py(project).write_text(source)
    run_cli("session", "rerun", killed, cwd=project)

    assert latest(project)["outcome"] == "success"
    assert report_file(project).read_text() == REPORT_MIN_11


def test_run_from_a_subdirectory_writes_into_the_project(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    below = project / "src" / "demo" / "pipelines"

    run_cli("run", cwd=below)

    assert report_file(project).read_text() == REPORT
    assert not (below / "data").exists()
    assert latest(project)["cwd"] == str(below)


@pytest.mark.parametrize("command", [["run"], ["pipeline", "list"], ["catalog", "list"]])
def test_commands_outside_a_project_say_how_to_get_one(tmp_path: Path, command: list[str]) -> None:
    line = error_line(run_cli(*command, cwd=tmp_path, check=False))

    assert f"No Kilnflow project in {tmp_path} or its parents" in line
    assert "kilnflow new NAME" in line
    assert os.listdir(tmp_path) == []


# --- info, pipeline, catalog -------------------------------------------------


def test_info_in_a_project(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    out = run_cli("info", cwd=project).stdout

    assert out.splitlines() == [
        f"Kilnflow {__version__} (Python {sys.version.split()[0]})",
        f"Project:  demo ({project})",
        f"Package:  demo (source: {project / 'src'})",
        "Pipelines: __default__, readings",
    ]


def test_info_outside_a_project(tmp_path: Path) -> None:
    out = run_cli("info", cwd=tmp_path).stdout

    assert out.splitlines()[1:] == ["No project in this folder or its parents."]


def test_info_installed_lists_packaged_projects(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = site / "weather_report-1.2.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: weather-report\nVersion: 1.2.3\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[kilnflow.projects]\nweather_report = weather_report\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = run_cli("info", "--installed", cwd=elsewhere, env={"PYTHONPATH": str(site)}).stdout

    lines = out.splitlines()
    installed = lines[lines.index("Installed projects:") + 1 :]
    assert "  weather_report 1.2.3  (run: python -m weather_report)" in installed


def test_info_works_with_a_broken_pipeline_registry(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    (project / "src" / "demo" / "pipeline_registry.py").write_text("import no_such_module\n")

    out = run_cli("info", cwd=project).stdout

    (line,) = [line for line in out.splitlines() if line.startswith("Pipelines:")]
    assert "cannot be loaded" in line
    assert "no_such_module" in line


def test_pipeline_list_and_describe(tmp_path: Path) -> None:
    project = new_project(tmp_path)

    assert run_cli("pipeline", "list", cwd=project).stdout == (
        "__default__  (3 nodes)\nreadings  (3 nodes)\n"
    )
    described = [
        "clean: readings, params:min_valid -> clean_readings",
        "summarise: clean_readings -> station_summary",
        "report: station_summary, params:report -> report",
    ]
    assert run_cli("pipeline", "describe", cwd=project).stdout.splitlines() == described
    assert run_cli("pipeline", "describe", "readings", cwd=project).stdout.splitlines() == (
        described
    )
    line = error_line(run_cli("pipeline", "describe", "reading", cwd=project, check=False))
    assert "Did you mean 'readings'?" in line


def test_catalog_list(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    expected = [
        "clean_readings: MemoryDataset (undeclared)",
        "readings: JSONDataset",
        "report: TextDataset",
        "station_summary: JSONDataset",
    ]

    assert run_cli("catalog", "list", cwd=project).stdout.splitlines() == expected
    assert run_cli("catalog", "list", "-p", "readings", cwd=project).stdout.splitlines() == (
        expected
    )
    assert session_ids(project) == []


# --- the session store -------------------------------------------------------


def test_session_store_after_a_cli_run(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    secrets = {
        "KILNFLOW_API_TOKEN": "s3cr3t",
        "KILNFLOW_DB_URL": "postgresql://ada:hunter2@db.example/readings",
    }

    run_cli(
        "run", "--env", "local", "--params", "min_valid=11,db_password=pa55word",
        cwd=project, env=secrets,
    )  # fmt: skip

    (session_id,) = session_ids(project)
    listed = run_cli("session", "list", cwd=project).stdout
    assert listed.split()[:3] == [session_id, "success", "demo"]
    assert "pipeline=__default__" in listed
    assert "env=local" in listed

    prefix = session_id.split("-")[0]
    record = show(project, prefix)
    assert record["session_id"] == session_id
    assert record["cli"]["command"] == "kilnflow"
    assert record["cli"]["args"] == [
        "run", "--env", "local", "--params", "min_valid=11,db_password=***",
    ]  # fmt: skip
    assert record["cli"]["options"]["env"] == "local"
    assert record["cli"]["options"]["params"] == ["min_valid=11,db_password=***"]
    assert record["cli"]["options"]["runner"] == "sequential"
    assert record["env"] == "local"
    assert record["extra_params"] == {"min_valid": 11, "db_password": "***"}
    assert record["run"]["pipeline_name"] == "__default__"
    assert record["project_path"] == str(project)
    assert record["package_name"] == "demo"
    assert record["versions"]["kilnflow"] == __version__
    assert record["outcome"] == "success"
    assert "exception" not in record
    assert record["started_at"] <= record["ended_at"]
    assert set(record["node_durations"]) == ALL_NODES
    assert all(isinstance(v, float) and v >= 0 for v in record["node_durations"].values())
    assert record["environment"]["KILNFLOW_API_TOKEN"] == "***"
    assert record["environment"]["KILNFLOW_DB_URL"] == "postgresql://ada:***@db.example/readings"

    stored = [path for path in (project / ".kilnflow").rglob("*") if path.is_file()]
    assert project / ".kilnflow" / "sessions.db" in stored
    for path in stored:
        assert b"s3cr3t" not in path.read_bytes(), path
        assert b"hunter2" not in path.read_bytes(), path
        assert b"pa55word" not in path.read_bytes(), path


def test_session_show_unknown_or_ambiguous_id(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", cwd=project)
    run_cli("run", cwd=project)

    line = error_line(run_cli("session", "show", "nope", cwd=project, check=False))
    assert "No session 'nope'" in line
    assert "kilnflow session list" in line

    line = error_line(run_cli("session", "show", "2", cwd=project, check=False))
    assert "matches several sessions" in line


def test_session_list_limit(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    for _ in range(3):
        run_cli("run", "--nodes", "clean", cwd=project)

    ids = session_ids(project)
    limited = run_cli("session", "list", "--limit", "2", cwd=project).stdout.splitlines()

    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    assert [line.split()[0] for line in limited] == ids[:2]


def test_session_list_outside_a_project_uses_kilnflow_home(tmp_path: Path) -> None:
    assert run_cli("session", "list", cwd=tmp_path).stdout == "No sessions recorded yet.\n"


def test_concurrent_runs_are_all_recorded(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    params = ["min_valid=0", "min_valid=11", "min_valid=0", "min_valid=11"]
    results = run_concurrently(
        [[str(SCRIPTS / "kilnflow"), "run", "--params", value] for value in params], cwd=project
    )

    for _, returncode, stderr in results:
        assert returncode == 0, stderr
    ids = session_ids(project)
    assert len(set(ids)) == len(params)
    records = [show(project, session_id) for session_id in ids]
    assert {record["outcome"] for record in records} == {"success"}
    assert len({record["pid"] for record in records}) == len(params)
    assert sorted(record["cli"]["args"][-1] for record in records) == sorted(params)
    assert report_file(project).read_text() in (REPORT, REPORT_MIN_11)


def test_session_rerun_repeats_the_command(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", "--params", "min_valid=11", "--to-nodes", "summarise", cwd=project)
    (original,) = session_ids(project)
    summary_file(project).unlink()

    result = run_cli("session", "rerun", original, cwd=project)

    assert f"Rerunning {original}: kilnflow run --params min_valid=11" in result.stderr
    newest, previous = session_ids(project)
    assert previous == original
    record = show(project, newest)
    assert record["environment"]["KILNFLOW_RERUN_OF"] == original
    assert record["cli"]["args"] == ["run", "--params", "min_valid=11", "--to-nodes", "summarise"]
    assert record["extra_params"] == {"min_valid": 11}
    assert set(record["node_durations"]) == {"clean", "summarise"}
    assert set(json.loads(summary_file(project).read_text())) == {"north", "south"}
    assert not report_file(project).exists()


def test_session_rerun_uses_the_recorded_environment(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    (project / "conf" / "prod").mkdir()
    (project / "conf" / "prod" / "parameters.yml").write_text("min_valid: 11\n")
    run_cli("run", cwd=project, env={"KILNFLOW_ENV": "prod"})
    (original,) = session_ids(project)
    report_file(project).unlink()

    run_cli("session", "rerun", original, cwd=project)

    assert latest(project)["env"] == "prod"
    assert report_file(project).read_text() == REPORT_MIN_11


def test_session_rerun_from_a_subdirectory_runs_where_the_session_ran(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    run_cli("run", "--nodes", "clean,summarise", cwd=project)
    (original,) = session_ids(project)

    run_cli("session", "rerun", original, cwd=project / "src")

    assert latest(project)["cwd"] == str(project)


def test_session_rerun_of_a_failed_run_fails_the_same_way(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    edit(nodes_py(project), '    places = options["decimals"]', '    raise RuntimeError("boom")')
    run_cli("run", cwd=project, check=False)
    (original,) = session_ids(project)

    result = run_cli("session", "rerun", original, cwd=project, check=False)

    assert result.returncode == 1
    assert "Node 'report' failed with RuntimeError: boom" in result.stderr
    assert [show(project, i)["outcome"] for i in session_ids(project)] == ["failed", "failed"]


def test_session_rerun_of_a_python_session_explains_there_is_no_command(tmp_path: Path) -> None:
    from kilnflow.project import bootstrap_project
    from kilnflow.session import Session

    project = new_project(tmp_path)
    bootstrap_project(project)
    with Session.create() as session:
        session.run(node_names=["clean"])

    line = error_line(run_cli("session", "rerun", session.session_id, cwd=project, check=False))

    assert session.session_id in line
    assert "not started from the command line" in line


def test_session_rerun_when_its_folder_is_gone(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    below = project / "gone"
    below.mkdir()
    run_cli("run", "--nodes", "clean", cwd=below)
    below.rmdir()
    (original,) = session_ids(project)

    line = error_line(run_cli("session", "rerun", original, cwd=project, check=False))

    assert str(below) in line
    assert "no longer exists" in line


# --- the command itself ------------------------------------------------------


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = run_cli("--help", cwd=tmp_path).stdout

    assert out.startswith("Usage: kilnflow [OPTIONS] COMMAND [ARGS]...")
    commands = out.split("Commands:")[1].split()
    for command in ("new", "run", "info", "pipeline", "catalog", "session"):
        assert command in commands
    assert run_cli("-h", cwd=tmp_path).stdout == out


HELP_WITHOUT_CLICK = (
    "import sys\n"
    "from kilnflow.cli import main\n"
    "sys.argv = ['kilnflow', '--help']\n"
    "main()\n"
    "print('click loaded' if 'click' in sys.modules else 'no click', file=sys.stderr)\n"
)


def python_code(code: str, columns: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "COLUMNS": columns},
        capture_output=True,
        text=True,
        check=True,
    )


@pytest.mark.parametrize("columns", ["80", "200"])
def test_help_on_a_wide_terminal_is_clicks_text_printed_without_click(columns: str) -> None:
    """Importing click costs more than starting Python; the top-level help needs none of it."""
    rendered = python_code("from kilnflow.cli._main import main; main(['--help'])", columns)

    fast = python_code(HELP_WITHOUT_CLICK, columns)

    assert fast.stderr == "no click\n"
    assert fast.stdout == rendered.stdout, (
        "kilnflow.cli._commands.HELP differs from what click renders: copy the new text there"
    )


def test_help_on_a_narrow_terminal_is_wrapped_by_click() -> None:
    narrow = python_code(HELP_WITHOUT_CLICK, "50")

    assert narrow.stderr == "click loaded\n"
    assert narrow.stdout.startswith("Usage: kilnflow [OPTIONS] COMMAND [ARGS]...")
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 50


def test_run_help_lists_its_options(tmp_path: Path) -> None:
    out = run_cli("run", "--help", cwd=tmp_path).stdout

    for option in (
        "--pipeline",
        "--env",
        "--params",
        "--tags",
        "--nodes",
        "--from-nodes",
        "--to-nodes",
        "--from-inputs",
        "--to-outputs",
        "--load-versions",
        "--namespace",
        "--runner",
        "--conf-source",
    ):
        assert option in out


def test_version(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout == f"kilnflow, version {__version__}\n"


def test_unknown_command(tmp_path: Path) -> None:
    result = run_cli("rnu", cwd=tmp_path, check=False)

    assert result.returncode == 2
    assert "No such command 'rnu'" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_dash_m_kilnflow(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kilnflow", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout == run_cli("--help", cwd=tmp_path).stdout
