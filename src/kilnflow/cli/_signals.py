"""Stop signals during a run: SIGTERM is handled like Ctrl-C.

Production stops processes with SIGTERM (``docker stop``, Airflow timeouts,
Kubernetes). Python's default for SIGTERM ends the process on the spot,
leaving workers, temporary files and a session recorded as ``running``. While
a run is under way, SIGTERM and SIGINT raise :class:`~kilnflow.errors.Interrupted`
in the main thread instead, so runners stop their workers, the session records
``interrupted`` with the signal, and the command exits with 128 plus the
signal's number. A handler someone else installed (a host such as Airflow)
is left in place.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from kilnflow.errors import Interrupted

__all__ = ["exit_interrupted", "stop_signals_interrupt"]

#: How long threads still running after an interrupt get to finish before the
#: process leaves without them.
_GRACE_SECONDS = 2.0


def _raise_interrupted(signal_number: int, frame: FrameType | None) -> None:
    raise Interrupted(signal_number)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Raise :class:`Interrupted` on SIGINT and SIGTERM in the main thread, for the block."""
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


def exit_interrupted(error: BaseException) -> NoReturn:
    """Leave the process after an interrupt, with the signal's exit status.

    Threads that are still running a node (ThreadRunner cannot stop them)
    would keep the interpreter from exiting; after a short grace period the
    process leaves without them, removing the temporary files of their saves.
    """
    code = error.exit_code if isinstance(error, Interrupted) else 128 + signal.SIGINT
    deadline = time.monotonic() + _GRACE_SECONDS
    for thread in _other_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    if _other_threads():
        from kilnflow.io import discard_unfinished_writes

        discard_unfinished_writes()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def _other_threads() -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread is not threading.current_thread() and not thread.daemon and thread.is_alive()
    ]
