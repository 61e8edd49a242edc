"""Runners: schedule a pipeline's nodes against a data catalog.

Every runner shares one scheduling loop (:class:`AbstractRunner`); a runner
only chooses where nodes execute: in turn (:class:`SequentialRunner`), in
threads (:class:`ThreadRunner`), in worker processes
(:class:`ParallelRunner`) or on a Dask cluster (:class:`DaskRunner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kilnflow.runner._base import AbstractRunner
from kilnflow.runner._progress import Progress, log_progress
from kilnflow.runner._sequential import SequentialRunner
from kilnflow.runner._task import Task, WorkerInit, run_node

if TYPE_CHECKING:
    from kilnflow.runner._dask import DaskRunner
    from kilnflow.runner._parallel import ParallelRunner
    from kilnflow.runner._thread import ThreadRunner

# Runners a sequential run never uses, imported on first use: a run pays for
# no thread pool, process pool or Dask glue it does not start.
_LAZY = {
    "DaskRunner": "kilnflow.runner._dask",
    "ParallelRunner": "kilnflow.runner._parallel",
    "ThreadRunner": "kilnflow.runner._thread",
}

__all__ = [
    "AbstractRunner",
    "DaskRunner",
    "ParallelRunner",
    "Progress",
    "SequentialRunner",
    "Task",
    "ThreadRunner",
    "WorkerInit",
    "log_progress",
    "run_node",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kilnflow.runner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
