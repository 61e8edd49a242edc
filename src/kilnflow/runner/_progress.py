"""How a run shows its progress: a context manager told of each completed node.

The runner does not decide how progress looks: whoever starts the run knows
whether a person is watching (the CLI shows a bar on a terminal). Without
one, each completed node is logged, which suits logs and CI output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["Progress", "log_progress"]

logger = logging.getLogger("kilnflow.runner")

#: Called with the number of nodes of a run; yields a function that the runner
#: calls with each completed node's name.
Progress = Callable[[int], AbstractContextManager[Callable[[str], None]]]


@contextmanager
def log_progress(total: int) -> Iterator[Callable[[str], None]]:
    """Log one line per completed node."""
    completed = 0

    def log_completion(name: str) -> None:
        nonlocal completed
        completed += 1
        logger.info("Completed node %d of %d: %s", completed, total, name)

    yield log_completion
