"""The tools that make projects, wheels and deployment files, kept out of the runtime.

Running a packaged project needs none of hatchling, build or jinja2, so
Kilnflow's runtime does not install them and a production image stays
small. The commands that generate or build (``kilnflow new``, ``package``,
``airflow create``, ``docker init``) ask for them here first, so a missing
tool is one sentence with the install command, not an ImportError deep in a
template renderer.
"""

from __future__ import annotations

import importlib.util

from kilnflow.errors import PackagingError

__all__ = ["BUILD_EXTRA", "require_build_tools"]

#: What installs every build tool.
BUILD_EXTRA = "pip install 'kilnflow[build]'"


def require_build_tools(purpose: str, *modules: str) -> None:
    """Raise if any of ``modules`` cannot be imported; ``purpose`` names the command."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise PackagingError(
            f"{purpose} needs {' and '.join(missing)}, which running a project does not: "
            f"{BUILD_EXTRA}"
        )
