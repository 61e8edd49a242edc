"""Per-node progress: a rich progress bar on a terminal, log lines elsewhere.

Logs and CI output stay plain text, while a person at a terminal sees one
bar instead of a line per node. rich is imported only for a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress"]

logger = logging.getLogger("kilnflow.runner")


@contextmanager
def progress(total: int) -> Iterator[Callable[[str], None]]:
    """Yield a function to call with each completed node's name."""
    if not sys.stderr.isatty():
        completed = 0

        def log_completion(name: str) -> None:
            nonlocal completed
            completed += 1
            logger.info("Completed node %d of %d: %s", completed, total, name)

        yield log_completion
        return

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("Running nodes", total=total, last="")

        def show_completion(name: str) -> None:
            bar.update(task, advance=1, last=name)

        yield show_completion
