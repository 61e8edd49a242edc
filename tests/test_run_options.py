"""``kilnflow run`` options Kedro users rely on, and ``kilnflow pipeline create/delete``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import SCRIPTS, run_cli, run_project_tests

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    run_cli("new", "demo", cwd=tmp_path)
    return tmp_path / "demo"


def report(project: Path) -> Path:
    return project / "data" / "reporting" / "report.txt"


def summary(project: Path) -> Path:
    return project / "data" / "processed" / "station_summary.json"


def nodes_run(stderr: str) -> list[str]:
    return re.findall(r"Completed node \d+ of \d+: (\S+)", stderr)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


# --pipelines --------------------------------------------------------------------


def test_pipelines_runs_several_registered_pipelines_as_one(project: Path) -> None:
    run_cli("pipeline", "create", "extra", cwd=project)

    result = run_cli("run", "--pipelines", "readings,extra", cwd=project)

    assert sorted(nodes_run(result.stderr)) == ["clean", "extra.scale", "report", "summarise"]
    assert "Pipeline 'readings,extra' finished: 4 nodes run" in result.stderr
    assert report(project).is_file()


def test_pipeline_and_pipelines_together_are_refused(project: Path) -> None:
    result = run_cli("run", "-p", "readings", "--pipelines", "readings", cwd=project, check=False)

    assert result.returncode == 2
    assert "--pipeline and --pipelines both name pipelines to run" in result.stderr
    assert not report(project).exists()


def test_an_unknown_name_in_pipelines_is_one_line(project: Path) -> None:
    result = run_cli("run", "--pipelines", "readings,readins", cwd=project, check=False)

    assert one_error_line(result) == (
        "Error: Pipeline 'readins' is not registered. Did you mean 'readings'? "
        "Registered pipelines: __default__, readings."
    )


# --only-missing-outputs -----------------------------------------------------------


def test_only_missing_outputs_skips_nodes_whose_outputs_exist(project: Path) -> None:
    run_cli("run", cwd=project)
    report(project).unlink()

    result = run_cli("run", "--only-missing-outputs", cwd=project)

    assert nodes_run(result.stderr) == ["report"]
    assert "Skipping 2 nodes whose outputs exist: clean, summarise" in result.stderr
    assert report(project).is_file()


def test_only_missing_outputs_reruns_what_a_missing_output_needs_and_feeds(
    project: Path,
) -> None:
    """summarise reads clean's output, which lives in memory, and report reads summarise's."""
    run_cli("run", cwd=project)
    summary(project).unlink()
    before = report(project).stat().st_mtime_ns

    result = run_cli("run", "--only-missing-outputs", cwd=project)

    assert nodes_run(result.stderr) == ["clean", "summarise", "report"]
    assert summary(project).is_file()
    assert report(project).stat().st_mtime_ns != before


def test_only_missing_outputs_with_everything_present_runs_nothing(project: Path) -> None:
    run_cli("run", cwd=project)

    result = run_cli("run", "--only-missing-outputs", cwd=project)

    assert nodes_run(result.stderr) == []
    assert "finished: 0 nodes run" in result.stderr


# Runners ------------------------------------------------------------------------


@pytest.mark.parametrize("runner", ["SequentialRunner", "ThreadRunner", "ParallelRunner"])
def test_runner_class_names_are_accepted(project: Path, runner: str) -> None:
    result = run_cli("run", "-r", runner, cwd=project)

    assert sorted(nodes_run(result.stderr)) == ["clean", "report", "summarise"]
    session_id = re.findall(r"session (\S+) recorded", result.stderr)[0]
    recorded = json.loads(run_cli("session", "show", session_id, "--json", cwd=project).stdout)
    assert recorded["run"]["runner"] == runner


def test_a_misspelt_runner_class_name_gets_a_suggestion(project: Path) -> None:
    line = one_error_line(run_cli("run", "-r", "ThreadRuner", cwd=project, check=False))

    assert line.startswith("Error: Unknown runner 'ThreadRuner'. Did you mean 'ThreadRunner'?")


def test_runner_params_is_an_alias_of_runner_args(project: Path) -> None:
    result = run_cli("run", "-r", "thread", "--runner-params", "max_workers=2", cwd=project)
    assert sorted(nodes_run(result.stderr)) == ["clean", "report", "summarise"]

    bad = run_cli(
        "run", "-r", "thread", "--runner-params", "max_wrkers=2", cwd=project, check=False
    )
    assert "does not take --runner-args max_wrkers=..." in one_error_line(bad)


# Parameters and node names ----------------------------------------------------------


def test_runtime_params_take_part_in_interpolation(project: Path) -> None:
    parameters = project / "conf" / "base" / "parameters.yml"
    parameters.write_text(
        parameters.read_text().replace("min_valid: 0.0", "limit: 0.0\nmin_valid: ${limit}")
    )

    run_cli("run", "--params", "limit=11", cwd=project)

    assert "east" not in report(project).read_text()
    assert "north" in report(project).read_text()


def test_unnamed_nodes_get_short_stable_names_usable_with_nodes(project: Path) -> None:
    pipeline = project / "src" / "demo" / "pipelines" / "readings" / "__init__.py"
    pipeline.write_text(pipeline.read_text().replace(', name="summarise"', ""))

    described = run_cli("pipeline", "describe", cwd=project).stdout
    again = run_cli("pipeline", "describe", cwd=project).stdout
    (name,) = re.findall(r"^(summarise_stations__[0-9a-f]{8}): ", described, re.MULTILINE)
    assert described == again

    run_cli("run", "--nodes", "clean", cwd=project)
    result = run_cli("run", "--nodes", name, cwd=project, check=False)

    # clean's output lives in memory, so the node cannot run alone: the error names it.
    assert "clean_readings" in result.stderr
    run_cli("run", "--to-nodes", name, cwd=project)
    assert summary(project).is_file()


# kilnflow pipeline create / delete --------------------------------------------------


def test_pipeline_create_makes_a_pipeline_that_runs_and_passes_its_test(project: Path) -> None:
    created = run_cli("pipeline", "create", "features", cwd=project)

    assert created.stdout.splitlines() == [
        "Created tests/pipelines/test_features.py",
        "Created conf/base/parameters_features.yml",
        "Created src/demo/pipelines/features",
        "Run it with: kilnflow run --pipeline features",
    ]
    for name in ("__init__.py", "nodes.py", "pipeline.py"):
        assert (project / "src" / "demo" / "pipelines" / "features" / name).is_file()
    listed = run_cli("pipeline", "list", cwd=project).stdout
    assert "features  (1 nodes)" in listed
    result = run_cli("run", "--pipeline", "features", "--params", "features.factor=10", cwd=project)
    assert re.search(
        rf"{STAMP} INFO demo\.pipelines\.features\.nodes: Scaling 3 values by 10", result.stderr
    )
    tests = run_project_tests(project, "tests/pipelines")
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_pipeline_create_refuses_a_taken_name_and_writes_nothing(project: Path) -> None:
    params = project / "conf" / "base" / "parameters_features.yml"
    params.write_text("mine: 1\n")

    line = one_error_line(run_cli("pipeline", "create", "features", cwd=project, check=False))

    assert line == (
        f"Error: Pipeline 'features' cannot be created: {params} already exists; choose another "
        "name, or remove it first with 'kilnflow pipeline delete features'."
    )
    assert params.read_text() == "mine: 1\n"
    assert not (project / "src" / "demo" / "pipelines" / "features").exists()
    assert not (project / "tests" / "pipelines").exists()
    assert not [p for p in project.iterdir() if p.name.startswith(".kilnflow-pipeline")]


@pytest.mark.parametrize("name", ["1st", "with-dash", "class", "_private"])
def test_pipeline_create_refuses_names_that_are_not_identifiers(project: Path, name: str) -> None:
    line = one_error_line(run_cli("pipeline", "create", name, cwd=project, check=False))

    assert line.startswith(f"Error: {name!r} cannot name a pipeline: use a Python identifier")
    assert sorted(p.name for p in (project / "src" / "demo" / "pipelines").iterdir()) == [
        "__init__.py",
        "readings",
    ]


def answer_delete(project: Path, answer: str) -> subprocess.CompletedProcess[str]:
    """``kilnflow pipeline delete features``, answering its question with ``answer``."""
    return subprocess.run(
        [str(SCRIPTS / "kilnflow"), "pipeline", "delete", "features"],
        cwd=project,
        input=f"{answer}\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_pipeline_delete_asks_first_and_removes_only_the_pipelines_files(project: Path) -> None:
    run_cli("pipeline", "create", "features", cwd=project)
    folder = project / "src" / "demo" / "pipelines" / "features"
    kept = sorted(
        str(p.relative_to(project)) for p in project.rglob("*") if "features" not in str(p)
    )

    declined = answer_delete(project, "n")
    assert declined.returncode != 0
    assert "src/demo/pipelines/features" in declined.stderr
    assert folder.is_dir()

    confirmed = answer_delete(project, "y")
    assert confirmed.returncode == 0, confirmed.stderr
    assert "Deleted pipeline 'features'" in confirmed.stdout
    assert not folder.exists()
    assert not (project / "conf" / "base" / "parameters_features.yml").exists()
    assert not (project / "tests" / "pipelines" / "test_features.py").exists()
    remaining = sorted(
        str(p.relative_to(project)) for p in project.rglob("*") if "features" not in str(p)
    )
    assert [p for p in remaining if not p.startswith(".kilnflow")] == [
        p for p in kept if not p.startswith(".kilnflow")
    ]
    run_cli("run", cwd=project)


def test_pipeline_delete_yes_skips_the_question(project: Path) -> None:
    run_cli("pipeline", "create", "features", cwd=project)

    result = run_cli("pipeline", "delete", "features", "--yes", cwd=project)

    assert "Proceed?" not in result.stderr
    assert not (project / "src" / "demo" / "pipelines" / "features").exists()


def test_pipeline_delete_of_an_unknown_name_is_one_line(project: Path) -> None:
    run_cli("pipeline", "create", "features", cwd=project)

    line = one_error_line(run_cli("pipeline", "delete", "feature", "-y", cwd=project, check=False))

    assert line == (
        f"Error: No pipeline 'feature' in {project / 'src' / 'demo' / 'pipelines'}. "
        "Did you mean 'features'? Pipelines there: features, readings."
    )
    assert (project / "src" / "demo" / "pipelines" / "features").is_dir()
