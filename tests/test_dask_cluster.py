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
    latest_session,
    run_cli,
    run_installed,
    session_ids,
    show,
)
from kilnflow._version import __version__
from kilnflow.errors import NodeFailedError, RunnerError
from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.packaging import package_project
from kilnflow.pipeline import Pipeline, node
from kilnflow.project import create_project
from kilnflow.runner import DaskRunner

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


LOST_EVERY_WORKER = (
    "Node 'boom' failed because every worker of the Dask cluster at {address} died or left "
    "while the run waited on it, and none joined within 1 s: look in the worker logs for why "
    "they died (an out-of-memory kill is the usual cause), start workers with more memory, "
    'then resume with --from-nodes "boom".'
)

SCHEDULER_TIMED_OUT = (
    "Node 'boom' failed because the Dask cluster had no worker left to run it for longer "
    "than the scheduler's distributed.scheduler.no-workers-timeout: look in the worker logs "
    "for why they died (an out-of-memory kill is the usual cause), start workers with more "
    'memory, then resume with --from-nodes "boom".'
)


@pytest.mark.parametrize(
    ("runner_timeout", "scheduler_timeout", "expected"),
    [("1", None, LOST_EVERY_WORKER), ("60", "1s", SCHEDULER_TIMED_OUT)],
    ids=["the run's timeout", "the scheduler's timeout"],
)
@pytest.mark.timeout(120)
def test_a_cluster_that_lost_every_worker_fails_the_run_in_one_line(
    boom_project: Path,
    tmp_path: Path,
    runner_timeout: str,
    scheduler_timeout: str | None,
    expected: str,
) -> None:
    scheduler_env = {"PYTHONPATH": str(boom_project / "src")}
    if scheduler_timeout:
        scheduler_env["DASK_DISTRIBUTED__SCHEDULER__NO_WORKERS_TIMEOUT"] = scheduler_timeout
    # Without a nanny, the worker the node kills never comes back.
    with dask_cli_cluster(
        tmp_path / "cluster", worker_options=("--no-nanny",), scheduler_env=scheduler_env
    ) as address:
        error, _ = failed_run(boom_project, address, f"no_workers_timeout={runner_timeout}")

    assert error == expected.format(address=address)


CLIENT_ONLY_MODULE = """
from kilnflow.io import AbstractDataset


class Box:
    def __len__(self):
        return 3


class Numbers(AbstractDataset):
    def _load(self):
        return [1, 2, 3]

    def _save(self, data):
        raise NotImplementedError

    def _describe(self):
        return {}
"""


