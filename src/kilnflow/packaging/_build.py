"""``kilnflow package``: build a project's wheel in this process, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kilnflow.errors import KilnflowError, PackagingError

__all__ = ["package_project"]


def package_project(
    project_path: str | Path, output_dir: str | Path | None = None, *, isolated: bool = False
) -> Path:
    """Build the wheel of the project at ``project_path``; return its path.

    By default hatchling runs in this process with the installed Kilnflow
    as its build hook: no build environment, no network, a fraction of a
    second. ``isolated=True`` uses ``python -m build`` with an isolated
    environment instead, exactly as a CI system would.
    """
    from kilnflow.project import read_metadata

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
