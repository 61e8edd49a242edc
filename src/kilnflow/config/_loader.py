"""The configuration loader: files of one environment over the base, resolved.

Merging rules, chosen to be predictable rather than clever:

* Inside one environment, a top-level key may be defined by one file only;
  a second definition is an error naming both files.
* The run environment replaces the base environment's values key by key at
  the top level (no deep merge): what ``local`` says about ``cars`` is the
  whole truth about ``cars``.
* Runtime parameters are deep-merged over ``parameters`` before interpolation,
  so ``{"model.lr": 0.1}`` changes one value and keeps its siblings, and a
  value interpolating ``${model.lr}`` sees the runtime value.
* Top-level keys starting with ``_`` are file-local helpers (YAML anchors):
  they may repeat across files and never appear in the result.
"""

from __future__ import annotations

import copy
import fnmatch
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kilnflow.config._interpolation import needs_resolution, resolve
from kilnflow.config._parse import load_json, load_yaml
from kilnflow.config._sources import Source, open_source
from kilnflow.errors import ConfigError, MissingConfigError, did_you_mean

if TYPE_CHECKING:
    from kilnflow._resources import Traversable

__all__ = ["ConfigLoader"]

_EXTENSIONS = (".yml", ".yaml", ".json")
_DEFAULT_NAMES = ("catalog", "parameters", "credentials", "globals")


def _default_patterns(name: str) -> list[str]:
    """Any file or folder named ``<name>*``, at the top or nested at any depth."""
    return [f"{name}*", f"{name}*/**", f"**/{name}*", f"**/{name}*/**"]


