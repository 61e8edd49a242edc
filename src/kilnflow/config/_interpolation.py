"""``${...}`` interpolation through OmegaConf, only for configs that use it.

OmegaConf resolvers are process-wide, but ``${globals:...}`` and
``${runtime_params:...}`` must answer with the values of the loader doing the
resolving. So the two resolvers are plain module functions that read the
loader's values from a context variable set for the duration of one
resolution: registering them again is harmless, two loaders (or two threads)
never see each other's values, and nothing is left behind afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

from kilnflow.errors import ConfigError

__all__ = ["ALLOWED_RESOLVERS", "needs_resolution", "resolve"]

# A resolver call, ``${name:``; escaped ones count too, so no run of
# backslashes can turn a refused call into an accepted one.
_RESOLVER_CALL = re.compile(r"\$\{\s*([\w.\-]+)\s*:")
#: Resolvers that run outside credentials: they read only the loader's own values.
#: Anything else (``oc.env``, ``oc.decode``, resolvers other code registered)
#: could reach the environment or run code, so only credentials may use it.
ALLOWED_RESOLVERS = frozenset(
    {"globals", "runtime_params", "oc.select", "oc.dict.keys", "oc.dict.values"}
)


class _Scope(NamedTuple):
    """The values one resolution may interpolate from."""

    #: Merged globals, or None while the globals config itself is resolved.
    globals: dict[Any, Any] | None
    runtime_params: dict[str, Any]


_SCOPE: ContextVar[_Scope | None] = ContextVar("kilnflow_config_scope", default=None)


def needs_resolution(name: str, config: dict[Any, Any], origins: Mapping[Any, str]) -> bool:
    """Tell whether any value holds ``${``, refusing unlisted resolvers outside credentials.

    Environment variables are secrets' business; letting them leak into the
    catalog or parameters would make runs depend on the shell they start in,
    and a configuration source from elsewhere could copy any of them into a
    dataset path or a parameter. ``oc.decode`` and friends could smuggle an
    ``oc.env`` past a check of the text alone, hence an allow-list.
    """
    found = False
    pending: list[tuple[Any, str, Any]] = [(k, str(k), v) for k, v in config.items()]
    while pending:
        top, path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((top, f"{path}.{k}", v) for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((top, f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, str) and "${" in value:
            if name != "credentials":
                _check_resolvers(value, f"{origins[top]}, key '{path}'")
            found = True
    return found


def _check_resolvers(value: str, where: str) -> None:
    for resolver in _RESOLVER_CALL.findall(value):
        if resolver == "oc.env":
            raise ConfigError(
                f"{where}: ${{oc.env:...}} is only allowed in credentials; move the value to "
                "a credentials file and refer to it from there."
            )
        if resolver not in ALLOWED_RESOLVERS:
            allowed = ", ".join(sorted(ALLOWED_RESOLVERS))
            raise ConfigError(
                f"{where}: resolver '{resolver}' is only allowed in credentials (elsewhere: "
                f"{allowed}); move the value to a credentials file."
            )


def resolve(
    name: str,
    config: dict[Any, Any],
    origins: Mapping[Any, str],
    globals_: dict[Any, Any] | None,
    runtime_params: dict[str, Any],
) -> dict[Any, Any]:
    """Return ``config`` with every interpolation replaced by its value."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    _register_resolvers()
    token = _SCOPE.set(_Scope(globals_, runtime_params))
    try:
        resolved = OmegaConf.to_container(
            OmegaConf.create(config, flags={"allow_objects": True}), resolve=True
        )
    except OmegaConfBaseException as exc:
        raise _explain(exc, name, origins) from exc
    finally:
        _SCOPE.reset(token)
    assert isinstance(resolved, dict)
    return resolved


def _register_resolvers() -> None:
    """Register (again, harmlessly) the resolvers under their public names."""
    import omegaconf
    from omegaconf import OmegaConf

    resolvers = {"globals": _globals_resolver, "runtime_params": _runtime_params_resolver}
    major, minor = (int(p) for p in omegaconf.__version__.split(".")[:2])
    for resolver_name, resolver in resolvers.items():
        if (major, minor) >= (2, 4):
            OmegaConf.register_resolver(
                resolver_name, resolver, replace=True, annotation_validation="off"
            )
        else:
            OmegaConf.register_new_resolver(resolver_name, resolver, replace=True)


def _current_scope(resolver: str) -> _Scope:
    scope = _SCOPE.get()
    if scope is None:
        raise ConfigError(
            f"${{{resolver}:...}} is only resolved while kilnflow's ConfigLoader loads a "
            "configuration; load this file through ConfigLoader."
        )
    return scope


def _globals_resolver(key: Any, *default: Any) -> Any:
    scope = _current_scope("globals")
    if scope.globals is None:
        raise ConfigError(
            f"${{globals:{key}}} cannot be used inside globals itself; refer to another "
            f"globals key with ${{{key}}} instead."
        )
    return _lookup(
        scope.globals,
        "globals",
        key,
        default,
        f"globals key '{key}' is not defined and has no default; add it to a globals "
        f"file or write ${{globals:{key},<default>}}.",
    )


def _runtime_params_resolver(key: Any, *default: Any) -> Any:
    return _lookup(
        _current_scope("runtime_params").runtime_params,
        "runtime_params",
        key,
        default,
        f"runtime parameter '{key}' was not passed and has no default; pass it at run "
        f"time or write ${{runtime_params:{key},<default>}}.",
    )


def _lookup(tree: Any, resolver: str, key: Any, default: tuple[Any, ...], missing: str) -> Any:
    if len(default) > 1:
        raise ConfigError(
            f"${{{resolver}:{key},...}} takes a key and at most one default, not "
            f"{len(default)} defaults; quote the default if it contains a comma."
        )
    node = tree
    for part in str(key).split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif default:
            return default[0]
        else:
            raise ConfigError(missing)
    return node


def _explain(exc: Exception, name: str, origins: Mapping[Any, str]) -> ConfigError:
    """Turn an OmegaConf failure into one sentence naming the file and key."""
    key = str(getattr(exc, "full_key", "") or "")
    top = re.split(r"[.\[]", key, maxsplit=1)[0]
    where = {str(k): v for k, v in origins.items()}.get(top, f"the {name} configuration")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ConfigError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        detail = str(cause)
    else:
        message = str(getattr(exc, "msg", None) or exc).split("\n")[0].rstrip(".")
        detail = f"cannot resolve the interpolation ({message}); fix the ${{...}} expression."
    return ConfigError(f"{where}, key '{key}': {detail}")
