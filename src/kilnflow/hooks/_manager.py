"""The hook manager: specs, registration of project hooks and plugins."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

from kilnflow.errors import HookError

#: The pluggy project name shared by specs and implementations.
HOOK_NAMESPACE = "kilnflow"
#: Entry-point group through which installed packages contribute hooks.
PLUGIN_GROUP = "kilnflow.hooks"

#: Decorator for hook implementations in projects and plugins.
hook_impl = pluggy.HookimplMarker(HOOK_NAMESPACE)
#: Decorator for hook specifications (used by :mod:`kilnflow.hooks._specs`).
hook_spec = pluggy.HookspecMarker(HOOK_NAMESPACE)

HookManager = pluggy.PluginManager

__all__ = [
    "HOOK_NAMESPACE",
    "HookManager",
    "create_hook_manager",
    "hook_impl",
    "hook_spec",
    "register_hooks",
    "register_plugins",
]


def create_hook_manager() -> HookManager:
    """Return a manager that knows every Kilnflow hook spec and no implementation."""
    from kilnflow.hooks import _specs

    manager = pluggy.PluginManager(HOOK_NAMESPACE)
    manager.add_hookspecs(_specs)
    return manager


def register_hooks(manager: HookManager, hooks: Iterable[object]) -> None:
    """Register project hook objects, rejecting ones that implement nothing known.

    pluggy silently accepts an object whose methods are misspelled; naming the
    object here saves users from hooks that never fire.
    """
    for hooks_object in hooks:
        if isinstance(hooks_object, type):
            raise HookError(
                f"Hook {hooks_object.__qualname__!r} is a class; settings.HOOKS takes "
                f"instances: write {hooks_object.__qualname__}() instead."
            )
        if manager.is_registered(hooks_object):
            continue
        try:
            manager.register(hooks_object)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise HookError(
                f"Hook object {type(hooks_object).__qualname__!r} cannot be registered: {exc}"
            ) from exc
        manager.check_pending()


def register_plugins(manager: HookManager, disabled: Iterable[str] = ()) -> list[str]:
    """Load hook plugins from installed distributions, except the disabled ones.

    Returns the names of the distributions whose plugins were loaded, so that
    sessions can record them.
    """
    skip = set(disabled)
    loaded: list[str] = []
    for entry_point in _entry_points(PLUGIN_GROUP):
        # Python 3.9's entry points do not know their distribution.
        owner = getattr(entry_point, "dist", None)
        dist = owner.name if owner is not None else entry_point.name
        if dist in skip or entry_point.name in skip:
            continue
        plugin = entry_point.load()
        if manager.is_registered(plugin):
            continue
        manager.register(plugin, name=f"{dist}:{entry_point.name}")
        loaded.append(dist)
    return loaded


def _entry_points(group: str) -> list[EntryPoint]:
    """Entry points of one group; python 3.9 only has the dict-returning API."""
    if not _declared_anywhere(group):
        return []
    from importlib.metadata import entry_points

    found = entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group))
    return list(found.get(group, []))  # pragma: no cover - python 3.9 only


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
