"""``kilnflow docker init``: a Dockerfile that installs only the project's wheel."""

from __future__ import annotations

import platform
from pathlib import Path

from kilnflow.errors import PackagingError

__all__ = ["init_docker"]

# Template name -> file written into the project.
_FILES = {"Dockerfile.jinja": "Dockerfile", "dockerignore.jinja": ".dockerignore"}


def init_docker(
    project_path: Path, package: str, *, python_version: str | None = None, force: bool = False
) -> list[Path]:
    """Write ``Dockerfile`` and ``.dockerignore`` into the project; return their paths."""
    from kilnflow._build_tools import missing_build_tools
    from kilnflow._templates import render_template
    from kilnflow._version import __version__

    problem = missing_build_tools("kilnflow docker init", "jinja2")
    if problem:
        raise PackagingError(problem)
    targets = [project_path / name for name in _FILES.values()]
    existing = [path.name for path in targets if path.exists()]
    if existing and not force:
        raise PackagingError(
            f"{', '.join(existing)} already exist in {project_path}; pass --force to replace them."
        )
    context = {
        "package": package,
        "image": package.replace("_", "-"),
        "python_version": python_version or ".".join(platform.python_version_tuple()[:2]),
        "kilnflow_version": __version__,
    }
    for template, target in zip(_FILES, targets, strict=True):
        target.write_text(render_template(f"docker/{template}", context), "utf-8")
    return targets


def __dir__() -> list[str]:
    return __all__
