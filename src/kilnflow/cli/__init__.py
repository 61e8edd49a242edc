"""Kilnflow's command line: ``kilnflow`` and the packaged projects' commands.

``main`` comes from a module that imports no click, so that ``kilnflow --help``
can be answered before click loads; ``cli``, the click group, loads on first use.
"""

from __future__ import annotations

from kilnflow._lazy import lazy_names
from kilnflow.cli._entry import main

__all__ = ["cli", "main"]

__getattr__ = lazy_names(__name__, {"cli": "kilnflow.cli._main"})


def __dir__() -> list[str]:
    return __all__
