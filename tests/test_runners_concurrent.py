"""Thread, process and Dask runners: same outputs, hooks in workers, failures, Ctrl-C."""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import (
    HOOK_LOG_ENV,
    add_counting_hook,
    alive,
    counted_nodes,
    descendants,
    local_cluster,
    read_session,
)
from kilnflow.errors import NodeFailedError, RunnerError
from kilnflow.hooks import create_hook_manager, register_hooks
from kilnflow.io import DataCatalog, JSONDataset, MemoryDataset, PickleDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.project import bootstrap_project
from kilnflow.runner import DaskRunner, ParallelRunner, SequentialRunner, ThreadRunner
from kilnflow.session import Session

# Worker processes import node functions by module name, so they live in a
# real module on sys.path rather than in this test file.
NODES_MODULE = "kf_runner_nodes"
NODES_SOURCE = '''
import multiprocessing
import os
import threading
import time

from kilnflow.hooks import hook_impl


def double(x):
    return 2 * x


def add(x, y):
    return x + y


def describe(joined, base):
    return {"joined": joined, "base": base, "pairs": [[base, joined]]}


def touch(path):
    with open(path, "w") as file:
        file.write("ran")
    return path


def die(_):
    os._exit(1)


def make_lock(_):
    return threading.Lock()


def start_method(_):
    return multiprocessing.get_start_method()


def chatty(x):
    import logging

    logger = logging.getLogger("kf_runner_nodes.chatty")
    for step in range(3):
        logger.info("value %s step %d in %d", x, step, os.getpid())
    logger.debug("hidden at INFO")
    return x


def die_once(x, folder):
    marker = os.path.join(folder, "died")
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(1)
    return 2 * x


def fail_setup():
    raise ValueError("no project here")


def sleep_long(folder):
    with open(os.path.join(folder, f"pid-{os.getpid()}"), "w"):
        pass
    time.sleep(600)


class CountingHooks:
    """Logs each node it sees to a file, the format of conftest.add_counting_hook."""

    def __init__(self, path):
        self.path = path

    @hook_impl
    def before_node_run(self, node):
        line = f"{node.name}\\t{os.getpid()}\\t{multiprocessing.current_process().name}\\n"
        with open(self.path, "a") as file:
            file.write(line)


class LockedHooks:
    def __init__(self):
        self.lock = threading.Lock()

    @hook_impl
    def before_node_run(self, node):
        pass
'''

ALL_NODES = {"prep", "left", "right", "join", "summary", "final"}


