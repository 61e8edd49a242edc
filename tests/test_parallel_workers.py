"""ParallelRunner's workers: warm before their first node, started only as needed.

Each run that depends on a fresh fork server happens in its own Python
process (a script in ``tmp_path``), since a process has one fork server for
its whole life; the script prints what its nodes saw as JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import alive, descendants
from kilnflow.errors import NodeFailedError
from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner, SequentialRunner
from kilnflow.runner._base import cpu_count
from kilnflow.runner._task import predicted_imports, worker_imports

START_METHODS = [
    method
    for method in ("forkserver", "spawn")
    if method in multiprocessing.get_all_start_methods()
]

#: What sizes the native thread pools of OpenMP, OpenBLAS, MKL, Accelerate and numexpr.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: A library the nodes import inside a function body; it records who imported it.
LIBRARY = """
import os

IMPORTED_BY = os.getpid()
"""

#: Data of a type whose module only the workers need.
PAYLOAD = """
class Box:
    def __init__(self, value):
        self.value = value
"""

NODES = """
import os
import sys


def first(x):
    already = "warm_library" in sys.modules
    import warm_library
    import warm_payload

    return warm_payload.Box({"x": x, "preloaded": already, "pid": os.getpid()})


def second(box):
    return dict(box.value, second_pid=os.getpid(), env=os.environ.get("KF_WARM_TEST"))


def broken(x):
    import kf_no_such_module

    return x


def plus_one(x):
    return x + 1


def times_ten(x):
    return x * 10


def slow_to_import(x):
    import warm_hanging_library

    return x


def native_threads(x):
    import gc

    import numpy
    from threadpoolctl import threadpool_info

    threads = {name: value for name, value in os.environ.items() if name.endswith("THREADS")}
    return {
        "variables": threads,
        "pools": sorted({pool["num_threads"] for pool in threadpool_info()}),
        "collector": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
    }
"""

#: A library whose import never ends; it says so with a marker file first.
HANGING = """
import os
import time

open(os.path.join(os.environ["KF_WARM_MARKERS"], f"importing-{os.getpid()}"), "w").close()
time.sleep(600)
"""

HANGING_SCRIPT = """
import sys

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner, SequentialRunner

import warm_nodes

if __name__ == "__main__":
    pipe = Pipeline([node(warm_nodes.slow_to_import, "x", "y", name="slow")])
    ParallelRunner(start_method=sys.argv[1]).run(pipe, DataCatalog({"x": MemoryDataset(1)}))
"""

SCRIPT = """
import json
import os
import sys

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner, SequentialRunner

import warm_nodes

if __name__ == "__main__":
    pipe = Pipeline(
        [
            node(warm_nodes.first, "x", "box", name="first"),
            node(warm_nodes.second, "box", "result", name="second"),
        ]
    )
    runs = []
    for value in ("one", "two"):
        os.environ["KF_WARM_TEST"] = value
        runner = ParallelRunner(max_workers=2, start_method=sys.argv[1])
        runs.append(runner.run(pipe, DataCatalog({"x": MemoryDataset(1)}))["result"])
    runs.append({"parent_imported": sorted(set(sys.modules) & {"warm_library", "warm_payload"})})
    print(json.dumps(runs))
"""


THREADS_SCRIPT = """
import gc
import json
import os
import sys

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner

import warm_nodes

if __name__ == "__main__":
    pipe = Pipeline([node(warm_nodes.native_threads, "x", "seen", name="native_threads")])
    runner = ParallelRunner(max_workers=int(sys.argv[2]), start_method=sys.argv[1])
    worker = runner.run(pipe, DataCatalog({"x": MemoryDataset(1)}))["seen"]
    parent = {
        "variables": sorted(name for name in os.environ if name.endswith("THREADS")),
        "collector": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
    }
    print(json.dumps({"worker": worker, "parent": parent}))
