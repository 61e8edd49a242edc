"""The ``kilnflow`` console script, which answers ``kilnflow --help`` without click.

Importing click costs more than starting Python, while the top-level help
depends only on the commands ``_main.py`` declares, click's formatting and
the terminal's width. So the text click renders is kept in Kilnflow's home
folder under a key made of those, and printed from there the next time.
Anything else, and any trouble reading or writing that folder, goes through
click as always.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from kilnflow._home import kilnflow_home
from kilnflow._version import __version__

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> Any:
    """Entry point of the ``kilnflow`` console script (see ``cli._main.main``)."""
    if argv is None and sys.argv[1:] in (["--help"], ["-h"]):
        _print_help()
        return None
    from kilnflow.cli._main import main as click_main

    return click_main(argv)


def _print_help() -> None:
    entry = os.path.join(kilnflow_home(), "cache", "help.txt")
    key = _help_key()
    try:
        with open(entry, encoding="utf-8") as file:
            kept_key, _, text = file.read().partition("\n")
    except (OSError, ValueError):
        kept_key = text = ""
    if kept_key != key:
        from kilnflow.cli._main import help_text

        text = help_text()
        _keep(entry, f"{key}\n{text}")
    sys.stdout.write(text)


def _help_key() -> str:
    """Everything click's rendering of the help depends on, as one line.

    The terminal's width is given as what click's ``shutil.get_terminal_size``
    reads (``$COLUMNS``, else the size of stdout's terminal), not computed.
    """
    try:
        columns = str(os.get_terminal_size().columns)
    except (AttributeError, ValueError, OSError):
        columns = "-"
    declared = os.stat(os.path.join(os.path.dirname(__file__), "_main.py"))
    return " ".join(
        (
            __version__,
            f"{declared.st_mtime_ns}:{declared.st_size}",
            f"{_click_stamp()}",
            f"COLUMNS={os.environ.get('COLUMNS', '')}",
            f"terminal={columns}",
        )
    )


def _click_stamp() -> str:
    """Which click is installed, without importing it: another may format differently."""
    from importlib.machinery import PathFinder

    spec = PathFinder.find_spec("click")
    if spec is None or spec.origin is None:
        return "click=?"
    found = os.stat(spec.origin)
    return f"click={spec.origin}:{found.st_mtime_ns}"


def _keep(entry: str, content: str) -> None:
    """Write the entry whole, or not at all: a missing cache only costs time."""
    from kilnflow._atomic import atomic_write

    folder = os.path.dirname(entry)
    try:
        # Private like the session store that shares the home folder.
        for private in (os.path.dirname(folder), folder):
            os.makedirs(private, mode=0o700, exist_ok=True)
        with atomic_write(entry, "w") as file:
            file.write(content)
    except OSError:
        pass
