"""Entry points of installed distributions, read the same way on every Python.

Plugins (``kilnflow.hooks``) and packaged projects (``kilnflow.projects``)
announce themselves through entry points. Walking distributions gives each
entry point together with its distribution's name and version; when a
distribution is installed twice on ``sys.path``, the first copy wins, as it
does for imports.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["Declared", "entry_points_of"]


class Declared(NamedTuple):
    """An entry point and the distribution that declares it."""

    distribution: str
    version: str
    entry_point: EntryPoint


def entry_points_of(group: str) -> list[Declared]:
    """Every entry point of ``group``, once each, sorted by distribution and name."""
    if not _declared_anywhere(group):
        return []
    from importlib.metadata import distributions

    found: dict[tuple[str, str], Declared] = {}
    for dist in distributions():
        for entry_point in dist.entry_points:
            if entry_point.group == group:
                key = (dist.metadata["Name"], entry_point.name)
                found.setdefault(key, Declared(key[0], dist.version, entry_point))
    return [found[key] for key in sorted(found)]


def _declared_anywhere(group: str) -> bool:
    """Whether any installed distribution's entry_points.txt names ``group``.

    Importing importlib.metadata costs more than a short run's scheduling,
    and most environments have no Kilnflow plugin at all. This looks for the
    section header in the metadata folders on ``sys.path``; only when one is
    found (or a path entry is an archive it cannot look into) does
    importlib.metadata read the entry points properly.
    """
    header = f"[{group}]".encode()
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.isfile(folder):
                return True
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), "rb") as file:
                    if header in file.read():
                        return True
            except OSError:
                continue
    return False
