"""The project a process runs: metadata, settings and pipeline registry.

Project mode starts with :func:`bootstrap_project` (a source checkout with a
``pyproject.toml``); packaged mode starts with :func:`configure_project`
(an installed wheel). Both end with the same per-process state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kilnflow.project._metadata import ProjectMetadata, find_project_root, read_metadata
from kilnflow.project._state import (
    ConfSource,
    bootstrap_here,
    bootstrap_project,
    conf_source,
    configure_project,
    find_pipelines,
    forget_project_code,
    get_pipeline,
    package_name,
    pipeline_modules,
    pipelines,
    project_hooks,
    project_metadata,
    project_path,
    reset_project,
    settings,
)

__all__ = [
    "ConfSource",
    "ProjectMetadata",
    "bootstrap_here",
    "bootstrap_project",
    "conf_source",
    "configure_project",
    "create_project",
    "find_pipelines",
    "find_project_root",
    "forget_project_code",
    "get_pipeline",
    "package_name",
    "pipeline_modules",
    "pipelines",
    "project_hooks",
    "project_metadata",
    "project_path",
    "read_metadata",
    "reset_project",
    "settings",
]

if TYPE_CHECKING:
    from kilnflow.project._starter import create_project


def __getattr__(name: str) -> Any:
    # The starter renders templates (jinja2); only ``kilnflow new`` needs it,
    # so every run does not pay for importing it.
    if name == "create_project":
        from kilnflow.project._starter import create_project

        return create_project
    raise AttributeError(f"module 'kilnflow.project' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
