"""Kilnflow's command line: ``kilnflow`` and the packaged projects' commands."""

from __future__ import annotations

from kilnflow.cli._main import cli, main

__all__ = ["cli", "main"]


def __dir__() -> list[str]:
    return __all__
