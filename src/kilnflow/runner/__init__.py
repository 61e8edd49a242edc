"""Runners: schedule a pipeline's nodes against a data catalog.

Every runner shares one scheduling loop (:class:`AbstractRunner`); a runner
only chooses where nodes execute: in turn (:class:`SequentialRunner`), in
threads (:class:`ThreadRunner`), in worker processes
(:class:`ParallelRunner`) or on a Dask cluster (:class:`DaskRunner`).
"""

from __future__ import annotations

from kilnflow.runner._base import AbstractRunner
from kilnflow.runner._dask import DaskRunner
from kilnflow.runner._parallel import ParallelRunner
from kilnflow.runner._progress import Progress, log_progress
from kilnflow.runner._sequential import SequentialRunner
from kilnflow.runner._task import Task, WorkerInit, run_node
from kilnflow.runner._thread import ThreadRunner

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


def __dir__() -> list[str]:
    return __all__
