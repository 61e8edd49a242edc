"""The ``kilnflow`` console script, which prints the top-level help without click.

Importing click costs more than starting Python, yet ``kilnflow --help`` is
the same text on every terminal at least 80 columns wide and when output is
not a terminal: :data:`kilnflow.cli._commands.HELP`. Narrower terminals, and
every other command line, go through click.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from kilnflow.cli._commands import HELP

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point of the ``kilnflow`` console script (see ``cli._main.main``)."""
    if argv is None and sys.argv[1:] in (["--help"], ["-h"]) and _wide_output():
        sys.stdout.write(HELP)
        return None
    from kilnflow.cli._main import main as click_main

    return click_main(argv)


def _wide_output() -> bool:
    """Whether click would wrap the help at its widest: it measures the terminal like this."""
    import shutil

    return shutil.get_terminal_size().columns >= 80
