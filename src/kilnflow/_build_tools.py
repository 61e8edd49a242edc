"""The tools that make projects, wheels and deployment files, kept out of the runtime.

Running a packaged project needs none of hatchling, build or jinja2, so
Kilnflow's runtime does not install them and a production image stays
small. The commands that generate or build (``kilnflow new``, ``package``,
``airflow create``, ``docker init``) ask here first, so a missing tool is
one sentence with the install command, not an ImportError deep in a
template renderer.
"""

from __future__ import annotations

import importlib.util

__all__ = ["BUILD_EXTRA", "missing_build_tools"]

#: What installs every build tool.
BUILD_EXTRA = "pip install 'kilnflow[build]'"


def missing_build_tools(purpose: str, *modules: str) -> str | None:
    """The error message if any of ``modules`` is not installed; ``purpose`` names the command.

    A message rather than an exception: modules at this level sit below the
    error tree, and each caller raises the error of its own layer.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"{purpose} needs {' and '.join(missing)}, which running a project does not: {BUILD_EXTRA}"
    )
