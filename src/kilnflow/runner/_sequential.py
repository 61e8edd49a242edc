"""The default runner: one node at a time, in the pipeline's topological order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, TypeVar

from kilnflow.runner._base import AbstractRunner

__all__ = ["SequentialRunner"]

_T = TypeVar("_T")


class _InlineExecutor(Executor):
    """Runs each submitted call at once, in the caller's thread.

    Lets the sequential runner use the same scheduling loop as the
    concurrent ones. Only ``Exception`` is captured in the future, so Ctrl-C
    still stops the run immediately.
    """

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


class SequentialRunner(AbstractRunner[_InlineExecutor]):
    """Runs nodes one after another in the caller's process and thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)

    @contextmanager
    def _executor(self) -> Iterator[_InlineExecutor]:
        yield _InlineExecutor()
