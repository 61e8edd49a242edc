"""The hook manager: specs, registration of project hooks and plugins."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

import pluggy

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
        dist = entry_point.dist.name if entry_point.dist is not None else entry_point.name
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
    found = entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group))
    return list(found.get(group, []))  # pragma: no cover - python 3.9 only