"""


@pytest.fixture
def warm_dir(tmp_path: Path) -> Iterator[Path]:
    """The modules above in a folder; imported ones are forgotten afterwards."""
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "warm_library.py").write_text(LIBRARY, "utf-8")
    (folder / "warm_payload.py").write_text(PAYLOAD, "utf-8")
    (folder / "warm_nodes.py").write_text(NODES, "utf-8")
    (folder / "run_warm.py").write_text(SCRIPT, "utf-8")
    (folder / "warm_hanging_library.py").write_text(HANGING, "utf-8")
    (folder / "run_hanging.py").write_text(HANGING_SCRIPT, "utf-8")
    (folder / "run_threads.py").write_text(THREADS_SCRIPT, "utf-8")
    yield folder
    for name in ("warm_library", "warm_payload", "warm_nodes"):
        sys.modules.pop(name, None)


def script_environment(folder: Path) -> dict[str, str]:
    """Scripts import the modules above; the start method is what each script chooses."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    environment.pop("KILNFLOW_MP_START_METHOD", None)
    return environment


def run_script(folder: Path, script: str, *args: str) -> Any:
    """Run one of the scripts above; what it printed last, as JSON."""
    result = subprocess.run(
        [sys.executable, str(folder / script), *args],
        cwd=folder,
        env=script_environment(folder),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_workers_hold_what_their_nodes_import_before_the_first_node_runs(
    warm_dir: Path, start_method: str
) -> None:
    first, second, parent = run_script(warm_dir, "run_warm.py", start_method)

    # The node's own `import warm_library` found it already imported, in both runs.
    assert first["preloaded"] is True
    assert second["preloaded"] is True
    # A chain needs one worker at a time: both nodes ran in the same one.
    assert first["pid"] == first["second_pid"]
    # Workers see the environment of their run, even when forked from an older server.
    assert (first["env"], second["env"]) == ("one", "two")
    # The Box passed from worker to worker: the parent never unpickled it.
    assert parent == {"parent_imported": []}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_workers_share_the_cpus_between_their_native_thread_pools(
    warm_dir: Path, start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One OpenBLAS thread per CPU in every worker would oversubscribe the CPUs."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")  # the user's own choice wins
    workers = cpu_count()

    seen = run_script(warm_dir, "run_threads.py", start_method, str(workers))

    worker, parent = seen["worker"], seen["parent"]
    # Each of as many workers as CPUs gets one thread; numpy's OpenBLAS took it at its load.
    assert worker["variables"] == {**dict.fromkeys(THREAD_VARIABLES, "1"), "MKL_NUM_THREADS": "3"}
    assert worker["pools"] == [1]
    # The worker froze what it imported before its first node, then collects as usual.
    assert worker["collector"] is True
    assert worker["frozen"] > 0
    # The parent is as it was: only its user's variable, its collector untouched.
    assert parent == {"variables": ["MKL_NUM_THREADS"], "collector": True, "frozen": 0}


@pytest.mark.skipif("forkserver" not in START_METHODS, reason="no forkserver on this platform")
@pytest.mark.timeout(180)
def test_a_worker_of_fewer_than_the_cpus_gets_the_rest_for_its_thread_pools(
    warm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    seen = run_script(warm_dir, "run_threads.py", "forkserver", "1")

    assert seen["worker"]["variables"] == dict.fromkeys(THREAD_VARIABLES, str(cpu_count()))
    assert seen["worker"]["pools"] == [cpu_count()]


def test_worker_imports_are_read_without_importing_anything(
    warm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(warm_dir))
    import warm_nodes

    pipe = Pipeline(
        [
            node(warm_nodes.first, "x", "box", name="first"),
            node(warm_nodes.broken, "x", "y", name="broken"),
        ]
    )
    found = worker_imports(pipe, DataCatalog(), warm_nodes.first)

    assert found.project == ("warm_nodes",)
    # A loop of __wrapped__ (a decorator gone wrong) is no error: the outer function is read.
    monkeypatch.setattr(warm_nodes.plus_one, "__wrapped__", warm_nodes.plus_one, raising=False)
    looped = Pipeline([node(warm_nodes.plus_one, "a", "b", name="looped")])
    assert worker_imports(looped, DataCatalog(), warm_nodes.first).project == ("warm_nodes",)
    assert {"warm_library", "warm_payload", "kf_no_such_module"} <= set(found.libraries)
    assert "warm_nodes" not in found.libraries
    assert "warm_library" not in sys.modules


@pytest.mark.timeout(120)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_a_node_whose_import_fails_still_fails_with_its_own_error(
    warm_dir: Path, start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(warm_dir))
    import warm_nodes

    pipe = Pipeline([node(warm_nodes.broken, "x", "y", name="broken")])
    runner = ParallelRunner(max_workers=1, start_method=start_method)

    with pytest.raises(NodeFailedError, match="No module named 'kf_no_such_module'"):
        runner.run(pipe, DataCatalog({"x": MemoryDataset(1)}))


@pytest.mark.timeout(120)
def test_memory_data_of_a_failed_run_is_left_in_the_catalog(
    warm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(warm_dir))
    import warm_nodes

    pipe = Pipeline(
        [
            node(warm_nodes.first, "x", "box", name="first"),
            node(warm_nodes.broken, "box", "never", name="broken"),
        ]
    )
    catalog = DataCatalog({"x": MemoryDataset(1)})

    with pytest.raises(NodeFailedError):
        ParallelRunner(max_workers=2, start_method="spawn").run(pipe, catalog)

    # As with nodes run in turn, the unfinished node's input is still there.
    assert catalog.load("box").value["x"] == 1


@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through Linux's /proc")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_ctrl_c_while_workers_import_ends_the_run_and_every_process(
    warm_dir: Path, tmp_path: Path, start_method: str
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(warm_dir / "run_hanging.py"), start_method],
        cwd=warm_dir,
        env={**script_environment(warm_dir), "KF_WARM_MARKERS": str(markers)},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not list(markers.iterdir()) and process.poll() is None:
            time.sleep(0.05)
        started = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr or "Interrupted" in stderr, stderr
    # The process importing the library (a fork server or a spawned worker) is among them.
    assert importers(markers) <= started
    while any(alive(pid) for pid in started):
        time.sleep(0.1)  # the timeout marker fails the test if any lingers


@pytest.mark.timeout(120)
def test_memory_data_saved_and_loaded_under_transcoded_names_reaches_its_reader(
    warm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(warm_dir))
    import warm_nodes

    pipe = Pipeline(
        [
            node(warm_nodes.plus_one, "a", "x@one", name="make"),
            node(warm_nodes.times_ten, "x@two", "y", name="use"),
        ]
    )

    def catalog() -> DataCatalog:
        return DataCatalog({"a": MemoryDataset(1), "x": MemoryDataset()})

    expected = SequentialRunner().run(pipe, catalog())
    assert ParallelRunner(max_workers=2, start_method="spawn").run(pipe, catalog()) == expected
    assert expected == {"y": 20}


DEFAULT_START_SCRIPT = """
import json
import sys
from multiprocessing import forkserver

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner

import warm_nodes

if __name__ == "__main__":
    plain = Pipeline([node(warm_nodes.plus_one, "x", "y", name="plus_one")])
    warm = Pipeline([node(warm_nodes.first, "x", "box", name="first")])
    started = []
    for pipe in (plain, warm):
        ParallelRunner().run(pipe, DataCatalog({"x": MemoryDataset(1)}))
        started.append(forkserver._forkserver._forkserver_pid is not None)
    print(json.dumps(started))
"""


@pytest.mark.skipif("forkserver" not in START_METHODS, reason="no forkserver on this platform")
def test_a_fork_server_starts_only_for_nodes_that_import_libraries(warm_dir: Path) -> None:
    """A server holding nothing would only add its own start to the run."""
    (warm_dir / "run_default.py").write_text(DEFAULT_START_SCRIPT, "utf-8")

    assert run_script(warm_dir, "run_default.py") == [False, True]


#: A library a project's node module imports at its top. Each process importing
#: it marks so, then waits (up to a minute) until another process is importing it too;
#: it notes what sizes OpenBLAS's threads in that process.
MEETING_LIBRARY = """
import os
import time

folder = os.environ["KF_WARM_MARKERS"]
open(os.path.join(folder, f"importing-{os.getpid()}"), "w").close()
deadline = time.monotonic() + float(os.environ.get("KF_WARM_WAIT", "60"))
while len(os.listdir(folder)) < 2 and time.monotonic() < deadline:
    time.sleep(0.02)
met = "met" if len(os.listdir(folder)) >= 2 else "alone"
with open(os.path.join(folder, f"imported-{os.getpid()}"), "w") as file:
    file.write(f"{met} {os.environ.get('OPENBLAS_NUM_THREADS')}")
"""

#: The node module of the project's only pipeline, importing a library at its top.
EARLY_PIPELINE = """
import os

import {library}

from kilnflow.pipeline import Pipeline, node


def note_worker():
    open(os.path.join(os.environ["KF_WARM_MARKERS"], f"node-{{os.getpid()}}"), "w").close()
    return 1


def create_pipeline():
    return Pipeline([node(note_worker, None, "noted", name="note_worker")])
"""

#: A registry whose ``heavy`` pipeline imports a library inside its node, and
#: whose own import waits until some process imports that library.
WAITING_REGISTRY = """
import os
import time

from kilnflow.pipeline import Pipeline, node

deadline = time.monotonic() + 60
while not os.listdir(os.environ["KF_WARM_MARKERS"]) and time.monotonic() < deadline:
    time.sleep(0.02)


def light():
    return 1


def heavy():
    import warm_hanging_library

    return 1


def register_pipelines():
    return {
        "__default__": Pipeline([node(light, None, "out", name="light")]),
        "heavy": Pipeline([node(heavy, None, "out", name="heavy")]),
    }
"""


def early_project(make_project: Any, tmp_path: Path, library: str, source: str) -> Path:
    """A project whose pipeline module ``pipelines/early`` imports ``library`` at its top."""
    project: Path = make_project(example=False)
    (project / "src" / f"{library}.py").write_text(source, "utf-8")
    folder = project / "src" / "demo" / "pipelines" / "early"
    folder.mkdir()
    (folder / "__init__.py").write_text(EARLY_PIPELINE.format(library=library), "utf-8")
    (tmp_path / "markers").mkdir()
    return project


def early_environment(tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "KF_WARM_MARKERS": str(tmp_path / "markers")}
    for name in ("KILNFLOW_MP_START_METHOD", *THREAD_VARIABLES):
        environment.pop(name, None)
    return environment


def parallel_run_command(*args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "kilnflow"),
        "run",
        "--runner",
        "ParallelRunner",
        *args,
    ]


