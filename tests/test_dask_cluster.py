"""Runs on clusters started as users start them: ``dask scheduler`` and ``dask worker``.

Workers that die under a node, a cluster left without workers, and a
scheduler or worker that lacks the project's wheel or has another version
of it: each fails the run with one line saying what happened where and what
to do, and the session records it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SCRIPTS,
    dask_cli_cluster,
    data_folder,
    fresh_venv,
    install_offline,
    run_cli,
    run_installed,
    session_ids,
    show,
)
from kilnflow.packaging import package_project
from kilnflow.project import create_project
from kilnflow.session import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")

BOOM_PIPELINE = """
import os

from kilnflow.pipeline import Pipeline, node


def die(value):
    os._exit(1)


def create_pipeline(**kwargs):
    return Pipeline([node(die, "params:min_valid", "never", name="boom")])
"""


@pytest.fixture(scope="module")
def boom_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter project plus a ``boom`` pipeline whose only node kills its worker."""
    root = create_project("demo", tmp_path_factory.mktemp("dask-boom") / "demo")
    pipeline = root / "src" / "demo" / "pipelines" / "boom"
    pipeline.mkdir()
    (pipeline / "__init__.py").write_text(BOOM_PIPELINE)
    return root


def failed_run(project: Path, address: str, *runner_args: str) -> tuple[str, dict[str, Any]]:
    """``kilnflow run --pipeline boom`` on the cluster: its error line and its session record.

    The run must fail with one ``Error:`` line and nothing else but the resume
    hint and the closing summary that every failed run prints, and its session
    must record the failure with that message.
    """
    args = ",".join([f"address={address}", *runner_args])
    result = run_cli(
        *("run", "--pipeline", "boom", "--runner", "dask", "--runner-args", args, "-q"),
        cwd=project,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    resume, summary, error = result.stderr.strip().splitlines()
    assert resume.startswith("To resume: kilnflow run --pipeline boom "), resume
    assert "ERROR kilnflow: Pipeline 'boom' failed: 0 nodes run" in summary, summary
    assert error.startswith("Error: "), error
    assert "Traceback" not in result.stderr
    assert "already forgotten" not in result.stderr
    assert "ran node 'boom' again" not in result.stderr
    (latest, *_) = session_ids(project)
    record = show(project, latest)
    assert record["outcome"] == "failed"
    assert record["exception"]["message"] == error.removeprefix("Error: ")
    assert record["failed_node"] == "boom"
    return error.removeprefix("Error: "), record


@pytest.mark.timeout(120)
def test_a_node_that_keeps_killing_its_workers_fails_the_run_in_one_line(
    boom_project: Path, tmp_path: Path
) -> None:
    # The scheduler unpickles the graph, so it needs the project's package; the
    # nanny restarts the worker after each death, and the scheduler gives up after two.
    with dask_cli_cluster(
        tmp_path / "cluster",
        scheduler_env={
            "PYTHONPATH": str(boom_project / "src"),
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        },
    ) as address:
        error, record = failed_run(boom_project, address)

    assert error == (
        "Node 'boom' failed because the Dask workers running it died 2 times, so the "
        "scheduler gave up on it (distributed.scheduler.allowed-failures is 1): look in the "
        "worker logs for why they died (an out-of-memory kill is the usual cause), give the "
        "workers more memory or raise allowed-failures on the scheduler, then resume with "
        '--from-nodes "boom".'
    )
    assert "boom" not in (record.get("rerun_nodes") or {})


@pytest.mark.timeout(120)
def test_a_cluster_that_lost_every_worker_fails_the_run_in_one_line(
    boom_project: Path, tmp_path: Path
) -> None:
    # Without a nanny, the worker the node kills never comes back.
    with dask_cli_cluster(
        tmp_path / "cluster",
        worker_options=("--no-nanny",),
        scheduler_env={"PYTHONPATH": str(boom_project / "src")},
    ) as address:
        error, _ = failed_run(boom_project, address, "no_workers_timeout=1")

    assert error == (
        f"Node 'boom' failed because every worker of the Dask cluster at {address} died or "
        "left while the run waited on it, and none joined within 1 s: look in the worker "
        "logs for why they died (an out-of-memory kill is the usual cause), start workers "
        'with more memory, then resume with --from-nodes "boom".'
    )


@pytest.fixture(scope="module")
def packaged_demo(
    tmp_path_factory: pytest.TempPathFactory, dask_wheelhouse: Path
) -> dict[str, Path]:
    """The example project's wheel in a venv with Dask, and older wheel installed in a folder.

    ``stale`` holds version 0.0.9 of the project, installed with ``pip
    install --target``: put on a ``dask`` command's PYTHONPATH, it is a
    machine whose install is out of date.
    """
    base = tmp_path_factory.mktemp("dask-deploy")
    root = create_project("demo", base / "demo")
    wheel = package_project(root, base / "dist")
    bindir = fresh_venv(base / "venv", dask_wheelhouse, str(wheel), "kilnflow[dask]")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.0.9"'))
    stale_wheel = package_project(root, base / "stale-dist")
    stale = base / "stale"
    install_offline(
        bindir / "python", dask_wheelhouse, "--no-deps", "--target", str(stale), str(stale_wheel)
    )
    return {
        "bin": bindir,
        "stale": stale,
        "readings": root / "data" / "raw" / "readings.json",
    }


def test_the_packaged_command_runs_on_a_cluster_with_the_wheel_everywhere(
    packaged_demo: dict[str, Path], tmp_path: Path
) -> None:
    bindir = packaged_demo["bin"]
    work = data_folder(tmp_path / "work", packaged_demo["readings"])
    with dask_cli_cluster(tmp_path / "cluster", scheduler_bin=bindir, worker_bin=bindir) as address:
        result = run_installed(
            bindir,
            ["python", "-m", "demo", "--runner", "dask", "--runner-args", f"address={address}"],
            work,
        )

    assert result.returncode == 0, result.stderr
    assert (work / "data" / "reporting" / "report.txt").exists()


@pytest.mark.parametrize(
    ("machine", "lacking"),
    [
        ("scheduler", "cannot import 'demo' (ModuleNotFoundError: No module named 'demo')"),
        ("scheduler", "has demo 0.0.9 where this run has 0.1.0"),
        ("worker", "has demo 0.0.9 where this run has 0.1.0"),
    ],
    ids=["scheduler without the project", "stale scheduler", "stale worker"],
)
@pytest.mark.timeout(120)
def test_a_cluster_without_the_projects_wheel_is_named_before_any_task_runs(
    packaged_demo: dict[str, Path], tmp_path: Path, machine: str, lacking: str
) -> None:
    bindir = packaged_demo["bin"]
    # This test's venv has Kilnflow and Dask but not the project; PYTHONPATH adds
    # the older wheel's install to it.
    stale = {"PYTHONPATH": str(packaged_demo["stale"])} if "0.0.9" in lacking else {}
    if machine == "scheduler":
        cluster = dask_cli_cluster(
            tmp_path / "cluster", scheduler_bin=SCRIPTS, worker_bin=bindir, scheduler_env=stale
        )
    else:
        cluster = dask_cli_cluster(
            tmp_path / "cluster", scheduler_bin=bindir, worker_bin=SCRIPTS, worker_env=stale
        )
    work = data_folder(tmp_path / "work", packaged_demo["readings"])
    with cluster as address:
        result = run_installed(
            bindir,
            ["python", "-m", "demo", "--runner", "dask", "--runner-args", f"address={address}"],
            work,
        )

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    where = "the scheduler" if machine == "scheduler" else "worker tcp://127.0.0.1:"
    assert error.startswith(
        f"Error: The Dask cluster at {address} cannot run this pipeline's tasks: {where}"
    )
    assert f" {lacking}; install the same wheels on the scheduler and on every worker " in error
    assert error.endswith("(pip install demo-0.1.0-py3-none-any.whl), then run again.")
    assert not (work / "data" / "processed").exists()
    (record,) = SQLiteStore(work / ".home", "").sessions(limit=1)
    assert record["outcome"] == "failed"
    assert record["exception"]["message"] == error.removeprefix("Error: ")
