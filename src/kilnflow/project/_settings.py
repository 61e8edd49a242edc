"""A project's settings: its ``settings`` module over Kilnflow's defaults."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from kilnflow.errors import KilnflowWarning, ProjectError, did_you_mean

__all__ = ["Settings"]


def _config_loader_class() -> type:
    from kilnflow.config import ConfigLoader

    return ConfigLoader


def _data_catalog_class() -> type:
    from kilnflow.io import DataCatalog

    return DataCatalog


def _is_sequence_of_str(value: object) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)


# Name -> (default factory, check, what the value must be). ``None`` for a class
# setting means "the session's built-in class"; the project layer sits below
# the session and cannot name it.
_SPEC: dict[str, tuple[Callable[[], Any], Callable[[Any], bool], str]] = {
    "HOOKS": (tuple, lambda v: isinstance(v, (list, tuple)), "a tuple of hook objects"),
    "DISABLE_HOOKS_FOR_PLUGINS": (
        tuple,
        _is_sequence_of_str,
        "a tuple of distribution names",
    ),
    "SECRET_NAMES": (
        tuple,
        _is_sequence_of_str,
        "a tuple of name patterns such as '*_SALT'",
    ),
    "CONF_SOURCE": (lambda: "conf", lambda v: isinstance(v, str) and bool(v), "a folder name"),
    "CONFIG_LOADER_CLASS": (_config_loader_class, lambda v: isinstance(v, type), "a class"),
    "CONFIG_LOADER_ARGS": (dict, lambda v: isinstance(v, Mapping), "a dict of arguments"),
    "CONTEXT_CLASS": (lambda: None, lambda v: v is None or isinstance(v, type), "a class"),
    "DATA_CATALOG_CLASS": (_data_catalog_class, lambda v: isinstance(v, type), "a class"),
    "SESSION_STORE_CLASS": (lambda: None, lambda v: v is None or isinstance(v, type), "a class"),
    "SESSION_STORE_ARGS": (dict, lambda v: isinstance(v, Mapping), "a dict of arguments"),
    "SESSION_STORE_URL": (
        lambda: None,
        lambda v: v is None or isinstance(v, str),
        "a store URL such as 'sqlite:///sessions.db' or 'postgresql://user@host/db'",
    ),
}


class Settings:
    """Read-only view of a project's settings, validated on first access.

    Values come from the project's ``settings`` module where it defines them
    and from Kilnflow's defaults otherwise. Upper-case names that Kilnflow
    does not know are reported once, with the closest known name.
    """

    def __init__(self, module: ModuleType | None) -> None:
        self._module = module
        self._values: dict[str, Any] = {}
        if module is not None:
            for name in vars(module):
                if name.isupper() and name not in _SPEC:
                    warnings.warn(
                        f"{module.__name__}: unknown setting {name!r} is ignored."
                        f"{did_you_mean(name, _SPEC)}",
                        KilnflowWarning,
                        stacklevel=2,
                    )

    def __getattr__(self, name: str) -> Any:
        if name not in _SPEC:
            raise AttributeError(f"Kilnflow has no setting {name!r}.{did_you_mean(name, _SPEC)}")
        if name not in self._values:
            self._values[name] = self._resolve(name)
        return self._values[name]

    def _resolve(self, name: str) -> Any:
        default, check, expected = _SPEC[name]
        if self._module is None or not hasattr(self._module, name):
            return default()
        value = getattr(self._module, name)
        if not check(value):
            raise ProjectError(
                f"{self._module.__name__}: setting {name} must be {expected}, "
                f"got {type(value).__name__} {value!r}."
            )
        return value

    def as_dict(self) -> dict[str, Any]:
        """All settings with their effective values, for ``kilnflow info``."""
        return {name: getattr(self, name) for name in _SPEC}
