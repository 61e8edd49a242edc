"""Setting up a worker process for the session's project.

Runners that run nodes in other processes (``ParallelRunner``, ``DaskRunner``)
sit below the project layer and cannot configure a project themselves. The
session hands them :func:`worker_initialiser`: a picklable callable that each
worker runs once, so users never call ``configure_project`` in a worker.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from kilnflow._redact import RedactingFormatter

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.runner import WorkerInit

__all__ = ["set_up_worker", "worker_initialiser"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(processName)s]: %(message)s"


def worker_initialiser(package: str, project_path: Path | None) -> WorkerInit:
    """What a worker of this process's project runs first, with this process's log level.

    The level and whether records are shown at all are the root logger's, as
    the command line set them, so users' own records in nodes and hooks
    reach the worker's stderr too.
    """
    root = logging.getLogger()
    return partial(
        set_up_worker,
        package,
        str(project_path) if project_path is not None else None,
        root.getEffectiveLevel(),
        bool(root.handlers),
    )


def set_up_worker(
    package: str, project_path: str | None, log_level: int, log_to_stderr: bool
) -> HookManager:
    """Configure the project in this worker; return its hooks, re-created from settings.

    In project mode the worker bootstraps the same source tree when it can
    see it; elsewhere (a cluster node with the wheel installed) it configures
    the installed package.
    """
    from kilnflow.project import bootstrap_project, configure_project, project_hooks

    if project_path is not None and (Path(project_path) / "pyproject.toml").is_file():
        bootstrap_project(project_path)
    else:
        configure_project(package)
    root = logging.getLogger()
    root.setLevel(log_level)
    if log_to_stderr and not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter(_LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
    return project_hooks()[0]