@pytest.fixture(scope="module")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding the node module, on sys.path for this process and its workers."""
    folder = tmp_path_factory.mktemp("nodes")
    (folder / f"{NODES_MODULE}.py").write_text(NODES_SOURCE)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


@pytest.fixture
def nodes(nodes_dir: Path) -> ModuleType:
    return importlib.import_module(NODES_MODULE)


@pytest.fixture(scope="module")
def dask_client(nodes_dir: Path) -> Iterator[Any]:
    """A real local cluster: two worker processes, one thread each."""
    with local_cluster(2) as client:
        yield client


def example(nodes: ModuleType, folder: Path) -> tuple[Pipeline, DataCatalog]:
    """A chain with a fan-out and fan-in, memory and file datasets, and a parameter."""
    pipe = Pipeline(
        [
            node(nodes.double, "a", "base", name="prep"),
            node(nodes.double, "base", "left", name="left"),
            node(nodes.add, ["base", "params:offset"], "right", name="right"),
            node(nodes.add, ["left", "right"], "joined", name="join"),
            node(nodes.describe, ["joined", "base"], "summary", name="summary"),
            node(nodes.double, "joined", "final", name="final"),
        ]
    )
    catalog = DataCatalog(
        {
            "a": MemoryDataset(3),
            "left": JSONDataset(filepath=str(folder / "left.json")),
            "joined": PickleDataset(filepath=str(folder / "joined.pkl")),
        }
    )
    catalog.add_parameters({"offset": 10})
    return pipe, catalog


def make_runner(kind: str, request: pytest.FixtureRequest) -> Any:
    if kind == "sequential":
        return SequentialRunner()
    if kind == "thread":
        return ThreadRunner()
    if kind == "parallel":
        return ParallelRunner(max_workers=2)
    return DaskRunner(client=request.getfixturevalue("dask_client"))


@pytest.mark.parametrize("kind", ["sequential", "thread", "parallel", "dask"])
def test_every_runner_gives_the_same_outputs_and_runs_every_hook(
    kind: str, nodes: ModuleType, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pipe, catalog = example(nodes, tmp_path)
    log = tmp_path / "hooks.log"
    manager = create_hook_manager()
    register_hooks(manager, [nodes.CountingHooks(str(log))])
    runner = make_runner(kind, request)

    outputs = runner.run(pipe, catalog, manager, "sid")

    assert outputs == {
        "summary": {"joined": 28, "base": 6, "pairs": [[6, 28]]},
        "final": 56,
    }
    assert (tmp_path / "left.json").read_text().strip() == "12"
    assert pickle.loads((tmp_path / "joined.pkl").read_bytes()) == 28
    assert set(runner.node_durations) == ALL_NODES
    assert all(seconds >= 0 for seconds in runner.node_durations.values())
    calls = counted_nodes(log)
    assert sorted(name for name, _, _ in calls) == sorted(ALL_NODES)
    in_parent = {pid == os.getpid() for _, pid, _ in calls}
    assert in_parent == ({True} if kind in ("sequential", "thread") else {False})


@pytest.mark.parametrize("kind", ["parallel", "dask"])
def test_records_logged_in_workers_reach_this_processs_loggers_in_order(
    kind: str,
    nodes: ModuleType,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipe = Pipeline([node(nodes.chatty, name, f"out_{name}", name=name) for name in "ab"])
    catalog = DataCatalog({"a": MemoryDataset("A"), "b": MemoryDataset("B")})
    with caplog.at_level(logging.INFO):
        make_runner(kind, request).run(pipe, catalog)

    records = [r for r in caplog.records if r.name == "kf_runner_nodes.chatty"]
    assert {r.process for r in records}.isdisjoint({os.getpid()})
    for value in "AB":
        shown = [m for m in map(logging.LogRecord.getMessage, records) if f" {value} " in m]
        pid = shown[0].rsplit(" ", 1)[1]
        assert shown == [f"value {value} step {step} in {pid}" for step in range(3)]
    assert "hidden at INFO" not in caplog.text


def test_thread_runner_runs_ready_nodes_at_the_same_time() -> None:
    barrier = threading.Barrier(2, timeout=30)

    def meet(x: int) -> int:
        barrier.wait()
        return x

    pipe = Pipeline([node(meet, "a", "b", name="one"), node(meet, "a", "c", name="two")])
    outputs = ThreadRunner(max_workers=2).run(pipe, DataCatalog({"a": MemoryDataset(1)}))
    assert outputs == {"b": 1, "c": 1}


@pytest.mark.parametrize("runner_class", [ThreadRunner, ParallelRunner])
def test_max_workers_below_one_is_rejected(runner_class: type) -> None:
    with pytest.raises(RunnerError, match="max_workers must be 1 or more, got 0"):
        runner_class(max_workers=0)


def run_project(root: Path, runner: Any) -> tuple[str, str]:
    """Run the example project's default pipeline; return its report and session id."""
    report = root / "data" / "reporting" / "report.txt"
    report.unlink(missing_ok=True)
    with Session.create() as session:
        session.run(runner=runner)
    return report.read_text(), session.session_id


