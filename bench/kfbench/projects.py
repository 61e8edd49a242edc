"""The two benchmark projects: sources, venvs, set-up and packaging."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfbench.sources import (
    CATALOG,
    NODES_SOURCE,
    PARAMETERS,
    REALISTIC_SOURCE,
    REALISTIC_TOP_SOURCE,
    REGISTRY_SOURCE,
)

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / ".bench"
SUITE = REPO / "bench" / "suite.py"
CHILD = REPO / "bench" / "kfbench" / "child.py"

KEDRO_PINS = ("kedro==1.7.0", "kedro-datasets[json,text]==9.6.0")
KEDRO_VERSION = KEDRO_PINS[0].partition("==")[2]
FRAMEWORKS = ("kilnflow", "kedro")
KF_PACKAGE, KD_PACKAGE = "bench_kilnflow", "bench_kedro"
HEAVY_MODULES = ("pandas", "omegaconf", "fsspec", "rich", "jinja2", "dask")
CPU_NODES, CPU_SECONDS = 8, 0.5
READINGS = 1_000
REALISTIC_ROWS = 10_000
# The realistic pipeline's libraries, installed into both frameworks' venvs (not
# into the projects' requirements, so the fresh-venv package counts stay as they were).
REALISTIC_PINS = ("pandas>=2.0", "scikit-learn>=1.3")

# `kilnflow new` and `kilnflow package` need the build tools (a developer's venv has them);
# the fresh venv that counts a packaged project's runtime does not get them.
KILNFLOW_EXTRAS = "build"

# PYTHONDONTWRITEBYTECODE too: with it, a project run from source recompiles its modules
# in every sample, which users (and the warm-up run) never pay.
CHILD_ENV_DROP = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "KILNFLOW_ENV",
    "KEDRO_ENV",
    "PYTHONDONTWRITEBYTECODE",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
    suite = digest([SUITE, Path(__file__).parent])
    kilnflow = Venv(BENCH / "venv-kilnflow")
    kedro = Venv(BENCH / "venv-kedro")

    deps = {
        "python": python,
        "pyproject": digest([REPO / "pyproject.toml"]),
        "realistic": REALISTIC_PINS,
        "extras": KILNFLOW_EXTRAS,
    }

    def build_kilnflow_venv() -> None:
        kilnflow.create()
        kilnflow.pip("install", f"{REPO}[{KILNFLOW_EXTRAS}]", *REALISTIC_PINS)
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
        kedro.pip("install", *KEDRO_PINS, *REALISTIC_PINS)
        write_marker(kedro.path, time.time(), "created")

    cached(
        kedro.path,
        {"python": python, "pins": KEDRO_PINS + REALISTIC_PINS},
        build_kedro_venv,
        "Kedro venv",
    )

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


def realistic_csv() -> str:
    """A labelled table: ten numeric features, a segment, a label with some signal in it."""
    rng = random.Random(11)
    header = ",".join([*(f"x{i}" for i in range(10)), "segment", "label"])
    lines = [header]
    for _ in range(REALISTIC_ROWS):
        values = [rng.gauss(0, 1) for _ in range(10)]
        signal = values[0] + values[1] * values[2] - 0.5 * values[3] + rng.gauss(0, 1)
        segment = rng.choice(("retail", "trade", "online"))
        lines.append(",".join([*(f"{v:.5f}" for v in values), segment, str(int(signal > 0))]))
    return "\n".join(lines) + "\n"


def write_common(project: Path, package: str, framework: str, types: dict[str, str]) -> None:
    source = project / "src" / package
    (source / "nodes.py").write_text(NODES_SOURCE, "utf-8")
    (source / "realistic.py").write_text(REALISTIC_SOURCE, "utf-8")
    (source / "realistic_top.py").write_text(REALISTIC_TOP_SOURCE, "utf-8")
    registry = REGISTRY_SOURCE.format(framework=framework, package=package, cpu_nodes=CPU_NODES)
    (source / "pipeline_registry.py").write_text(registry, "utf-8")
    conf = project / "conf" / "base"
    (conf / "parameters.yml").write_text(PARAMETERS, "utf-8")
    (conf / "catalog.yml").write_text(CATALOG.format(**types), "utf-8")
    data = project / "data" / "raw"
    data.mkdir(parents=True, exist_ok=True)
    (data / "readings.json").write_text(readings_json(), "utf-8")
    (data / "realistic.csv").write_text(realistic_csv(), "utf-8")


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
    write_common(
        project,
        KF_PACKAGE,
        "kilnflow",
        {"json": "JSONDataset", "text": "TextDataset", "pickle": "PickleDataset"},
    )
    git_init(project)
    call([venv.bin / "kilnflow", "package"], cwd=project)
    publish(venv, project, KF_PACKAGE)


def make_kedro_project(venv: Venv, project: Path) -> None:
    project.parent.mkdir(parents=True)
    call(
        [venv.bin / "kedro", "new", "--name", project.name, "--tools", "none", "--example", "n"],
        cwd=project.parent,
    )
    write_common(
        project,
        KD_PACKAGE,
        "kedro",
        {"json": "json.JSONDataset", "text": "text.TextDataset", "pickle": "pickle.PickleDataset"},
    )
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
