"""Stop signals during a run: SIGTERM is handled like Ctrl-C, by every runner.

Production stops processes with SIGTERM (``docker stop``, Kubernetes, Airflow
timeouts). Python's default for SIGTERM ends the process on the spot,
leaving workers, temporary files and a session recorded as ``running``.
While a run is under way, SIGTERM and SIGINT raise
:class:`~kilnflow.errors.Interrupted` in the main thread instead, so the
runner stops its workers and the session records ``interrupted`` with the
signal. A handler someone else installed (a host such as Airflow) is left in
place.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from kilnflow.errors import Interrupted

__all__ = ["HeldSignals", "stop_signals_interrupt"]


def _raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise Interrupted(signal_number)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Raise :class:`Interrupted` on SIGINT and SIGTERM in the main thread, for the block.

    Only signals still at Python's defaults are taken over, so an outer
    block (the CLI's, around the whole session) or a host's handler wins.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    replaced = {}
    for number, default in defaults.items():
        if signal.getsignal(number) is default:
            replaced[number] = signal.signal(number, _raise_interrupted)
    try:
        yield
    finally:
        for number, previous in replaced.items():
            signal.signal(number, previous)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_Handler = Callable[[int, "FrameType | None"], Any]


class HeldSignals:
    """Stop signals that wait while the pool's bookkeeping runs, then act as usual.

    Ctrl-C raises ``KeyboardInterrupt`` wherever the main thread happens to
    be. Inside ``ProcessPoolExecutor.submit`` that can fall between a worker
    process starting and the pool recording it; the stop then misses that
    worker, which keeps running its node, and the parent waits for it at
    exit: the run never ends and the worker and the resource tracker are
    orphaned. So while :meth:`held`, a signal whose handler is Python code is
    only noted, and its handler runs when the step is done. Signals still
    at their default action (a process that never handled SIGTERM) are left alone.
    """

    def __init__(self) -> None:
        self._previous: dict[int, _Handler] = {}
        self._pending: list[int] = []
        self._depth = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Route stop signals through this object for the duration of a run."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for number in _STOP_SIGNALS:
            handler = signal.getsignal(number)
            if callable(handler):
                self._previous[number] = handler
                signal.signal(number, self._receive)
        try:
            yield
        finally:
            for held, previous in self._previous.items():
                signal.signal(held, previous)
            self._previous.clear()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Note stop signals until the block is done, then handle the first of them."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth and self._pending:
                number = self._pending[0]
                self._pending.clear()
                self._previous[number](number, None)

    def _receive(self, number: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending.append(number)
        else:
            self._previous[number](number, frame)
