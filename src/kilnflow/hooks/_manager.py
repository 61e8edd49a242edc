"""The hook manager: specs, registration of project hooks and plugins."""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from kilnflow.errors import HookError
from kilnflow.hooks import _specs
from kilnflow.hooks._markers import HOOK_NAMESPACE

#: Entry-point group through which installed packages contribute hooks.
PLUGIN_GROUP = "kilnflow.hooks"

HookManager = pluggy.PluginManager

__all__ = [
    "HookManager",
    "create_hook_manager",
    "register_hooks",
    "register_plugins",
]


def create_hook_manager() -> HookManager:
    """Return a manager that knows every Kilnflow hook spec and no implementation."""
    manager = pluggy.PluginManager(HOOK_NAMESPACE)
    manager.add_hookspecs(_specs)
    return manager


def register_hooks(manager: HookManager, hooks: Iterable[object]) -> None:
    """Register project hook objects, rejecting ones that implement nothing known.

    pluggy silently accepts an object whose methods are misspelled; naming the
    object here saves users from hooks that never fire.
    """
    for index, hooks_object in enumerate(hooks):
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
        if not manager.get_hookcallers(hooks_object):
            manager.unregister(hooks_object)
            raise HookError(
                f"settings.HOOKS[{index}] is a {type(hooks_object).__qualname__}, not a hooks "
                "object: it has no method marked @hook_impl. Put instances of classes with "
                "@hook_impl methods in HOOKS."
            )
        manager.check_pending()


def register_plugins(manager: HookManager, disabled: Iterable[str] = ()) -> list[str]:
    """Load hook plugins from installed distributions, except the disabled ones.

    Returns the names of the distributions whose plugins were loaded, so that
    sessions can record them.
    """
    from kilnflow._entry_points import entry_points_of

    skip = set(disabled)
    loaded: list[str] = []
    for dist, _, entry_point in entry_points_of(PLUGIN_GROUP):
        if dist in skip or entry_point.name in skip:
            continue
        plugin = entry_point.load()
        if manager.is_registered(plugin):
            continue
        manager.register(plugin, name=f"{dist}:{entry_point.name}")
        loaded.append(dist)
    return loaded