class _UnknownConfigError(MissingConfigError, KeyError):
    """No patterns are registered for a config name.

    A ``KeyError`` too, so the loader honours the ``Mapping`` contract
    (``loader.get(name)``, ``try: loader[name] except KeyError``).
    """

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigLoader(Mapping[str, dict[str, Any]]):
    """Read-only mapping from a config name to its merged, resolved dict.

    ``loader["catalog"]`` reads every ``.yml``, ``.yaml`` and ``.json`` file
    matching the ``catalog`` patterns, first in ``<conf_source>/<base_env>``
    and then in ``<conf_source>/<env>``, each in sorted path order. A known
    name with no files gives ``{}``; an unknown name raises a
    ``MissingConfigError`` that is also a ``KeyError``. Results are cached per
    name, and every lookup returns a fresh copy the caller may change.

    ``conf_source`` is a folder, a ``.tar.gz``/``.tgz``/``.zip`` archive of one
    (read in memory) or an importlib.resources ``Traversable``. When ``env`` is
    not given, ``default_run_env`` is used if it exists and silently skipped
    if not (it is git-ignored and never packaged); an explicit ``env`` must
    exist.
    """

    def __init__(
        self,
        conf_source: str | os.PathLike[str] | Traversable,
        env: str | None = None,
        runtime_params: Mapping[str, Any] | None = None,
        base_env: str = "base",
        default_run_env: str = "local",
        *,
        config_patterns: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        for argument, value in (("base_env", base_env), ("env", env or default_run_env)):
            _check_env_name(argument, value)
        #: Where the configuration is read from; a string becomes a ``Path``.
        self.conf_source: Path | Traversable = (
            Path(conf_source) if isinstance(conf_source, (str, os.PathLike)) else conf_source
        )
        #: The environment read over the base: ``env`` if given, else ``default_run_env``.
        self.env: str = env or default_run_env
        self.base_env = base_env
        self.default_run_env = default_run_env
        #: Runtime parameters as given (dotted keys not yet nested).
        self.runtime_params: dict[str, Any] = dict(runtime_params or {})
        #: Glob patterns per config name, matched against paths inside an environment
        #: (``*`` stays within a folder, ``**`` spans folders); add names here.
        self.config_patterns: dict[str, list[str]] = {
            name: _default_patterns(name) for name in _DEFAULT_NAMES
        }
        self.config_patterns.update({k: list(v) for k, v in (config_patterns or {}).items()})
        #: A folder where parsed YAML files are kept as JSON and reused while their
        #: bytes stay the same (sessions set it); ``None`` parses every file each time.
        #: Credentials files are never kept there.
        self.parse_cache: Path | None = None
        self._runtime_tree = _nest_runtime_params(self.runtime_params)
        self._source: Source = open_source(self.conf_source, base_env, self._wanted)
        self._envs = self._envs_to_read(explicit=bool(env))
        self._listings: dict[str, list[str]] = {}
        self._cache: dict[str, dict[Any, Any]] = {}

    def __getitem__(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self._load(name))

    def __contains__(self, name: object) -> bool:
        return name in self.config_patterns

    def __iter__(self) -> Iterator[str]:
        return iter(self.config_patterns)

    def __len__(self) -> int:
        return len(self.config_patterns)

    def __repr__(self) -> str:
        return f"ConfigLoader(conf_source={str(self.conf_source)!r}, env={self.env!r})"

    def _envs_to_read(self, *, explicit: bool) -> list[str]:
        existing = sorted(self._source.envs())
        listing = ", ".join(existing) or "none"
        if self.base_env not in existing:
            raise MissingConfigError(
                f"Base environment folder '{self._source.where(self.base_env)}' does not "
                f"exist (environments found: {listing}); create it to hold the "
                "configuration shared by every environment."
            )
        if self.env == self.base_env:
            return [self.base_env]
        if self.env in existing:
            return [self.base_env, self.env]
        if explicit:
            raise MissingConfigError(
                f"Environment '{self.env}' not found: '{self._source.where(self.env)}' does "
                f"not exist (environments found: {listing}); pass one of those or create "
                f"the folder.{did_you_mean(self.env, existing)}"
            )
        return [self.base_env]

    def _load(self, name: str) -> dict[Any, Any]:
        if name not in self.config_patterns:
            known = ", ".join(sorted(self.config_patterns))
            raise _UnknownConfigError(
                f"No configuration named '{name}' (known: {known}); add its file patterns "
                f"with config_patterns={{'{name}': ['{name}*']}}."
                f"{did_you_mean(name, self.config_patterns)}"
            )
        if name not in self._cache:
            self._cache[name] = self._merge_and_resolve(name)
        return self._cache[name]

    def _merge_and_resolve(self, name: str) -> dict[Any, Any]:
        patterns = [tuple(p.split("/")) for p in self.config_patterns[name]]
        merged: dict[Any, Any] = {}
        origins: dict[Any, str] = {}
        for env in self._envs:
            env_config: dict[Any, Any] = {}
            env_origins: dict[Any, str] = {}
            for path in self._matching_files(env, patterns):
                where = self._source.where(env, path)
                cache = None if name == "credentials" else self.parse_cache
                for key, value in self._parse(env, path, where, cache).items():
                    if key in env_config and not _is_helper(key):
                        raise ConfigError(
                            f"Key '{key}' is defined in both {env_origins[key]} and {where}; "
                            f"keep it in one file of environment '{env}'."
                        )
                    env_config[key] = value
                    env_origins[key] = where
            merged.update(env_config)
            origins.update(env_origins)
        if name == "parameters" and self._runtime_tree:
            # Merged before resolving, so ``doubled: ${rate}`` sees ``--params rate=5``.
            merged = _deep_merge(merged, self._runtime_tree)
            for key in self._runtime_tree:
                origins.setdefault(key, "runtime parameters")
        if needs_resolution(name, merged, origins):
            globals_ = None if name == "globals" else self._load("globals")
            merged = resolve(name, merged, origins, globals_, self._runtime_tree)
        return {k: v for k, v in merged.items() if not _is_helper(k)}

    def _wanted(self, path: str) -> bool:
        """Whether any config name would read ``path`` (relative to an environment)."""
        parts = tuple(path.split("/"))
        return path.endswith(_EXTENSIONS) and any(
            _glob_match(parts, tuple(pattern.split("/")))
            for patterns in self.config_patterns.values()
            for pattern in patterns
        )

    def _matching_files(self, env: str, patterns: list[tuple[str, ...]]) -> list[str]:
        if env not in self._listings:
            self._listings[env] = sorted(
                p for p in self._source.files(env) if p.endswith(_EXTENSIONS)
            )
        return [
            path
            for path in self._listings[env]
            if any(_glob_match(tuple(path.split("/")), pattern) for pattern in patterns)
        ]

    def _parse(self, env: str, path: str, where: str, cache: Path | None) -> dict[Any, Any]:
        try:
            data = self._source.read(env, path)
        except OSError as exc:
            raise ConfigError(
                f"{where} cannot be read ({exc.strerror or exc}); fix or remove the file."
            ) from exc
        if not data.strip():
            return {}
        is_json = path.endswith(".json")
        loaded = load_json(data, where) if is_json else load_yaml(data, where, cache)
        if loaded is None:
            return {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{where} holds a {type(loaded).__name__} at its top level; it must be a "
                "mapping of keys to values."
            )
        return loaded


def _check_env_name(argument: str, value: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value:
        raise ConfigError(
            f"{argument}={value!r} is not an environment name; pass the name of a folder "
            "directly inside the conf source, such as 'base' or 'prod'."
        )


def _is_helper(key: Any) -> bool:
    return isinstance(key, str) and key.startswith("_")


def _glob_match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Match path components against pattern components; ``**`` spans any depth."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_glob_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], head) and _glob_match(parts[1:], rest)


def _nest_runtime_params(params: Mapping[Any, Any]) -> dict[str, Any]:
    """Turn ``{"model.lr": 0.1}`` into ``{"model": {"lr": 0.1}}``."""
    tree: dict[str, Any] = {}
    for key, value in params.items():
        parts = key.split(".") if isinstance(key, str) else [""]
        if not all(parts):
            raise ConfigError(
                f"Runtime parameter name {key!r} is invalid; use a name like 'n' or a "
                "dotted path like 'model.lr'."
            )
        node = tree
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if part not in node:
                node[part] = copy.deepcopy(value) if last else {}
            elif last and isinstance(node[part], dict) and isinstance(value, Mapping):
                node[part] = _deep_merge(node[part], value)
            elif last or not isinstance(node[part], dict):
                raise ConfigError(
                    f"Runtime parameter '{key}' clashes with another one at "
                    f"'{'.'.join(parts[: depth + 1])}'; pass only one of them."
                )
            node = node[part]
    return tree


def _deep_merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