def run_in_parallel(project: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kilnflow run --runner ParallelRunner ARGS`` in ``project``, as a user types it."""
    return subprocess.run(
        parallel_run_command(*args),
        cwd=project,
        env=early_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def importers(markers: Path) -> set[int]:
    return {int(path.name.split("-")[1]) for path in markers.glob("importing-*")}


def stop_and_wait(process: subprocess.Popen[str], number: int) -> str:
    """Signal the command, and return its stderr once it ended (killed if it does not)."""
    try:
        process.send_signal(number)
        return process.communicate(timeout=30)[1]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.skipif("forkserver" not in START_METHODS, reason="no forkserver on this platform")
@pytest.mark.timeout(120)
def test_the_fork_server_imports_a_node_modules_libraries_while_the_run_does(
    make_project: Any, tmp_path: Path
) -> None:
    """Node modules import pandas at their top: the run must not wait for two imports in a row."""
    project = early_project(make_project, tmp_path, "meeting_library", MEETING_LIBRARY)
    markers = tmp_path / "markers"

    result = run_in_parallel(project, tmp_path)

    assert result.returncode == 0, result.stderr
    # Two processes imported the library, and each found the other importing it
    # at the same time: this one building the pipeline, and the fork server. The
    # server's libraries sized their thread pools for a worker of as many as CPUs.
    outcomes = {path.name: path.read_text() for path in markers.glob("imported-*")}
    assert sorted(outcomes.values()) == ["met 1", "met None"], outcomes
    # The node ran in a worker forked from the server, already holding the library.
    (node_marker,) = markers.glob("node-*")
    assert int(node_marker.name.split("-")[1]) not in importers(markers)


@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through Linux's /proc")
@pytest.mark.skipif("forkserver" not in START_METHODS, reason="no forkserver on this platform")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_while_the_run_and_its_fork_server_import_ends_both(
    make_project: Any, tmp_path: Path, number: int
) -> None:
    project = early_project(make_project, tmp_path, "warm_hanging_library", HANGING)
    markers = tmp_path / "markers"
    process = subprocess.Popen(
        parallel_run_command(),
        cwd=project,
        env=early_environment(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    while len(importers(markers)) < 2 and process.poll() is None:
        time.sleep(0.05)
    assert importers(markers) - {process.pid} <= descendants(process.pid)

    stderr = stop_and_wait(process, number)

    assert process.returncode == 128 + number, stderr
    assert f"Interrupted by {signal.Signals(number).name}." in stderr
    while any(alive(pid) for pid in importers(markers)):
        time.sleep(0.1)  # the timeout marker fails the test if the server lingers


@pytest.mark.skipif(sys.platform != "linux", reason="finds processes through Linux's /proc")
@pytest.mark.skipif("forkserver" not in START_METHODS, reason="no forkserver on this platform")
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("pipeline", "code", "said"),
    [
        ("__default__", 0, "1 node run"),
        ("nope", 1, "Pipeline 'nope' is not registered"),
    ],
    ids=["light-pipeline", "unknown-pipeline"],
)
def test_a_fork_server_the_run_does_not_use_is_ended(
    make_project: Any, tmp_path: Path, pipeline: str, code: int, said: str
) -> None:
    """The registry names a library only another pipeline's node imports; it never stalls a run."""
    project: Path = make_project(example=False)
    (project / "src" / "warm_hanging_library.py").write_text(HANGING, "utf-8")
    (project / "src" / "demo" / "pipeline_registry.py").write_text(WAITING_REGISTRY, "utf-8")
    markers = tmp_path / "markers"
    markers.mkdir()

    result = run_in_parallel(project, tmp_path, "--pipeline", pipeline)

    assert result.returncode == code, result.stderr
    assert said in result.stderr
    # The server was importing a library no node of this run needs; it does not outlive the run.
    (server,) = importers(markers)
    while alive(server):
        time.sleep(0.1)  # the timeout marker fails the test if the server lingers


def test_predicted_imports_follow_the_package_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {
        "shop/__init__.py": "import shop_init_library\n",
        "shop/registry.py": "from shop import pipes\nfrom .pipes.sales import build\n",
        "shop/pipes/__init__.py": "",
        "shop/pipes/sales/__init__.py": "from .nodes import total\nfrom .. import helpers\n",
        "shop/pipes/sales/nodes.py": (
            "import sales_library.sub\n\ndef total():\n    from lazy_library import x\n"
        ),
        "shop/pipes/helpers.py": "import helper_library\n",
        "shop/unused.py": "import unused_library\n",
    }
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)

    found = predicted_imports(["shop.registry", "shop.missing"])

    assert sorted(found) == [
        "helper_library",
        "lazy_library",
        "sales_library.sub",
        "shop_init_library",
    ]
    assert set(sys.modules) == before


def test_worker_imports_count_what_a_project_module_a_node_imports_will_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from .helpers import model`` in a node brings what helpers imports at its top."""
    files = {
        "shop/__init__.py": "",
        "shop/nodes.py": "def fit(x):\n    from .helpers import model\n\n    return model(x)\n",
        "shop/helpers.py": (
            "import helper_library\n\n\ndef model(x):\n    import other_library\n\n    return x\n"
        ),
    }
    for name, source in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source, "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    from shop import nodes

    found = worker_imports(
        Pipeline([node(nodes.fit, "x", "y", name="fit")]), DataCatalog(), nodes.fit
    )

    assert found.project == ("shop.nodes",)
    # What importing shop.helpers runs; a function of it that no node calls is not read.
    assert "helper_library" in found.libraries
    assert "other_library" not in found.libraries
    assert not {"shop.helpers", "helper_library"} & set(sys.modules)
