"""A progress bar for runs watched at a terminal.

The runner logs a line per node by default; a person at a terminal sees one
bar instead. rich is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kilnflow.runner import Progress

__all__ = ["progress_bar", "terminal_progress"]


def terminal_progress() -> Progress | None:
    """The bar when stderr is a terminal, else None (the runner then logs each node)."""
    return progress_bar if sys.stderr.isatty() else None


@contextmanager
def progress_bar(total: int) -> Iterator[Callable[[str], None]]:
    """Show a bar on stderr advancing with each completed node."""
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
