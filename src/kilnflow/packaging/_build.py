"""``kilnflow package``: build a project's wheel in this process, offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kilnflow.errors import KilnflowError, PackagingError

__all__ = ["package_project", "write_wheelhouse"]


def package_project(
    project_path: str | Path, output_dir: str | Path | None = None, *, isolated: bool = False
) -> Path:
    """Build the wheel of the project at ``project_path``; return its path.

    By default hatchling runs in this process with the installed Kilnflow
    as its build hook: no build environment, no network, a fraction of a
    second. ``isolated=True`` uses ``python -m build`` with an isolated
    environment instead, exactly as a CI system would.
    """
    from kilnflow._build_tools import missing_build_tools
    from kilnflow.project import read_metadata

    tools = ("hatchling", "jinja2", "build") if isolated else ("hatchling", "jinja2")
    problem = missing_build_tools("kilnflow package", *tools)
    if problem:
        raise PackagingError(problem)
    metadata = read_metadata(project_path)
    root = metadata.project_path
    out = Path(output_dir).resolve() if output_dir is not None else root / "dist"
    if isolated:
        return _build_isolated(root, out)
    from hatchling.builders.wheel import WheelBuilder

    try:
        built = list(WheelBuilder(str(root)).build(directory=str(out), versions=["standard"]))
    except KilnflowError:
        raise
    except Exception as exc:
        raise PackagingError(f"Building the wheel of {root} failed: {exc}") from exc
    return Path(built[0])


def _build_isolated(root: Path, out: Path) -> Path:
    before = set(out.glob("*.whl"))
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise PackagingError(f"python -m build failed for {root}:\n{tail}")
    built = sorted(set(out.glob("*.whl")) - before) or sorted(out.glob("*.whl"))
    return max(built, key=lambda path: path.stat().st_mtime)


def write_wheelhouse(wheel: str | Path, directory: str | Path | None = None) -> Path:
    """Collect ``wheel`` and a wheel of each of its runtime dependencies; return the folder.

    The folder (``<wheel's folder>/wheelhouse`` by default) then installs the
    project with no index at all, as a container build with no network
    does: ``pip install --no-index --find-links DIR -r DIR/requirements.txt``;
    its ``requirements.txt`` pins the project's version. pip finds the
    dependencies the usual way (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``), for
    the Python running this. The folder is replaced whole, and only once
    every wheel is there.
    """
    wheel = Path(wheel).resolve()
    target = Path(directory) if directory is not None else wheel.parent / "wheelhouse"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check"),
                *("--wheel-dir", str(staging), str(wheel)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise PackagingError(
                f"pip could not collect the dependencies of {wheel.name} into {target}; "
                f"point PIP_INDEX_URL or PIP_FIND_LINKS at where they are:\n{tail}"
            )
        name, version = wheel.name.split("-")[:2]
        (staging / "requirements.txt").write_text(f"{name}=={version}\n", "utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