@pytest.mark.timeout(120)
def test_parallel_runner_with_spawn_sets_up_project_workers(
    make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    add_counting_hook(root)
    log = tmp_path / "project-hooks.log"
    monkeypatch.setenv(HOOK_LOG_ENV, str(log))
    bootstrap_project(root)
    expected, _ = run_project(root, SequentialRunner())
    log.unlink()

    runner = ParallelRunner(max_workers=2, start_method="spawn")
    report, session_id = run_project(root, runner)

    assert report == expected
    calls = counted_nodes(log)
    assert sorted(name for name, _, _ in calls) == ["clean", "report", "summarise"]
    assert os.getpid() not in {pid for _, pid, _ in calls}
    record = read_session(root / ".kilnflow", session_id)
    assert record["run"]["runner"] == "ParallelRunner"
    assert set(record["node_durations"]) == {"clean", "summarise", "report"}


@pytest.mark.timeout(60)
def test_a_worker_that_dies_fails_the_run_naming_its_node(nodes: ModuleType) -> None:
    from concurrent.futures.process import BrokenProcessPool

    pipe = Pipeline(
        [node(nodes.double, "a", "b", name="ok"), node(nodes.die, "b", "c", name="boom")]
    )
    with pytest.raises(NodeFailedError) as caught:
        ParallelRunner(max_workers=1).run(pipe, DataCatalog({"a": MemoryDataset(1)}))
    error = caught.value
    assert error.node_name == "boom"
    assert isinstance(error.__cause__, BrokenProcessPool)
    assert "the worker process running 'boom' died" in str(error)
    assert "os._exit" in str(error)
    assert error.resume_nodes == ("ok",)


def test_unpicklable_node_fails_before_anything_runs(nodes: ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    pipe = Pipeline(
        [
            node(nodes.touch, "params:marker", "touched", name="first"),
            node(lambda path: path, "touched", "out", name="anonymous"),
        ]
    )
    catalog = DataCatalog()
    catalog.add_parameters({"marker": str(marker)})
    with pytest.raises(RunnerError) as caught:
        ParallelRunner(max_workers=1).run(pipe, catalog)
    message = str(caught.value)
    assert "cannot send node 'anonymous'" in message
    assert "not a lambda" in message
    assert "ThreadRunner" in message
    assert not marker.exists()


def test_unpicklable_memory_input_fails_before_anything_runs(nodes: ModuleType) -> None:
    pipe = Pipeline([node(nodes.double, "a", "b", name="first")])
    catalog = DataCatalog({"a": MemoryDataset(threading.Lock(), copy_mode="assign")})
    with pytest.raises(RunnerError) as caught:
        ParallelRunner(max_workers=1).run(pipe, catalog)
    assert "cannot send dataset 'a'" in str(caught.value)
    assert "ThreadRunner" in str(caught.value)


def test_unpicklable_memory_output_fails_its_node_naming_the_output(nodes: ModuleType) -> None:
    pipe = Pipeline([node(nodes.make_lock, "a", "lock", name="locker")])
    with pytest.raises(NodeFailedError) as caught:
        ParallelRunner(max_workers=1).run(pipe, DataCatalog({"a": MemoryDataset(1)}))
    assert caught.value.node_name == "locker"
    assert "output 'lock' (lock) cannot be pickled" in str(caught.value)


def test_unpicklable_hook_without_worker_init_is_reported(nodes: ModuleType) -> None:
    manager = create_hook_manager()
    register_hooks(manager, [nodes.LockedHooks()])
    pipe = Pipeline([node(nodes.double, "a", "b", name="first")])
    with pytest.raises(RunnerError) as caught:
        ParallelRunner(max_workers=1).run(pipe, DataCatalog({"a": MemoryDataset(1)}), manager)
    assert "Hook 'LockedHooks'" in str(caught.value)
    assert "worker_init" in str(caught.value)


def test_worker_that_cannot_set_up_fails_the_node_with_the_reason(nodes: ModuleType) -> None:
    pipe = Pipeline([node(nodes.double, "a", "b", name="first")])
    with pytest.raises(NodeFailedError) as caught:
        ParallelRunner(max_workers=1).run(
            pipe, DataCatalog({"a": MemoryDataset(1)}), worker_init=partial(nodes.fail_setup)
        )
    assert "could not set itself up for the project (ValueError: no project here)" in str(
        caught.value
    )


def test_start_method_comes_from_the_environment(
    nodes: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("this platform has no forkserver")
    monkeypatch.setenv("KILNFLOW_MP_START_METHOD", "forkserver")
    runner = ParallelRunner(max_workers=1)
    pipe = Pipeline([node(nodes.start_method, "a", "method", name="which")])
    assert runner.start_method == "forkserver"
    assert runner.run(pipe, DataCatalog({"a": MemoryDataset(1)})) == {"method": "forkserver"}
    assert ParallelRunner(start_method="spawn").start_method == "spawn"


def test_unknown_start_method_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILNFLOW_MP_START_METHOD", "spwan")
    with pytest.raises(RunnerError) as caught:
        ParallelRunner()
    assert "$KILNFLOW_MP_START_METHOD 'spwan' is not available here" in str(caught.value)
    assert "Did you mean 'spawn'?" in str(caught.value)


INTERRUPTED_RUN = """
import sys

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner

from kf_runner_nodes import sleep_long

if __name__ == "__main__":
    pipe = Pipeline(
        [node(sleep_long, "folder", "a", name="one"), node(sleep_long, "folder", "b", name="two")]
    )
    ParallelRunner(max_workers=2).run(pipe, DataCatalog({"folder": MemoryDataset(sys.argv[1])}))
"""


def start_interrupted_run(
    nodes_dir: Path, tmp_path: Path
) -> tuple[subprocess.Popen[str], set[int]]:
    """Start the two-node ParallelRunner script; return it and its processes once both run."""
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED_RUN)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(nodes_dir), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    while len(list(tmp_path.glob("pid-*"))) < 2 and process.poll() is None:
        time.sleep(0.1)
    workers = {int(path.name[len("pid-") :]) for path in tmp_path.glob("pid-*")}
    if len(workers) != 2:
        process.kill()
        pytest.fail(process.communicate()[1])
    # The workers and the multiprocessing resource tracker.
    started = descendants(process.pid)
    assert workers < started
    return process, started


@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through Linux's /proc")
@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("number", "shown"),
    [(signal.SIGINT, "Interrupted: SIGINT"), (signal.SIGTERM, "Interrupted: SIGTERM")],
    ids=["SIGINT", "SIGTERM"],
)
def test_ctrl_c_stops_the_run_and_leaves_no_worker_behind(
    nodes_dir: Path, tmp_path: Path, number: int, shown: str
) -> None:
    process, started = start_interrupted_run(nodes_dir, tmp_path)
    try:
        process.send_signal(number)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert shown in stderr
    while any(alive(pid) for pid in started):
        time.sleep(0.1)  # the timeout marker fails the test if any lingers


@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through Linux's /proc")
@pytest.mark.timeout(90)
def test_workers_end_soon_after_their_parent_is_killed(nodes_dir: Path, tmp_path: Path) -> None:
    process, started = start_interrupted_run(nodes_dir, tmp_path)
    process.kill()
    process.communicate()
    while any(alive(pid) for pid in started):
        time.sleep(0.1)  # the timeout marker fails the test if any lingers


def test_dask_runner_takes_an_address_or_a_client_not_both() -> None:
    with pytest.raises(RunnerError, match="not both"):
        DaskRunner(address="tcp://127.0.0.1:8786", client=object())


@pytest.mark.parametrize("timeout", [0, -1.5, "soon", True])
def test_dask_runner_waits_for_lost_workers_a_positive_time(timeout: Any) -> None:
    with pytest.raises(RunnerError) as caught:
        DaskRunner(no_workers_timeout=timeout)
    assert str(caught.value) == (
        f"DaskRunner's no_workers_timeout must be a number of seconds above 0, got {timeout!r}; "
        "it is how long a run that lost every worker waits for one."
    )


def test_dask_workers_that_cannot_set_up_fail_the_run(nodes: ModuleType, dask_client: Any) -> None:
    pipe = Pipeline([node(nodes.double, "a", "b", name="first")])
    with pytest.raises(RunnerError) as caught:
        DaskRunner(client=dask_client).run(
            pipe, DataCatalog({"a": MemoryDataset(1)}), worker_init=partial(nodes.fail_setup)
        )
    assert "could not set themselves up for the project (ValueError: no project here)" in str(
        caught.value
    )


@pytest.mark.timeout(120)
def test_dask_runner_sets_up_project_workers(
    make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    add_counting_hook(root)
    log = tmp_path / "project-hooks.log"
    monkeypatch.setenv(HOOK_LOG_ENV, str(log))
    bootstrap_project(root)
    expected, _ = run_project(root, SequentialRunner())
    log.unlink()

    with local_cluster(2) as client:
        report, session_id = run_project(root, DaskRunner(client=client))
        worker_pids = set(client.run(os.getpid).values())

    assert report == expected
    calls = counted_nodes(log)
    assert sorted(name for name, _, _ in calls) == ["clean", "report", "summarise"]
    assert {pid for _, pid, _ in calls} <= worker_pids
    record = read_session(root / ".kilnflow", session_id)
    assert record["run"]["runner"] == "DaskRunner"
    assert set(record["node_durations"]) == {"clean", "summarise", "report"}


@pytest.mark.timeout(180)
def test_dask_reports_a_node_it_ran_again_after_losing_its_worker(
    nodes: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = Pipeline(
        [
            node(nodes.double, "params:x", "base", name="prep"),
            node(nodes.die_once, ["base", "params:folder"], "after", name="flaky"),
        ]
    )
    catalog = DataCatalog()
    catalog.add_parameters({"x": 5, "folder": str(tmp_path)})
    with (
        local_cluster(2) as client,
        caplog.at_level(logging.WARNING, logger="kilnflow.runner"),
    ):
        runner = DaskRunner(client=client)
        outputs = runner.run(pipe, catalog)

    # Parameters travel with the tasks, and 'base' is recomputed if lost.
    assert outputs == {"after": 20}
    # 'prep' ran again too when its output was on the worker that died.
    assert "flaky" in runner.rerun_nodes
    assert set(runner.rerun_nodes) <= {"prep", "flaky"}
    message = runner.rerun_nodes["flaky"]
    assert re.match(
        r"Dask ran node 'flaky' again on worker tcp://127\.0\.0\.1:\d+ after worker "
        r"tcp://127\.0\.0\.1:\d+, which ran it or held its outputs, was lost \(it died",
        message,
    ), message
    assert message in caplog.text


@pytest.mark.timeout(180)
def test_dask_parameters_survive_the_loss_of_the_only_worker_holding_them(
    nodes: ModuleType, tmp_path: Path
) -> None:
    pipe = Pipeline([node(nodes.die_once, ["params:x", "params:folder"], "after", name="flaky")])
    catalog = DataCatalog()
    catalog.add_parameters({"x": 5, "folder": str(tmp_path)})
    with (
        local_cluster(1) as client,
    ):
        runner = DaskRunner(client=client)
        outputs = runner.run(pipe, catalog)

    # Its only worker died; the restarted one still had the parameters.
    assert outputs == {"after": 10}
    assert list(runner.rerun_nodes) == ["flaky"]


FLAKY_PIPELINE = """
import os

from kilnflow.pipeline import Pipeline, node


def die_once(x):
    marker = os.path.join(os.environ["KILNFLOW_TEST_MARKERS"], "died")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return x


def create_pipeline(**kwargs):
    return Pipeline([node(die_once, "params:min_valid", "survived", name="flaky")])
"""


@pytest.mark.timeout(180)
def test_the_session_records_a_node_dask_ran_again(
    make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project()
    (root / "src" / "demo" / "pipelines" / "flaky").mkdir()
    (root / "src" / "demo" / "pipelines" / "flaky" / "__init__.py").write_text(FLAKY_PIPELINE)
    monkeypatch.setenv("KILNFLOW_TEST_MARKERS", str(tmp_path))
    bootstrap_project(root)
    with (
        local_cluster(2) as client,
        Session.create() as session,
    ):
        session.run(pipeline_name="flaky", runner=DaskRunner(client=client))

    record = read_session(root / ".kilnflow", session.session_id)
    assert record["outcome"] == "success"
    assert list(record["rerun_nodes"]) == ["flaky"]
    assert record["rerun_nodes"]["flaky"].startswith("Dask ran node 'flaky' again on worker")


def test_dask_runner_starts_and_closes_its_own_cluster(nodes: ModuleType, tmp_path: Path) -> None:
    before = descendants(os.getpid())
    pipe, catalog = example(nodes, tmp_path)
    runner = DaskRunner(
        cluster_args={"n_workers": 1, "threads_per_worker": 2, "dashboard_address": ":0"}
    )
    assert runner.run(pipe, catalog)["final"] == 56
    started = descendants(os.getpid()) - before
    assert not [pid for pid in started if alive(pid)]
