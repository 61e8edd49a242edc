"""Nodes in threads of this process: for I/O-bound nodes and unpicklable data."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from kilnflow.runner._base import AbstractRunner, cpu_count

__all__ = ["ThreadRunner"]


class ThreadRunner(AbstractRunner[ThreadPoolExecutor]):
    """Runs nodes whose inputs are ready at the same time, each in a thread.

    Nodes share this process, its memory and its hooks, so nothing needs to
    be picklable; Python code that holds the GIL gains little, while nodes
    that wait on files, networks or native libraries overlap well.
    ``max_workers`` defaults to the CPU count plus 4, at most 32, like
    :class:`~concurrent.futures.ThreadPoolExecutor`.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = min(32, cpu_count() + 4)
        super().__init__(max_workers=max_workers)

    @contextmanager
    def _executor(self) -> Iterator[ThreadPoolExecutor]:
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="kilnflow-node") as pool:
            yield pool
