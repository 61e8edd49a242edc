"""Nodes in threads of this process: for I/O-bound nodes and unpicklable data."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kilnflow.runner._base import AbstractRunner, cpu_count

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node

__all__ = ["ThreadRunner"]

logger = logging.getLogger("kilnflow.runner")


class ThreadRunner(AbstractRunner[ThreadPoolExecutor]):
    """Runs nodes whose inputs are ready at the same time, each in a thread.

    Nodes share this process, its memory and its hooks, so nothing needs to
    be picklable; Python code that holds the GIL gains little, while nodes
    that wait on files, networks or native libraries overlap well.
    ``max_workers`` defaults to the CPU count plus 4, at most 32, like
    :class:`~concurrent.futures.ThreadPoolExecutor`.

    Ctrl-C (or SIGTERM through the CLI) stops scheduling at once: a thread
    cannot be stopped from outside, so threads still running a node are
    abandoned and end with the process.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = min(32, cpu_count() + 4)
        super().__init__(max_workers=max_workers)
        self._in_flight: dict[Future[Any], str] = {}

    @contextmanager
    def _executor(self) -> Iterator[ThreadPoolExecutor]:
        pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="kilnflow-node")
        self._in_flight = {}
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            busy = sorted(name for future, name in self._in_flight.items() if not future.done())
            if busy:
                logger.warning(
                    "Run stopped; %d worker thread(s) still running %s were abandoned "
                    "and end with the process.",
                    len(busy),
                    ", ".join(repr(name) for name in busy),
                )
            raise
        finally:
            self._in_flight = {}
        pool.shutdown(wait=True)

    def _submit(
        self,
        executor: ThreadPoolExecutor,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        future = super()._submit(executor, node, catalog, hook_manager, session_id)
        self._in_flight[future] = node.name
        return future

    def _finish(
        self, executor: ThreadPoolExecutor, future: Future[Any], node: Node, catalog: DataCatalog
    ) -> float:
        self._in_flight.pop(future, None)
        return super()._finish(executor, future, node, catalog)
