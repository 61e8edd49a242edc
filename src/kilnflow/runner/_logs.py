"""Log records of worker processes, shown by the parent's own logging.

A worker's records (nodes' and hooks' loggers, Kilnflow's) go into a queue
instead of the worker's stderr; the parent reads them and hands each to the
logger of the same name, so its handlers, levels and format (the CLI's
``conf/logging.yml``, a test's ``caplog``) apply. Records of one node come
from one process, in the order they were logged.
"""

from __future__ import annotations

import logging
from logging.handlers import QueueHandler, QueueListener
from typing import Any

__all__ = ["forward_records", "records_listener"]


class _ToLoggers(logging.Handler):
    """Hands each record to the parent's logger of its name."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def records_listener(records: Any) -> QueueListener:
    """Start reading records from the queue ``records`` into this process's loggers."""
    listener = QueueListener(records, _ToLoggers())
    listener.start()
    return listener


def forward_records(records: Any, level: int) -> None:
    """In a worker: send every record of ``level`` and above to the queue ``records``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(QueueHandler(records))
    root.setLevel(level)
