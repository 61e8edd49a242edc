"""The pluggy markers, apart from specs and manager so that neither imports the other."""

from __future__ import annotations

import pluggy

#: The pluggy project name shared by specs and implementations.
HOOK_NAMESPACE = "kilnflow"

#: Decorator for hook implementations in projects and plugins.
hook_impl = pluggy.HookimplMarker(HOOK_NAMESPACE)
#: Decorator for hook specifications (used by :mod:`kilnflow.hooks._specs`).
hook_spec = pluggy.HookspecMarker(HOOK_NAMESPACE)
