"""Hooks: the pluggy specs Kilnflow calls and the manager that holds them.

Users decorate hook methods with :data:`hook_impl` and list the objects in
``settings.HOOKS``; installed plugins register through the ``kilnflow.hooks``
entry-point group.
"""

from __future__ import annotations

from kilnflow.hooks._manager import (
    HookManager,
    create_hook_manager,
    register_hooks,
    register_plugins,
)
from kilnflow.hooks._markers import HOOK_NAMESPACE, hook_impl, hook_spec

__all__ = [
    "HOOK_NAMESPACE",
    "HookManager",
    "create_hook_manager",
    "hook_impl",
    "hook_spec",
    "register_hooks",
    "register_plugins",
]


def __dir__() -> list[str]:
    return __all__
