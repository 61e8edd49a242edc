"""Kilnflow against Kedro, side by side: ``python3 bench/suite.py [--quick] [--json out.json]``.

One command from a clean checkout, with only Python 3.9+ and the package
index. Everything it builds lives under ``.bench/`` (git-ignored) and is
reused while it is still valid (a marker file per environment records what
it was built from), so the first run spends a few minutes setting up and
later runs go straight to measuring:

- ``venv-kilnflow``: Kilnflow installed from this checkout (not editable);
  reinstalled when ``src/``, ``templates/`` or ``pyproject.toml`` change.
- ``venv-kedro``: ``kedro==1.7.0`` and ``kedro-datasets[json,text]``.
- ``projects/``: one project per framework with the same pipelines and the
  same data. Kilnflow's comes from ``kilnflow new --no-example``, Kedro's from
  ``kedro new --tools none --example n`` (Kedro's own template, rendered by
  Kedro). Each gets the same ``nodes.py`` and a registry that builds only the
  pipeline asked for, by name: ``chain_N`` (N trivial nodes in a line),
  ``fan_N`` (one source, N-2 parallel nodes, one sink) for N in 10, 100,
  1,000, 5,000, 10,000; ``cpu_8`` (8 CPU-bound nodes of ~0.5 s) and
  ``files`` (read a JSON file, 3 nodes, write JSON and text). Each project
  is its own git repository, packaged with its framework's command and
  installed (without dependencies) into its framework's venv.
- ``fresh-kilnflow`` / ``fresh-kedro``: fresh venvs holding only a packaged
  project, Kilnflow's installed offline from a local wheelhouse of Kilnflow
  and its dependencies, Kedro's from the index, to count installed packages.

Every sample is a fresh process. Each case runs Kilnflow and Kedro
alternately (A B A B ...) after one warm-up run each (skipped for runs that
take seconds), and reports the median, min-max and peak RSS (``os.wait4``
rusage: the largest process of the sample's process tree) and the ratio
Kedro/Kilnflow. In-process cases time ``bootstrap_project`` + session
create + run + close inside the child, with each framework's own Python API
and default runner options. Kedro's slowest runs (5,000 and 10,000 nodes,
ParallelRunner on 1,000 nodes: minutes each) run once, and not at all with
``--quick`` (n/a); its 10,000-node runs and its ParallelRunner on 1,000
nodes are stopped after ``--kedro-cap`` seconds and reported as a lower
bound (">"). The last table checks every target of the benchmark
issue against the measured ratios. Timing output goes to stdout, progress to
stderr; ``--json`` writes every sample.

Telemetry is off for Kedro (``KEDRO_DISABLE_TELEMETRY=1``, ``DO_NOT_TRACK=1``);
packaged Kilnflow runs record their sessions under ``.bench/home``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / ".bench"
SUITE = Path(__file__).resolve()

KEDRO_PINS = ("kedro==1.7.0", "kedro-datasets[json,text]==9.6.0")
KEDRO_VERSION = KEDRO_PINS[0].partition("==")[2]
FRAMEWORKS = ("kilnflow", "kedro")
KF_PACKAGE, KD_PACKAGE = "bench_kilnflow", "bench_kedro"
HEAVY_MODULES = ("pandas", "omegaconf", "fsspec", "rich", "jinja2", "dask")
CPU_NODES, CPU_SECONDS = 8, 0.5
READINGS = 1_000

# The node functions of both projects, character for character.
NODES_SOURCE = '''\
"""Node functions shared by the benchmark pipelines; no framework imports."""

from __future__ import annotations

from typing import Any


def source() -> int:
    return 0


def identity(value: Any) -> Any:
    return value


def gather(*values: Any) -> int:
    return len(values)


def burn(loops: int) -> int:
    """Pure-Python CPU work that holds the GIL."""
    total = 0
    for index in range(loops):
        total += index * index % 7
    return total


def clean_readings(readings: list[dict[str, Any]], min_valid: float) -> list[dict[str, Any]]:
    return [row for row in readings if row["value"] >= min_valid]


def summarise_stations(readings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    by_station: dict[str, list[float]] = {}
    for row in readings:
        by_station.setdefault(row["station"], []).append(row["value"])
    return {
        station: {
            "count": len(values),
            "mean": sum(values) / len(values),
            "min": min(values),
            "max": max(values),
        }
        for station, values in sorted(by_station.items())
    }


def render_report(summary: dict[str, dict[str, float]], options: dict[str, Any]) -> str:
    places = options["decimals"]
    lines = [options["title"], ""]
    for station, stats in summary.items():
        lines.append(
            f"{station:<8} n={stats['count']:<4} mean={stats['mean']:.{places}f} "
            f"min={stats['min']:.{places}f} max={stats['max']:.{places}f}"
        )
    return "\\n".join(lines) + "\\n"
'''

# The pipeline registry of both projects; only the framework import differs.
REGISTRY_SOURCE = '''\
"""The benchmark pipelines, built on first use, by name.

Building every size up front would cost more than running a small one, so
register_pipelines() returns a read-only mapping that builds only the
pipelines that are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Callable

from {framework}.pipeline import Pipeline, node

from {package}.nodes import (
    burn,
    clean_readings,
    gather,
    identity,
    render_report,
    source,
    summarise_stations,
)

SIZES = (10, 100, 1_000, 5_000, 10_000)
CPU_NODES = {cpu_nodes}


def chain(size: int) -> Pipeline:
    nodes = [node(source, None, "d0", name="n0")]
    nodes += [node(identity, f"d{{i - 1}}", f"d{{i}}", name=f"n{{i}}") for i in range(1, size)]
    return Pipeline(nodes)


def fan(size: int) -> Pipeline:
    middle = [node(identity, "src", f"m{{i}}", name=f"n{{i}}") for i in range(size - 2)]
    sink = node(gather, [f"m{{i}}" for i in range(size - 2)], "out", name="sink")
    return Pipeline([node(source, None, "src", name="source"), *middle, sink])


