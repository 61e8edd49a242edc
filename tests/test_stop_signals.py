"""SIGTERM and Ctrl-C stop ``kilnflow run`` with every runner, leaving nothing behind.

Each test runs a real project with the real command in a subprocess, waits
until its nodes are busy (each writes a marker naming its process), sends
a real signal, and checks the exit status, the session recorded as
``interrupted`` with the signal, that no process the run started outlives
it, and that no temporary file of an interrupted save stays on disk.
Processes are found through ``/proc``: the run's descendants just before
the signal must all be gone shortly after.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    SCRIPTS,
    alive,
    descendants,
    fresh_venv,
    latest_session,
    outside_environment,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds processes through Linux's /proc"
)

#: A node that hangs, and a node whose output's save hangs halfway through.
STOP_PIPELINE = """
import os
import time

from kilnflow.pipeline import Pipeline, node


def _mark(kind):
    folder = os.environ["KILNFLOW_TEST_MARKERS"]
    with open(os.path.join(folder, f"{kind}-{os.getpid()}"), "w"):
        pass


def hang(x):
    _mark("node")
    time.sleep(600)
    return x


def produce(x):
    return "data" * 1000


def create_pipeline(**kwargs):
    return Pipeline(
        [
            node(hang, "params:start", "never", name="hang"),
            node(produce, "params:start", "slow_output", name="produce"),
        ]
    )
"""

SLOW_DATASET = '''
import os
import time

from kilnflow.io import AbstractDataset, atomic_write


class SlowDataset(AbstractDataset):
    """Writes half its data to the (atomic) temporary file, then waits."""

    def __init__(self, filepath):
        self.filepath = filepath

    def _load(self):
        with open(self.filepath) as file:
            return file.read()

    def _save(self, data):
        with atomic_write(self.filepath, "w") as file:
            file.write(data[: len(data) // 2])
            file.flush()
            folder = os.environ["KILNFLOW_TEST_MARKERS"]
            with open(os.path.join(folder, f"save-{os.getpid()}"), "w"):
                pass
            time.sleep(600)
            file.write(data[len(data) // 2 :])

    def _exists(self):
        return os.path.exists(self.filepath)

    def _describe(self):
        return {"filepath": self.filepath}
'''

CATALOG = """
slow_output:
  type: demo.slow.SlowDataset
  filepath: data/slow/output.txt
"""

DASK_ARGS = (
    "cluster_args={n_workers: 2, threads_per_worker: 1, processes: true, "
    "host: 127.0.0.1, dashboard_address: '127.0.0.1:0'}"
)

RUNNERS = {
    "sequential": [],
    "thread": ["--max-workers", "2"],
    "parallel": ["--max-workers", "2"],
    "dask": ["--runner-args", DASK_ARGS],
}


@pytest.fixture(scope="module")
def stop_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter project plus a ``stop`` pipeline whose nodes and saves hang."""
    from kilnflow.project import create_project

    root = create_project("demo", tmp_path_factory.mktemp("stop") / "demo")
    pipeline = root / "src" / "demo" / "pipelines" / "stop"
    pipeline.mkdir()
    (pipeline / "__init__.py").write_text(STOP_PIPELINE)
    (root / "src" / "demo" / "slow.py").write_text(SLOW_DATASET)
    with (root / "conf" / "base" / "catalog.yml").open("a") as catalog:
        catalog.write(CATALOG)
    with (root / "conf" / "base" / "parameters.yml").open("a") as parameters:
        parameters.write("\nstart: 1\n")
    return root


def run_until_busy(
    project: Path, markers: Path, args: list[str], expected: int
) -> subprocess.Popen[str]:
    """Start ``kilnflow run ARGS`` and return once ``expected`` markers exist."""
    markers.mkdir()
    process = subprocess.Popen(
        [str(SCRIPTS / "kilnflow"), "run", "--pipeline", "stop", *args],
        cwd=project,
        env={**os.environ, "KILNFLOW_TEST_MARKERS": str(markers)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_until_busy(process, markers, expected)
    return process


def wait_until_busy(process: subprocess.Popen[str], markers: Path, expected: int) -> None:
    """Return once the run wrote ``expected`` markers: its nodes or saves are hanging."""
    deadline = time.monotonic() + 120
    while len(list(markers.iterdir())) < expected:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"the run did not get busy (exit {process.returncode}):\n{stderr}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[str], number: int) -> tuple[int, str, set[int]]:
    """Send signal ``number``; return the exit status, stderr and the run's processes then."""
    started = descendants(process.pid)
    process.send_signal(number)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"the run did not end within 30 s of {signal.Signals(number).name}:\n{stderr}")
    return process.returncode, stderr, started


def assert_all_ended(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids if alive(pid)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes of the run outlived it: {survivors}"


def temporary_files(folder: Path) -> list[Path]:
    return list(folder.rglob("*.tmp"))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_ends_the_run_its_workers_and_its_unfinished_saves(
    stop_project: Path, tmp_path: Path, runner: str, number: int
) -> None:
    # Run in turn, the run hangs in the save; the others hang in both nodes at once.
    only = ["--nodes", "produce"] if runner == "sequential" else []
    process = run_until_busy(
        stop_project,
        tmp_path / "markers",
        ["--runner", runner, *RUNNERS[runner], *only],
        expected=1 if runner == "sequential" else 2,
    )

    returncode, stderr, started = stop(process, number)

    name = signal.Signals(number).name
    assert returncode == 128 + number, stderr
    assert f"Interrupted by {name}." in stderr
    # Dask's workers may log their own comms closing; no traceback may come from the run.
    assert not re.search(r'File ".*[/\\](kilnflow|demo)[/\\]', stderr), stderr
    if runner != "dask":
        assert "Traceback" not in stderr
    if runner == "thread":
        assert "worker thread(s) still running 'hang', 'produce' were abandoned" in stderr
    assert_all_ended(started)
    record = latest_session(stop_project / ".kilnflow")
    assert record["outcome"] == "interrupted"
    assert record["signal"] == name
    assert temporary_files(stop_project / "data") == []
    assert not (stop_project / "data" / "slow" / "output.txt").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_to_the_packaged_command_stops_its_parallel_run(
    stop_project: Path, tmp_path: Path, wheelhouse: Path
) -> None:
    from kilnflow.packaging import package_project

    wheel = package_project(stop_project, tmp_path / "dist")
    bindir = fresh_venv(tmp_path / "venv", wheelhouse, str(wheel))
    work = tmp_path / "work"
    work.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    home = tmp_path / "home"
    process = subprocess.Popen(
        [str(bindir / "python"), "-m", "demo", "--pipeline", "stop", "-r", "parallel"],
        cwd=work,
        env=outside_environment(KILNFLOW_HOME=str(home), KILNFLOW_TEST_MARKERS=str(markers)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_until_busy(process, markers, expected=2)

    returncode, stderr, started = stop(process, signal.SIGTERM)

    assert returncode == 143, stderr
    assert "Interrupted by SIGTERM." in stderr
    assert_all_ended(started)
    record = latest_session(home)
    assert (record["mode"], record["outcome"], record["signal"]) == (
        "packaged",
        "interrupted",
        "SIGTERM",
    )
    assert temporary_files(work) == []
