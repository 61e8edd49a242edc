"""Runners: schedule a pipeline's nodes against a data catalog.

Every runner shares one scheduling loop (:class:`AbstractRunner`); a runner
only chooses where nodes execute: in turn (:class:`SequentialRunner`), in
threads (:class:`ThreadRunner`), in worker processes
(:class:`ParallelRunner`) or on a Dask cluster (:class:`DaskRunner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kilnflow._lazy import lazy_names
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


__getattr__ = lazy_names(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