@pytest.fixture
def client_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module that only this process can import, not the scheduler nor its workers."""
    (tmp_path / "kf_client_only.py").write_text(CLIENT_ONLY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import kf_client_only  # type: ignore[import-not-found]

    return kf_client_only


@pytest.mark.timeout(120)
def test_a_scheduler_that_cannot_import_a_dataset_class_is_named_before_any_task_runs(
    tmp_path: Path, client_only: Any
) -> None:
    catalog = DataCatalog({"numbers": client_only.Numbers()})
    pipeline = Pipeline([node(len, "numbers", "size", name="size")])
    with dask_cli_cluster(tmp_path / "cluster") as address, pytest.raises(RunnerError) as caught:
        DaskRunner(address=address).run(pipeline, catalog)

    assert str(caught.value) == (
        f"The Dask cluster at {address} cannot run this pipeline's tasks: the scheduler cannot "
        "import 'kf_client_only' (ModuleNotFoundError: No module named 'kf_client_only'); "
        "install the same wheels on the scheduler and on every worker (pip install "
        "kf_client_only), then run again."
    )


@pytest.mark.timeout(120)
def test_a_node_the_scheduler_drops_fails_with_the_reason_and_where_to_look(
    tmp_path: Path, client_only: Any
) -> None:
    # The node's data is of a class only this process has: the scheduler cannot read it.
    catalog = DataCatalog({"box": MemoryDataset(client_only.Box())})
    pipeline = Pipeline([node(len, "box", "size", name="size")])
    with (
        dask_cli_cluster(tmp_path / "cluster") as address,
        pytest.raises(NodeFailedError) as caught,
    ):
        DaskRunner(address=address).run(pipeline, catalog)

    assert str(caught.value) == (
        "Node 'size' failed because the Dask scheduler dropped it (lost dependencies), as it "
        "does when it loses data the node needs or cannot read the task: look in the "
        "scheduler's log for why ('Error during deserialization of the task graph' there "
        "means it lacks a package that this run's data or datasets need: install it on the "
        'scheduler and every worker), then resume with --from-nodes "size".'
    )
    log = (tmp_path / "cluster" / "scheduler.log").read_text()
    assert "Error during deserialization of the task graph" in log


@pytest.fixture(scope="module")
def packaged_demo(
    tmp_path_factory: pytest.TempPathFactory, dask_wheelhouse: Path
) -> dict[str, Path]:
    """The example project's wheel in a venv with Dask, and older installs in folders.

    ``stale`` holds version 0.0.9 of the project and ``old-kilnflow`` Kilnflow's
    wheel relabelled 0.0.9, each installed with ``pip install --target``: put
    on a ``dask`` command's PYTHONPATH, they make a machine whose install is
    out of date.
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
    old_kilnflow = base / "old-kilnflow"
    (kilnflow_wheel,) = dask_wheelhouse.glob("kilnflow-*.whl")
    target = ("--no-deps", "--target", str(old_kilnflow), str(kilnflow_wheel))
    install_offline(bindir / "python", dask_wheelhouse, *target)
    for file, line in [
        (old_kilnflow / "kilnflow" / "_version.py", '__version__ = "{}"'),
        (next(old_kilnflow.glob("kilnflow-*.dist-info")) / "METADATA", "\nVersion: {}\n"),
    ]:
        text = file.read_text()
        assert line.format(__version__) in text, file
        file.write_text(text.replace(line.format(__version__), line.format("0.0.9")))
    return {
        "bin": bindir,
        "stale": stale,
        "old-kilnflow": old_kilnflow,
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


DEMO_WHEEL = "demo-0.1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("machine", "install", "lacking", "wheels"),
    [
        (
            "scheduler",
            None,
            "cannot import 'demo' (ModuleNotFoundError: No module named 'demo')",
            DEMO_WHEEL,
        ),
        ("scheduler", "stale", "has demo 0.0.9 where this run has 0.1.0", DEMO_WHEEL),
        ("worker", "stale", "has demo 0.0.9 where this run has 0.1.0", DEMO_WHEEL),
        # This scheduler lacks the project too: both are named.
        (
            "scheduler",
            "old-kilnflow",
            "has kilnflow 0.0.9 where this run has 0.1.0",
            f"{DEMO_WHEEL} kilnflow-0.1.0-py3-none-any.whl",
        ),
    ],
    ids=["scheduler without the project", "stale scheduler", "stale worker", "old Kilnflow"],
)
@pytest.mark.timeout(120)
def test_a_cluster_without_the_projects_wheel_is_named_before_any_task_runs(
    packaged_demo: dict[str, Path],
    tmp_path: Path,
    machine: str,
    install: str | None,
    lacking: str,
    wheels: str,
) -> None:
    bindir = packaged_demo["bin"]
    # This test's venv has Kilnflow and Dask but not the project; PYTHONPATH puts
    # an older install in front.
    env = {"PYTHONPATH": str(packaged_demo[install])} if install else {}
    if machine == "scheduler":
        cluster = dask_cli_cluster(
            tmp_path / "cluster", scheduler_bin=SCRIPTS, worker_bin=bindir, scheduler_env=env
        )
    else:
        cluster = dask_cli_cluster(
            tmp_path / "cluster", scheduler_bin=bindir, worker_bin=SCRIPTS, worker_env=env
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
    assert error.endswith(f"(pip install {wheels}), then run again.")
    assert not (work / "data" / "processed").exists()
    record = latest_session(work / ".home")
    assert record["outcome"] == "failed"
    assert record["exception"]["message"] == error.removeprefix("Error: ")
