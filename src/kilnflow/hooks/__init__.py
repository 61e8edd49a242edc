"""Hooks: the pluggy specs Kilnflow calls and the manager that holds them.

Users decorate hook methods with :data:`hook_impl` and list the objects in
``settings.HOOKS``; installed plugins register through the ``kilnflow.hooks``
entry-point group.
"""

from __future__ import annotations

from kilnflow.hooks._manager import (
    HOOK_NAMESPACE,
    HookManager,
    create_hook_manager,
    hook_impl,
    hook_spec,
    register_hooks,
    register_plugins,
)

__all__ = [
    "HOOK_NAMESPACE",
    "HookManager",
    "create_hook_manager",
    "hook_impl",
    "hook_spec",
    "register_hooks",
    "register_plugins",
]
