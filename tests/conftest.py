"""Shared fixtures: isolated project state, starter projects, wheels and venvs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def isolated_project_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every test starts unconfigured, with its own KILNFLOW_HOME and no KILNFLOW_ENV.

    Project packages created under the test's temporary folders are forgotten
    afterwards, so two tests may both create a project called ``demo``.
    """
    from kilnflow.project import reset_project

    monkeypatch.setenv("KILNFLOW_HOME", str(tmp_path_factory.mktemp("kilnflow-home")))
    monkeypatch.delenv("KILNFLOW_ENV", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    reset_project()
    yield
    reset_project()
    base = str(tmp_path_factory.getbasetemp())
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(base):
            del sys.modules[name]


@pytest.fixture
def make_project(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Create a starter project (``kilnflow new``) under ``tmp_path``."""
    from kilnflow.project import create_project

    def make(name: str = "demo", *, example: bool = True) -> Path:
        return create_project(name, tmp_path / name, example=example)

    return make


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``kilnflow ARGS`` the way a user does: a subprocess of the console script."""
    environment = {**os.environ, **(env or {})}
    result = subprocess.run(
        [str(SCRIPTS / "kilnflow"), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"kilnflow {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def run_concurrently(
    commands: list[list[str]], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> list[tuple[int, int, str]]:
    """Start every command at once; each one's PID, exit code and stderr once all have ended.

    stderr is drained while waiting, so a chatty command cannot block on a full
    pipe; a command still running at the timeout is killed by its PID.
    """
    environment = {**os.environ, **(env or {})}
    processes = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    try:
        errors = [process.communicate(timeout=timeout)[1] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return [(p.pid, p.returncode, error) for p, error in zip(processes, errors, strict=True)]


def new_project(parent: Path, name: str = "demo", *options: str) -> Path:
    """``kilnflow new NAME`` in ``parent``; return the project folder."""
    result = run_cli("new", name, *options, cwd=parent)
    project = parent / name
    assert f"Created {project}" in result.stdout
    return project


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command prints on stderr (no traceback)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    return lines[0]


def session_ids(project: Path) -> list[str]:
    """Recorded session ids, newest first, as ``kilnflow session list`` prints them."""
    out = run_cli("session", "list", "--limit", "100", cwd=project).stdout
    if out.strip() == "No sessions recorded yet.":
        return []
    return [line.split()[0] for line in out.splitlines()]


def show(project: Path, session_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(
        run_cli("session", "show", "--json", session_id, cwd=project).stdout
    )
    return record


def read_session(folder: Path, session_id: str) -> dict[str, Any]:
    """The record of ``session_id`` in the SQLite store in ``folder``.

    The store is closed again: an open sqlite3 connection left to the garbage
    collector is a ResourceWarning from Python 3.13, an error in this suite.
    """
    from kilnflow.session import SQLiteStore

    with SQLiteStore(folder, session_id) as store:
        return store.read()


def latest_session(folder: Path) -> dict[str, Any]:
    """The newest record in the SQLite store in ``folder`` (store closed, as above)."""
    from kilnflow.session import SQLiteStore

    with SQLiteStore(folder, "") as store:
        (record,) = store.sessions(limit=1)
    return record


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kilnflow's wheel from this checkout plus wheels of all its dependencies.

    The ``build`` extra's wheels (hatchling, build, jinja2) are there too, for
    the tests that build projects in fresh environments.

    Built once per test session; every virtual environment the tests create
    installs from here with ``--no-index``, so installs run offline.
    """
    house = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(house),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = house.glob("kilnflow-*.whl")
    subprocess.run(
        # pip itself too: pipx upgrades pip in its shared environment.
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(house)),
            *(f"{wheel}[build]", "pip"),
        ],
        check=True,
        capture_output=True,
    )
    return house


def add_wheels(wheelhouse: Path, *requirements: str) -> Path:
    """Add wheels of ``requirements`` and their dependencies to ``wheelhouse``; return it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheelhouse), *requirements],
        check=True,
        capture_output=True,
    )
    return wheelhouse


@pytest.fixture(scope="session")
def dask_wheelhouse(wheelhouse: Path) -> Path:
    """The wheelhouse plus Dask's wheels, for venvs that run the project on a Dask cluster."""
    (wheel,) = wheelhouse.glob("kilnflow-*.whl")
    return add_wheels(wheelhouse, f"{wheel}[dask]")


@contextmanager
def local_cluster(n_workers: int = 2, **options: Any) -> Iterator[Any]:
    """A client of a real ``LocalCluster``: worker processes of one thread, on 127.0.0.1.

    It returns once every worker has joined, so work is spread as the test expects.
    """
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **options,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(n_workers)
        yield client


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End a server the test started, and whatever it started, by their PIDs."""
    children = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in children:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _scheduler_address(file: Path, scheduler: subprocess.Popen[bytes], log: Path) -> str:
    """The address a starting ``dask scheduler`` writes to its scheduler file, once complete."""
    deadline = time.monotonic() + 60
    while True:
        assert scheduler.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            return str(json.loads(file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)


@contextmanager
def dask_cli_cluster(
    folder: Path,
    *,
    scheduler_bin: Path = SCRIPTS,
    worker_bin: Path = SCRIPTS,
    worker_options: tuple[str, ...] = (),
    scheduler_env: Mapping[str, str] | None = None,
    worker_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """A cluster as users start one: ``dask scheduler`` and one ``dask worker``; its address.

    Each runs from ``*_bin`` (a venv's bin folder) with this process's
    environment minus the test venv's paths, plus ``*_env``; their logs go to
    ``folder``. It yields once the worker has joined and stops both by PID.
    """
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], log: str, env: Mapping[str, str] | None) -> None:
        with (folder / log).open("wb") as output:
            started.append(
                subprocess.Popen(
                    command,
                    cwd=folder,
                    env=outside_environment(**(env or {})),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            )

    try:
        start(
            [
                str(scheduler_bin / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
            "scheduler.log",
            scheduler_env,
        )
        address = _scheduler_address(scheduler_file, started[0], folder / "scheduler.log")
        start(
            [
                str(worker_bin / "dask"),
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(folder),
                *list(worker_options),
            ],
            "worker.log",
            worker_env,
        )
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(started):
            _stop(process)


def outside_environment(**extra: str) -> dict[str, str]:
    """This process's environment minus what ties a child to the test venv or checkout."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(extra)
    return environment


def run_installed(
    bindir: Path, args: list[str], cwd: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command installed in ``bindir`` from ``cwd``, with its own KILNFLOW_HOME."""
    return subprocess.run(
        [str(bindir / args[0]), *args[1:]],
        cwd=cwd,
        env=outside_environment(KILNFLOW_HOME=str(cwd / ".home"), **extra_env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def read_terminal(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``command`` with stderr on a pseudo-terminal; its exit code and what it showed."""
    import pty

    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=terminal, env=env
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    try:
        process.wait(timeout=120)
    finally:
        os.close(controller)
        if process.poll() is None:  # timed out: stop it by PID before failing
            process.kill()
            process.wait()
    return process.returncode, shown.decode(errors="replace")


def run_project_tests(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a generated project's own tests with pytest, its sources importable."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def data_folder(path: Path, readings: Path) -> Path:
    """A folder holding only the raw data that the example catalog's relative path names."""
    (path / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy(readings, path / "data" / "raw" / "readings.json")
    return path


def fresh_venv(path: Path, wheelhouse: Path, *requirements: str) -> Path:
    """A new virtual environment with ``requirements`` installed offline; returns its bin dir."""
    venv.EnvBuilder(with_pip=True).create(path)
    bindir = path / ("Scripts" if os.name == "nt" else "bin")
    install_offline(bindir / "python", wheelhouse, *requirements)
    return bindir


def install_offline(python: Path, wheelhouse: Path, *arguments: str) -> None:
    """``pip install ARGUMENTS`` with ``python``, from ``wheelhouse`` only."""
    subprocess.run(
        [
            *(str(python), "-m", "pip", "install", "-q"),
            *("--no-index", "--find-links", str(wheelhouse), *arguments),
        ],
        check=True,
        capture_output=True,
    )


#: Environment variable naming the file that :func:`add_counting_hook`'s hook writes.
HOOK_LOG_ENV = "KILNFLOW_TEST_HOOK_LOG"

_COUNTING_HOOK = '''
import multiprocessing
import os

from kilnflow.hooks import hook_impl


class CountNodes:
    """Logs node, pid and process name (tab-separated) to $KILNFLOW_TEST_HOOK_LOG."""

    @hook_impl
    def before_node_run(self, node):
        line = f"{node.name}\\t{os.getpid()}\\t{multiprocessing.current_process().name}\\n"
        with open(os.environ["KILNFLOW_TEST_HOOK_LOG"], "a") as file:
            file.write(line)
'''


def add_counting_hook(project: Path, package: str = "demo") -> None:
    """Register a project hook (in ``settings.HOOKS``) that logs every node it sees.

    Appending to a file named by an environment variable counts calls across
    every process a runner uses, since worker processes inherit the variable.
    """
    (project / "src" / package / "counting_hooks.py").write_text(_COUNTING_HOOK)
    settings = project / "src" / package / "settings.py"
    text = settings.read_text()
    assert "HOOKS = ()" in text, settings
    settings.write_text(
        text.replace(
            "HOOKS = ()",
            f"from {package}.counting_hooks import CountNodes\n\nHOOKS = (CountNodes(),)",
        )
    )


def counted_nodes(log: Path) -> list[tuple[str, int, str]]:
    """``(node, pid, process name)`` for each before_node_run call logged in ``log``."""
    if not log.exists():
        return []
    calls = []
    for line in log.read_text().splitlines():
        name, pid, process = line.split("\t")
        calls.append((name, int(pid), process))
    return calls


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid``, read from Linux's /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
