"""Stop signals and the command line: the exit after an interrupt.

The run itself turns SIGTERM and SIGINT into
:class:`~kilnflow.errors.Interrupted` (see ``kilnflow.runner._signals``; the
CLI does so around the whole session); here the command exits with 128 plus
the signal's number, without the threads a runner had to abandon.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn

from kilnflow.errors import Interrupted

__all__ = ["exit_interrupted"]

#: How long threads still running after an interrupt get to finish before the
#: process leaves without them.
_GRACE_SECONDS = 2.0


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
        from kilnflow._atomic import discard_unfinished_writes

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