def cpu(count: int) -> Pipeline:
    return Pipeline(
        [node(burn, "params:loops", f"burnt{{i}}", name=f"burn{{i}}") for i in range(count)]
    )


def files() -> Pipeline:
    return Pipeline(
        [
            node(clean_readings, ["readings", "params:min_valid"], "clean_readings", name="clean"),
            node(summarise_stations, "clean_readings", "station_summary", name="summarise"),
            node(render_report, ["station_summary", "params:report"], "report", name="report"),
        ]
    )


BUILDERS: dict[str, Callable[[], Pipeline]] = {{
    "__default__": lambda: chain(10),
    "files": files,
    f"cpu_{{CPU_NODES}}": lambda: cpu(CPU_NODES),
    **{{f"chain_{{n}}": (lambda n=n: chain(n)) for n in SIZES}},
    **{{f"fan_{{n}}": (lambda n=n: fan(n)) for n in SIZES}},
}}


class LazyPipelines(Mapping[str, Pipeline]):
    def __init__(self) -> None:
        self._built: dict[str, Pipeline] = {{}}

    def __getitem__(self, name: str) -> Pipeline:
        if name not in self._built:
            self._built[name] = BUILDERS[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(BUILDERS)

    def __len__(self) -> int:
        return len(BUILDERS)


def register_pipelines() -> Mapping[str, Pipeline]:
    return LazyPipelines()
'''

PARAMETERS = """\
min_valid: 0.0
report:
  title: Station report
  decimals: 2
loops: 1000
"""

CATALOG = """\
readings:
  type: {json}
  filepath: data/raw/readings.json

station_summary:
  type: {json}
  filepath: data/processed/station_summary.json

report:
  type: {text}
  filepath: data/reporting/report.txt
"""

CHILD_ENV_DROP = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KILNFLOW_ENV", "KEDRO_ENV")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- set-up


def digest(paths: Iterable[Path]) -> str:
    """A content hash of files and folders (caches and bytecode left out)."""
    sha = hashlib.sha256()
    for root in paths:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                sha.update(path.relative_to(REPO).as_posix().encode() + b"\0")
                sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def call(
    command: Sequence[str | Path], cwd: Path | None = None, bin_dir: Path | None = None
) -> str:
    """Run a set-up command; fail with its output when it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=child_env(bin_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"set-up command failed: {' '.join(map(str, command))}\n{tail}")
    return result.stdout


def child_env(bin_dir: Path | None = None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CHILD_ENV_DROP}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        KILNFLOW_HOME=str(BENCH / "home"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.update(extra)
    return env


def read_marker(folder: Path, name: str = "bench") -> Any:
    try:
        return json.loads((folder / f".{name}-marker.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def write_marker(folder: Path, key: Any, name: str = "bench") -> None:
    (folder / f".{name}-marker.json").write_text(json.dumps(key, sort_keys=True), "utf-8")


def same_key(folder: Path, key: Any, name: str = "bench") -> bool:
    return bool(read_marker(folder, name) == json.loads(json.dumps(key)))


def refresh(folder: Path, name: str, key: Any, update: Callable[[], object], what: str) -> None:
    """Update part of ``folder`` in place when its ``name`` marker is stale."""
    if same_key(folder, key, name):
        return
    log(f"[set-up] {what} ...")
    started = time.perf_counter()
    update()
    write_marker(folder, key, name)
    log(f"[set-up] {what}: {time.perf_counter() - started:.1f} s")


def cached(folder: Path, key: Any, build: Callable[[], object], what: str) -> None:
    """Build ``folder`` from scratch unless its marker says it was built from ``key``."""
    if same_key(folder, key):
        return
    log(f"[set-up] {what} ...")
    started = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    build()
    write_marker(folder, key)
    log(f"[set-up] {what}: {time.perf_counter() - started:.1f} s")


@dataclass
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def create(self) -> None:
        call([sys.executable, "-m", "venv", self.path])

    def pip(self, *args: str | Path) -> str:
        return call([self.python, "-m", "pip", "--quiet", *args])

    def package_list(self) -> list[str]:
        listed = json.loads(call([self.python, "-m", "pip", "list", "--format", "json"]))
        return sorted(item["name"] for item in listed)

    def site_packages_mb(self) -> float:
        total = sum(
            path.stat().st_size
            for path in self.path.glob("lib/python*/site-packages/**/*")
            if path.is_file()
        )
        return total / 1e6


@dataclass
class Setup:
    kilnflow: Venv
    kedro: Venv
    kf_project: Path
    kd_project: Path
    kd_conf_archive: Path
    fresh: dict[str, Venv]
    run_dir: Path
    tree: str


def prepare() -> Setup:
    """Venvs, projects, packaged artefacts and fresh venvs, rebuilt only when stale."""
    BENCH.mkdir(exist_ok=True)
    for folder in ("home", "run", "artifacts"):
        (BENCH / folder).mkdir(exist_ok=True)
    python = platform.python_version()
    tree = digest([REPO / "src" / "kilnflow", REPO / "templates", REPO / "pyproject.toml"])
    suite = digest([SUITE])
    kilnflow = Venv(BENCH / "venv-kilnflow")
    kedro = Venv(BENCH / "venv-kedro")

    deps = {"python": python, "pyproject": digest([REPO / "pyproject.toml"])}

    def build_kilnflow_venv() -> None:
        kilnflow.create()
        kilnflow.pip("install", REPO)
        write_marker(kilnflow.path, tree, "tree")
        write_marker(kilnflow.path, time.time(), "created")

    cached(kilnflow.path, deps, build_kilnflow_venv, "Kilnflow venv")
    refresh(
        kilnflow.path,
        "tree",
        tree,
        lambda: kilnflow.pip("install", "--no-deps", "--force-reinstall", REPO),
        "reinstall Kilnflow from the changed checkout",
    )

    def build_kedro_venv() -> None:
        kedro.create()
        kedro.pip("install", *KEDRO_PINS)
        write_marker(kedro.path, time.time(), "created")

    cached(kedro.path, {"python": python, "pins": KEDRO_PINS}, build_kedro_venv, "Kedro venv")

    projects = BENCH / "projects"
    kf_project = projects / "kilnflow" / "bench-kilnflow"
    kd_project = projects / "kedro" / "bench-kedro"
    # A project's wheel is installed into its framework's venv: a new venv needs it again.
    kf_key = {"tree": tree, "suite": suite, "venv": read_marker(kilnflow.path, "created")}
    kd_key = {"pins": KEDRO_PINS, "suite": suite, "venv": read_marker(kedro.path, "created")}
    cached(
        kf_project.parent,
        kf_key,
        lambda: make_kilnflow_project(kilnflow, kf_project),
        "Kilnflow project (kilnflow new, package, install)",
    )
    cached(
        kd_project.parent,
        kd_key,
        lambda: make_kedro_project(kedro, kd_project),
        "Kedro project (kedro new, kedro package, install)",
    )
    fresh = {"kilnflow": Venv(BENCH / "fresh-kilnflow"), "kedro": Venv(BENCH / "fresh-kedro")}
    wheelhouse = BENCH / "wheelhouse"

    def build_wheelhouse() -> None:
        kilnflow.pip("wheel", "--wheel-dir", wheelhouse, REPO)
        write_marker(wheelhouse, tree, "tree")

    def rebuild_kilnflow_wheel() -> None:
        for old in wheelhouse.glob("kilnflow-*.whl"):
            old.unlink()
        kilnflow.pip("wheel", "--no-deps", "--wheel-dir", wheelhouse, REPO)

    cached(wheelhouse, deps, build_wheelhouse, "wheelhouse of Kilnflow and its dependencies")
    refresh(wheelhouse, "tree", tree, rebuild_kilnflow_wheel, "rebuild Kilnflow's wheel")

    def build_fresh_kilnflow() -> None:
        fresh["kilnflow"].create()
        fresh["kilnflow"].pip(
            "install", "--no-index", "--find-links", wheelhouse, artifact("kilnflow")
        )

    def build_fresh_kedro() -> None:
        fresh["kedro"].create()
        fresh["kedro"].pip("install", artifact("kedro"))

    cached(fresh["kilnflow"].path, kf_key, build_fresh_kilnflow, "fresh venv, Kilnflow project")
    cached(fresh["kedro"].path, kd_key, build_fresh_kedro, "fresh venv, Kedro project (index)")
    return Setup(
        kilnflow=kilnflow,
        kedro=kedro,
        kf_project=kf_project,
        kd_project=kd_project,
        kd_conf_archive=BENCH / "artifacts" / f"conf-{KD_PACKAGE}.tar.gz",
        fresh=fresh,
        run_dir=BENCH / "run",
        tree=tree,
    )


def artifact(framework: str) -> Path:
    package = KF_PACKAGE if framework == "kilnflow" else KD_PACKAGE
    (wheel,) = (BENCH / "artifacts").glob(f"{package}-*.whl")
    return wheel


def readings_json() -> str:
    rng = random.Random(7)
    stations = ("north", "south", "east", "west", "centre")
    rows = [
        {
            "station": rng.choice(stations),
            "value": -999.0 if rng.random() < 0.05 else round(rng.uniform(0, 30), 1),
        }
        for _ in range(READINGS)
    ]
    return json.dumps(rows, indent=1) + "\n"


def write_common(
    project: Path, package: str, framework: str, json_type: str, text_type: str
) -> None:
    source = project / "src" / package
    (source / "nodes.py").write_text(NODES_SOURCE, "utf-8")
    registry = REGISTRY_SOURCE.format(framework=framework, package=package, cpu_nodes=CPU_NODES)
    (source / "pipeline_registry.py").write_text(registry, "utf-8")
    conf = project / "conf" / "base"
    (conf / "parameters.yml").write_text(PARAMETERS, "utf-8")
    (conf / "catalog.yml").write_text(CATALOG.format(json=json_type, text=text_type), "utf-8")
    data = project / "data" / "raw"
    data.mkdir(parents=True, exist_ok=True)
    (data / "readings.json").write_text(readings_json(), "utf-8")


def git_init(project: Path) -> None:
    """Every real project is its own repository; both frameworks record git state."""
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    call(["git", "init", "-q", project])
    call(["git", "-C", project, "add", "-A"])
    call(["git", "-C", project, *identity, "commit", "-q", "-m", "benchmark project"])


def make_kilnflow_project(venv: Venv, project: Path) -> None:
    project.parent.mkdir(parents=True)
    call(
        [venv.bin / "kilnflow", "new", project.name, "--no-example", "--directory", project],
        cwd=project.parent,
    )
    write_common(project, KF_PACKAGE, "kilnflow", "JSONDataset", "TextDataset")
    git_init(project)
    call([venv.bin / "kilnflow", "package"], cwd=project)
    publish(venv, project, KF_PACKAGE)


def make_kedro_project(venv: Venv, project: Path) -> None:
    project.parent.mkdir(parents=True)
    call(
        [venv.bin / "kedro", "new", "--name", project.name, "--tools", "none", "--example", "n"],
        cwd=project.parent,
    )
    write_common(project, KD_PACKAGE, "kedro", "json.JSONDataset", "text.TextDataset")
    # The files pipeline uses kedro-datasets, so the project declares it as a user would.
    requirement = KEDRO_PINS[1].replace("==", "~=")
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    pin = f'"kedro~={KEDRO_VERSION}",'
    if pin not in text:
        raise SystemExit(f"{pyproject}: expected the line {pin} from kedro new")
    pyproject.write_text(text.replace(pin, f'{pin}\n    "{requirement}",'), "utf-8")
    with (project / "requirements.txt").open("a", encoding="utf-8") as handle:
        handle.write(f"{requirement}\n")
    git_init(project)
    call([venv.bin / "kedro", "package"], cwd=project, bin_dir=venv.bin)
    shutil.copy2(project / "dist" / f"conf-{KD_PACKAGE}.tar.gz", BENCH / "artifacts")
    publish(venv, project, KD_PACKAGE)


def publish(venv: Venv, project: Path, package: str) -> None:
    """Keep the built wheel and install it, without dependencies, into the framework's venv."""
    for old in (BENCH / "artifacts").glob(f"{package}-*.whl"):
        old.unlink()
    (wheel,) = (project / "dist").glob(f"{package}-*.whl")
    shutil.copy2(wheel, BENCH / "artifacts")
    venv.pip("install", "--no-deps", "--force-reinstall", BENCH / "artifacts" / wheel.name)


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    error: str | None = None
    timed_out: bool = False
    detail: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"seconds": round(self.seconds, 6), "rss_mb": round(self.rss_mb, 1)}
        if self.error:
            data["error"] = self.error
        if self.timed_out:
            data["timed_out"] = True
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass
class Side:
    """How one framework runs one case."""

    command: list[str]
    cwd: Path
    bin_dir: Path
    repeats: int
    warmup: bool = True
    timeout: float | None = None
    inner: str | None = None  # "inprocess" or "importtime": the child reports the time
    skipped: str | None = None


def spawn(side: Side) -> Sample:
    """Run one sample in a fresh process; wall time, or the time the child measured."""
    result_file = None
    command = list(side.command)
    if side.inner == "inprocess":
        handle, result_file = tempfile.mkstemp(prefix="bench-", suffix=".json")
        os.close(handle)
        spec = json.loads(command[-1])
        spec["result"] = result_file
        command[-1] = json.dumps(spec)
    killed = threading.Event()
    with tempfile.TemporaryFile() as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=side.cwd,
            env=child_env(side.bin_dir),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if side.inner != "importtime" else subprocess.PIPE,
            start_new_session=True,
        )

        def kill() -> None:
            killed.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                killed.clear()

        timer = threading.Timer(side.timeout, kill) if side.timeout else None
        if timer:
            timer.start()
        stderr = process.stderr.read().decode() if process.stderr else ""
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if timer:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        sample = Sample(seconds=elapsed, rss_mb=usage.ru_maxrss / 1024)
        if killed.is_set():
            sample.timed_out = True
        elif process.returncode != 0:
            output.seek(0)
            tail = (output.read().decode(errors="replace") + stderr).strip().splitlines()[-8:]
            sample.error = f"exit {process.returncode}: " + " | ".join(tail)
        elif side.inner == "inprocess" and result_file:
            sample.detail = json.loads(Path(result_file).read_text("utf-8"))
            sample.seconds = sample.detail["seconds"]
        elif side.inner == "importtime":
            sample.detail = import_total(side.command[0], stderr)
            sample.seconds = sample.detail["import_us"] / 1e6
    if result_file:
        Path(result_file).unlink(missing_ok=True)
    return sample


def import_times(stderr: str) -> dict[str, int]:
    """Self microseconds per module from ``-X importtime`` output."""
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            times[parts[2]] = int(parts[0])
    return times


_STARTUP: dict[str, set[str]] = {}


def import_total(python: str, stderr: str) -> dict[str, int]:
    """Microseconds and modules an import statement added to interpreter start-up."""
    if python not in _STARTUP:
        done = subprocess.run(
            [python, "-X", "importtime", "-c", "pass"],
            cwd=BENCH / "run",
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        _STARTUP[python] = set(import_times(done.stderr))
    added = {
        name: micro for name, micro in import_times(stderr).items() if name not in _STARTUP[python]
    }
    return {"import_us": sum(added.values()), "modules": len(added)}


@dataclass
class Case:
    id: str
    group: str
    title: str
    sides: dict[str, Side]
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def good(self, framework: str) -> list[Sample]:
        return [s for s in self.samples.get(framework, []) if not s.error]

    def median(self, framework: str) -> float | None:
        good = self.good(framework)
        return statistics.median(s.seconds for s in good) if good else None

    def lower_bound(self, framework: str) -> bool:
        """True when the median is only a lower bound (a capped run was stopped)."""
        good = self.good(framework)
        return bool(good) and any(s.timed_out for s in good)

    def error(self, framework: str) -> str | None:
        failed = [s.error for s in self.samples.get(framework, []) if s.error]
        return failed[0] if failed else None

    def ratio(self) -> float | None:
        kf, kd = self.median("kilnflow"), self.median("kedro")
        return kd / kf if kf and kd else None


def run_case(case: Case) -> None:
    """Warm up, then alternate Kilnflow and Kedro samples."""
    log(f"[run] {case.id}: {case.title}")
    active = {name: side for name, side in case.sides.items() if not side.skipped}
    for name, side in active.items():
        case.samples[name] = []
        if side.warmup:
            warm = spawn(side)
            if warm.error:
                case.samples[name].append(warm)
    for index in range(max((side.repeats for side in active.values()), default=0)):
        for name, side in active.items():
            if index < side.repeats and not case.error(name):
                case.samples[name].append(spawn(side))


# --------------------------------------------------------------------------- cases


def inprocess(framework: str, setup: Setup, pipeline: str, runner: str, **params: Any) -> list[str]:
    venv = setup.kilnflow if framework == "kilnflow" else setup.kedro
    project = setup.kf_project if framework == "kilnflow" else setup.kd_project
    spec = {
        "framework": framework,
        "project": str(project),
        "pipeline": pipeline,
        "runner": runner,
        "params": params,
    }
    return [str(venv.python), str(SUITE), "--child", json.dumps(spec)]


@dataclass
class Plan:
    """Repeats and caps for a full or a quick run."""

    quick: bool
    kedro_cap: float

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def build_cases(setup: Setup, plan: Plan, loops: int) -> list[Case]:
    kf, kd = setup.kilnflow, setup.kedro
    kfp, kdp = setup.kf_project, setup.kd_project
    n = plan.n
    cap = plan.kedro_cap or None
    skip_quick = "skipped with --quick (minutes for Kedro)" if plan.quick else None

    def side(venv: Venv, command: Sequence[str | Path], cwd: Path, repeats: int, **kw: Any) -> Side:
        return Side([str(part) for part in command], cwd, venv.bin, repeats, **kw)

    def pair(kf_side: Side, kd_side: Side) -> dict[str, Side]:
        return {"kilnflow": kf_side, "kedro": kd_side}

    run = setup.run_dir
    cases = [
        Case(
            "cli.help",
            "1 CLI start",
            "kilnflow --help | kedro --help (in the project)",
            pair(
                side(kf, [kf.bin / "kilnflow", "--help"], kfp, n(10, 3)),
                side(kd, [kd.bin / "kedro", "--help"], kdp, n(10, 3)),
            ),
        ),
        Case(
            "cli.packaged_help",
            "1 CLI start",
            "python -m <pkg> --help (installed wheels)",
            pair(
                side(kf, [kf.python, "-m", KF_PACKAGE, "--help"], run, n(10, 3)),
                side(kd, [kd.python, "-m", KD_PACKAGE, "--help"], run, n(10, 3)),
            ),
        ),
    ]
    cases += [
        Case(
            "e2e.project",
            "2 end-to-end runs",
            "kilnflow run -p chain_10 | kedro run --pipelines chain_10",
            pair(
                side(kf, [kf.bin / "kilnflow", "run", "-p", "chain_10"], kfp, n(7, 3)),
                side(kd, [kd.bin / "kedro", "run", "--pipelines", "chain_10"], kdp, n(7, 3)),
            ),
        ),
        Case(
            "e2e.packaged",
            "2 end-to-end runs",
            "python -m <pkg> -p chain_10 (Kedro: --conf-source conf tar.gz)",
            pair(
                side(kf, [kf.python, "-m", KF_PACKAGE, "-p", "chain_10"], run, n(7, 3)),
                side(
                    kd,
                    [
                        kd.python,
                        "-m",
                        KD_PACKAGE,
                        "--pipelines",
                        "chain_10",
                        "--conf-source",
                        setup.kd_conf_archive,
                    ],
                    run,
                    n(7, 3),
                ),
            ),
        ),
        Case(
            "e2e.files",
            "2 end-to-end runs",
            "files pipeline (JSON in, 3 nodes, JSON + text out), project mode",
            pair(
                side(kf, [kf.bin / "kilnflow", "run", "-p", "files"], kfp, n(5, 2)),
                side(kd, [kd.bin / "kedro", "run", "--pipelines", "files"], kdp, n(5, 2)),
            ),
        ),
    ]
    for shape in ("chain", "fan"):
        for size in (100, 1_000, 5_000, 10_000):
            name = f"{shape}_{size}"
            big = size >= 5_000
            kd_side = side(
                kd,
                inprocess("kedro", setup, name, "sequential"),
                kdp,
                1 if big else n(3, 2) if size >= 1_000 else n(5, 3),
                warmup=size < 1_000,
                inner="inprocess",
                timeout=cap if size >= 10_000 else 600.0,
                skipped=skip_quick if big else None,
            )
            cases.append(
                Case(
                    f"seq.{name}",
                    "3 sequential, in-process",
                    f"{name}: bootstrap + session create + run, SequentialRunner",
                    pair(
                        side(
                            kf,
                            inprocess("kilnflow", setup, name, "sequential"),
                            kfp,
                            n(5, 3) if size <= 1_000 else n(3, 2),
                            inner="inprocess",
                        ),
                        kd_side,
                    ),
                )
            )
    for size in (1_000, 5_000):
        big = size >= 5_000
        cases.append(
            Case(
                f"cli.chain_{size}",
                "3 sequential, CLI",
                f"kilnflow run -p chain_{size} | kedro run --pipelines chain_{size}",
                pair(
                    side(
                        kf,
                        [kf.bin / "kilnflow", "run", "-p", f"chain_{size}"],
                        kfp,
                        n(5, 3) if not big else n(3, 2),
                    ),
                    side(
                        kd,
                        [kd.bin / "kedro", "run", "--pipelines", f"chain_{size}"],
                        kdp,
                        1 if big else n(3, 2),
                        warmup=False,
                        timeout=600.0,
                        skipped=skip_quick if big else None,
                    ),
                ),
            )
        )
    for size in (100, 1_000):
        for runner in ("thread", "parallel"):
            slow = size >= 1_000 or runner == "parallel"
            capped = size >= 1_000 and runner == "parallel"
            cases.append(
                Case(
                    f"{runner}.fan_{size}",
                    "4 runners, in-process",
                    f"fan_{size}: {runner.capitalize()}Runner (default workers)",
                    pair(
                        side(
                            kf,
                            inprocess("kilnflow", setup, f"fan_{size}", runner),
                            kfp,
                            n(5, 3) if size < 1_000 else n(3, 2),
                            inner="inprocess",
                        ),
                        side(
                            kd,
                            inprocess("kedro", setup, f"fan_{size}", runner),
                            kdp,
                            1 if capped else n(3, 2),
                            warmup=not slow,
                            inner="inprocess",
                            timeout=cap if capped else 600.0,
                            skipped=skip_quick if capped else None,
                        ),
                    ),
                )
            )
    for runner in ("sequential", "parallel"):
        cases.append(
            Case(
                f"cpu.{runner}",
                "4 runners, in-process",
                f"cpu_{CPU_NODES} (~{CPU_SECONDS} s each): {runner.capitalize()}Runner",
                pair(
                    side(
                        kf,
                        inprocess("kilnflow", setup, f"cpu_{CPU_NODES}", runner, loops=loops),
                        kfp,
                        n(5, 2),
                        warmup=False,
                        inner="inprocess",
                    ),
                    side(
                        kd,
                        inprocess("kedro", setup, f"cpu_{CPU_NODES}", runner, loops=loops),
                        kdp,
                        n(5, 2),
                        warmup=False,
                        inner="inprocess",
                    ),
                ),
            )
        )
    cases.append(
        Case(
            "package",
            "5 packaging",
            "kilnflow package | kedro package (wheel + conf archive)",
            pair(
                side(kf, [kf.bin / "kilnflow", "package"], kfp, n(5, 2)),
                side(kd, [kd.bin / "kedro", "package"], kdp, n(5, 2)),
            ),
        )
    )
    for case_id, kf_module, kd_module in (
        ("import.package", "kilnflow", "kedro"),
        ("import.cli", "kilnflow.cli", "kedro.framework.cli"),
    ):
        cases.append(
            Case(
                case_id,
                "6 import (python -X importtime: sum of self times, modules added)",
                f"import {kf_module} | import {kd_module}",
                pair(
                    side(
                        kf,
                        [kf.python, "-X", "importtime", "-c", f"import {kf_module}"],
                        run,
                        n(10, 3),
                        inner="importtime",
                    ),
                    side(
                        kd,
                        [kd.python, "-X", "importtime", "-c", f"import {kd_module}"],
                        run,
                        n(10, 3),
                        inner="importtime",
                    ),
                ),
            )
        )
    return cases


# --------------------------------------------------------------------------- one-off checks


def loaded_modules(venv: Venv, statement: str) -> dict[str, Any]:
    """Modules a statement loads, and which of the heavy ones among them."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print('MODULES', json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    output = call([venv.python, "-c", code], cwd=BENCH / "run").splitlines()
    loaded = json.loads(next(line for line in output if line.startswith("MODULES "))[8:])
    tops = {name.partition(".")[0] for name in loaded}
    return {"count": len(loaded), "heavy": [name for name in HEAVY_MODULES if name in tops]}


def offline_package(setup: Setup) -> dict[str, Any]:
    """Package each project with no network at all (a fresh network namespace)."""
    unshare = shutil.which("unshare")
    probe = (
        subprocess.run([unshare or "unshare", "-n", "true"], capture_output=True, check=False)
        if unshare
        else None
    )
    if probe is None or probe.returncode != 0:
        return {"checked": False, "why": "unshare -n is not available (needs root or userns)"}
    results: dict[str, Any] = {"checked": True}
    commands = {
        "kilnflow": (
            [setup.kilnflow.bin / "kilnflow", "package"],
            setup.kf_project,
            setup.kilnflow.bin,
        ),
        "kedro": ([setup.kedro.bin / "kedro", "package"], setup.kd_project, setup.kedro.bin),
    }
    for framework, (command, cwd, bin_dir) in commands.items():
        started = time.perf_counter()
        try:
            done = subprocess.run(
                ["unshare", "-n", *map(str, command)],
                cwd=cwd,
                env=child_env(bin_dir),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            results[framework] = {"ok": False, "seconds": 300.0, "error": "timed out"}
            continue
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        results[framework] = {
            "ok": done.returncode == 0,
            "seconds": round(time.perf_counter() - started, 3),
            "error": None if done.returncode == 0 else " | ".join(tail),
        }
    return results


def fresh_counts(setup: Setup) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for framework, venv in setup.fresh.items():
        package = KF_PACKAGE if framework == "kilnflow" else KD_PACKAGE
        call([venv.python, "-m", package, "--help"], cwd=setup.run_dir)
        names = venv.package_list()
        counts[framework] = {
            "packages": len(names),
            "site_packages_mb": round(venv.site_packages_mb(), 1),
            "names": names,
        }
    return counts


def calibrate() -> int:
    """How many ``burn`` loops take about CPU_SECONDS here (same interpreter as the venvs)."""
    namespace: dict[str, Any] = {}
    exec(compile(NODES_SOURCE, "nodes.py", "exec"), namespace)
    burn = namespace["burn"]
    loops = 100_000
    while True:
        started = time.perf_counter()
        burn(loops)
        elapsed = time.perf_counter() - started
        if elapsed >= 0.1:
            return int(loops * CPU_SECONDS / elapsed)
        loops *= 2


# --------------------------------------------------------------------------- report


def fmt_time(seconds: float | None, lower: bool = False) -> str:
    if seconds is None:
        return "n/a"
    text = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return f">{text}" if lower else text


def fmt_side(case: Case, framework: str) -> str:
    side = case.sides[framework]
    if side.skipped:
        return "n/a (skipped)"
    error = case.error(framework)
    if error:
        return "FAILED"
    good = case.good(framework)
    median = case.median(framework)
    lower = case.lower_bound(framework)
    spread = ""
    if len(good) > 1:
        low, high = min(s.seconds for s in good), max(s.seconds for s in good)
        spread = f" [{fmt_time(low)}..{fmt_time(high)}]"
    rss = max(s.rss_mb for s in good)
    return f"{fmt_time(median, lower)}{spread} {rss:.0f}MB"


def fmt_ratio(case: Case) -> str:
    ratio = case.ratio()
    if ratio is None:
        return "n/a"
    return f"{'>' if case.lower_bound('kedro') else ''}{ratio:.1f}x"


TABLE_HEADER = (
    f"{'case':<18} {'Kilnflow: median [min..max] peak RSS':<40} "
    f"{'Kedro: median [min..max] peak RSS':<40} Kedro/Kilnflow"
)


def case_lines(case: Case, previous: Case | None) -> list[str]:
    lines = [f"-- {case.group}"] if previous is None or previous.group != case.group else []
    lines.append(f"   {case.title}")
    lines.append(
        f"{case.id:<18} {fmt_side(case, 'kilnflow'):<40} "
        f"{fmt_side(case, 'kedro'):<40} {fmt_ratio(case)}"
    )
    for framework in FRAMEWORKS:
        if case.error(framework):
            lines.append(f"   {framework} failed: {case.error(framework)}")
    return lines


@dataclass
class Target:
    name: str
    need: str
    measured: str
    status: str  # PASS, FAIL or n/a


def ratio_target(cases: dict[str, Case], case_id: str, need: float, name: str) -> Target:
    case = cases[case_id]
    ratio = case.ratio()
    if ratio is None:
        return Target(name, f">= {need:g}x", fmt_ratio(case), "n/a")
    if case.lower_bound("kedro") and ratio < need:
        return Target(name, f">= {need:g}x", fmt_ratio(case), "n/a")
    return Target(name, f">= {need:g}x", fmt_ratio(case), "PASS" if ratio >= need else "FAIL")


def evaluate(cases: dict[str, Case], extra: dict[str, Any]) -> list[Target]:
    targets = [
        ratio_target(cases, "cli.help", 4, "kilnflow --help faster than kedro --help"),
    ]
    heavy = extra["modules"]["kilnflow"]["import kilnflow"]["heavy"]
    targets.append(
        Target(
            f"import kilnflow loads no {'/'.join(HEAVY_MODULES)}",
            "none",
            ", ".join(heavy) or "none",
            "FAIL" if heavy else "PASS",
        )
    )
    targets += [
        ratio_target(cases, "e2e.project", 4, "end-to-end 10 nodes, project mode, faster"),
        ratio_target(cases, "e2e.packaged", 3, "end-to-end 10 nodes, packaged, faster"),
    ]
    for shape in ("chain", "fan"):
        small, big = cases[f"seq.{shape}_1000"], cases[f"seq.{shape}_10000"]
        kf_small, kf_big = small.median("kilnflow"), big.median("kilnflow")
        if kf_small and kf_big:
            growth = kf_big / kf_small
            targets.append(
                Target(
                    f"sequential, 1,000 -> 10,000 nodes ({shape}): growth",
                    "<= 12x",
                    f"{growth:.1f}x",
                    "PASS" if growth <= 12 else "FAIL",
                )
            )
        else:
            targets.append(Target(f"sequential growth ({shape})", "<= 12x", "n/a", "n/a"))
    targets += [
        ratio_target(cases, "cli.chain_1000", 20, "kilnflow run, 1,000-node chain, faster"),
        ratio_target(cases, "cli.chain_5000", 100, "kilnflow run, 5,000-node chain, faster"),
        ratio_target(cases, "parallel.fan_100", 10, "ParallelRunner, 100 trivial nodes, faster"),
    ]
    seq, par = cases["cpu.sequential"].median("kilnflow"), cases["cpu.parallel"].median("kilnflow")
    cpus = os.cpu_count() or 1
    if seq and par:
        speed_up = seq / par
        targets.append(
            Target(
                f"ParallelRunner speed-up, {CPU_NODES} CPU-bound nodes, {cpus} CPUs",
                ">= 1.7x",
                f"{speed_up:.2f}x",
                "PASS" if speed_up >= 1.7 else "FAIL",
            )
        )
    else:
        targets.append(Target("ParallelRunner speed-up", ">= 1.7x", "n/a", "n/a"))
    package = ratio_target(cases, "package", 5, "kilnflow package faster than kedro package")
    offline = extra["offline_package"]
    if offline.get("checked"):
        kf_ok = offline["kilnflow"]["ok"]
        package.name += ", offline"
        package.measured += f", offline {'ok' if kf_ok else 'FAILED'}"
        if not kf_ok:
            package.status = "FAIL"
    else:
        package.measured += ", offline not checked"
    targets.append(package)
    fresh = extra["fresh_venv"]
    share = fresh["kilnflow"]["packages"] / fresh["kedro"]["packages"]
    targets.append(
        Target(
            "fresh venv + packaged project: packages, share of Kedro's",
            "<= 1/4",
            f"{fresh['kilnflow']['packages']}/{fresh['kedro']['packages']} = {share:.2f}",
            "PASS" if share <= 0.25 else "FAIL",
        )
    )
    return targets


def extra_lines(extra: dict[str, Any]) -> list[str]:
    modules, fresh, offline = extra["modules"], extra["fresh_venv"], extra["offline_package"]
    lines = ["-- 6 modules and installs"]
    for framework in FRAMEWORKS:
        for label, data in modules[framework].items():
            lines.append(
                f"   {label:<34} {data['count']:>4} modules, heavy: "
                f"{', '.join(data['heavy']) or 'none'}"
            )
    for framework in FRAMEWORKS:
        lines.append(
            f"   fresh venv + packaged {framework:<11} {fresh[framework]['packages']:>4} packages, "
            f"{fresh[framework]['site_packages_mb']:.0f} MB site-packages"
        )
    if offline.get("checked"):
        for framework in FRAMEWORKS:
            result = offline[framework]
            state = "ok" if result["ok"] else f"FAILED ({result['error']})"
            lines.append(f"   {framework} package, no network: {state}, {result['seconds']:.1f} s")
    else:
        lines.append(f"   packaging without network: not checked, {offline['why']}")
    return lines


def target_lines(targets: list[Target]) -> list[str]:
    lines = [f"{'target (ratios: Kedro/Kilnflow)':<66} {'need':<8} {'measured':<24} result"]
    lines += [f"{t.name:<66} {t.need:<8} {t.measured:<24} {t.status}" for t in targets]
    failed = [t.name for t in targets if t.status == "FAIL"]
    unmeasured = [t.name for t in targets if t.status == "n/a"]
    summary = f"{len(targets) - len(failed) - len(unmeasured)} of {len(targets)} targets hold"
    if unmeasured:
        summary += f"; not measured in this run: {'; '.join(unmeasured)}"
    if failed:
        summary += f"; FAILING: {'; '.join(failed)}"
    lines.append(summary)
    return lines


def meta(setup: Setup, plan: Plan, loops: int) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    version = call(
        [setup.kilnflow.python, "-c", "import kilnflow; print(kilnflow.__version__)"]
    ).strip()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "kilnflow_version": version,
        "kilnflow_tree": setup.tree,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
        "kedro_pins": list(KEDRO_PINS),
        "quick": plan.quick,
        "kedro_cap_seconds": plan.kedro_cap,
        "cpu_loops": loops,
    }


# --------------------------------------------------------------------------- child


def child(spec: dict[str, Any]) -> None:
    """Inside the framework's venv: time bootstrap + session create + run + close."""
    project = Path(spec["project"])
    pipeline, runner_name, params = spec["pipeline"], spec["runner"], spec["params"]
    if spec["framework"] == "kilnflow":
        from kilnflow import runner as kf_runners
        from kilnflow.project import bootstrap_project as kf_bootstrap
        from kilnflow.session import Session

        runner_class = getattr(kf_runners, f"{runner_name.capitalize()}Runner")
        started = time.perf_counter()
        kf_bootstrap(project)
        with Session.create(extra_params=params) as session:
            created = time.perf_counter()
            session.run(pipeline_name=pipeline, runner=runner_class())
    else:
        from kedro import runner as kd_runners
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project as kd_bootstrap

        runner_class = getattr(kd_runners, f"{runner_name.capitalize()}Runner")
        started = time.perf_counter()
        kd_bootstrap(project)
        with KedroSession.create(project_path=project, runtime_params=params) as kd_session:
            created = time.perf_counter()
            kd_session.run(pipeline_names=[pipeline], runner=runner_class())
    finished = time.perf_counter()
    result = {
        "seconds": finished - started,
        "create": round(created - started, 6),
        "run": round(finished - created, 6),
    }
    Path(spec["result"]).write_text(json.dumps(result), "utf-8")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no Kedro >1,000")
    parser.add_argument("--json", type=Path, help="write every sample to this JSON file")
    parser.add_argument(
        "--kedro-cap",
        type=float,
        default=60.0,
        help="stop Kedro's 10,000-node and 1,000-node parallel runs after this many "
        "seconds, reported as a lower bound (0: no cap; default 60)",
    )
    parser.add_argument("--only", help="run only cases whose id starts with this (debugging)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if not hasattr(os, "wait4"):
        raise SystemExit("bench/suite.py needs a POSIX system (os.wait4).")

    started = time.perf_counter()
    setup = prepare()
    plan = Plan(quick=args.quick, kedro_cap=args.kedro_cap)
    loops = calibrate()
    info = meta(setup, plan, loops)
    log(f"[set-up] ready after {time.perf_counter() - started:.0f} s")
    header = (
        f"Kilnflow {info['kilnflow_version']} (commit {info['git_commit']}"
        f"{', dirty tree ' + setup.tree if info['git_dirty'] else ''}) vs "
        f"{KEDRO_PINS[0]} | Python {info['python']}, {info['cpus']} CPUs | "
        f"{'quick' if plan.quick else 'full'} run, {info['date']}"
    )
    print(header)
    print(
        "Medians of alternating runs (A B A B ...) after a warm-up, each in a fresh process; "
        "'>' marks a capped Kedro run (lower bound).\n",
        flush=True,
    )

    cases = build_cases(setup, plan, loops)
    if args.only:
        cases = [case for case in cases if case.id.startswith(args.only)]
    print(TABLE_HEADER, flush=True)
    for index, case in enumerate(cases):
        run_case(case)
        print("\n".join(case_lines(case, cases[index - 1] if index else None)), flush=True)
    log("[run] module lists, fresh venvs, packaging without network")
    extra = {
        "modules": {
            "kilnflow": {
                "import kilnflow": loaded_modules(setup.kilnflow, "import kilnflow"),
                "import kilnflow.cli": loaded_modules(setup.kilnflow, "import kilnflow.cli"),
            },
            "kedro": {
                "import kedro": loaded_modules(setup.kedro, "import kedro"),
                "import kedro.framework.cli": loaded_modules(
                    setup.kedro, "import kedro.framework.cli"
                ),
            },
        },
        "fresh_venv": fresh_counts(setup),
        "offline_package": offline_package(setup),
    }
    by_id = {case.id: case for case in cases}
    targets = evaluate(by_id, extra) if not args.only else []
    elapsed = time.perf_counter() - started
    lines = [*extra_lines(extra), ""]
    if targets:
        lines += target_lines(targets)
    lines.append(f"\nTotal time {elapsed / 60:.1f} min (set-up included).")
    print("\n".join(lines))
    if args.json:
        document = {
            "meta": {**info, "total_seconds": round(elapsed, 1)},
            "cases": [
                {
                    "id": case.id,
                    "group": case.group,
                    "title": case.title,
                    "ratio_kedro_over_kilnflow": case.ratio(),
                    "ratio_is_lower_bound": case.lower_bound("kedro"),
                    **{
                        framework: {
                            "command": case.sides[framework].command,
                            "skipped": case.sides[framework].skipped,
                            "median_seconds": case.median(framework),
                            "samples": [s.as_json() for s in case.samples.get(framework, [])],
                        }
                        for framework in FRAMEWORKS
                    },
                }
                for case in cases
            ],
            "extra": extra,
            "targets": [vars(target) for target in targets],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
