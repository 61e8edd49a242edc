"""The DataCatalog: datasets by name, dataset factories and undeclared data.

Lookups are plain dict accesses. Declared datasets are constructed when
first used, so a dataset whose library is missing fails only the runs that
need it. A name that is not declared is matched against the factories once
and the answer cached, and a factory match is built once and kept, so a
catalog of thousands of datasets stays fast.
"""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Mapping
from typing import Any

from kilnflow.errors import DatasetError, DatasetNotFoundError, did_you_mean

from ._core import AbstractDataset
from ._datasets import MemoryDataset
from ._file import new_version
from ._registry import (
    check_entry,
    check_type_name,
    checked_entry,
    dataset_from_config,
    resolve_dataset_type,
)

__all__ = ["DataCatalog"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CREDENTIALS_FILE = "conf/<env>/credentials.yml"
#: ``table@pandas`` and ``table@spark`` are two views of the dataset ``table``.
_TRANSCODING = "@"


class _Factory:
    """A catalog entry whose name has ``{placeholders}``, e.g. ``{name}_csv``."""

    __slots__ = ("config", "pattern", "placeholders", "regex", "sort_key")

    def __init__(self, pattern: str, config: Any) -> None:
        literal = _PLACEHOLDER.sub("", pattern)
        if "{" in literal or "}" in literal:
            raise DatasetError(
                f"Dataset factory {pattern!r}: placeholders must be plain names in braces, "
                "such as '{name}'; fix the entry name in the catalog."
            )
        if not isinstance(config, Mapping):
            raise DatasetError(
                f"Dataset factory {pattern!r}: its catalog entry must be a mapping with a "
                f"'type' key, not {type(config).__name__}."
            )
        parts: list[str] = []
        names: list[str] = []
        position = 0
        for match in _PLACEHOLDER.finditer(pattern):
            key = match.group(1)
            parts.append(re.escape(pattern[position : match.start()]))
            parts.append(f"(?P={key})" if key in names else f"(?P<{key}>.+?)")
            names.append(key)
            position = match.end()
        parts.append(re.escape(pattern[position:]))
        self.pattern = pattern
        self.config: Mapping[str, Any] = config
        self.placeholders = frozenset(names)
        self.regex = re.compile("".join(parts))
        # Most specific first: most literal characters, fewest placeholders, then by name.
        self.sort_key = (-len(literal), len(names), pattern)
        self._check_config(config)

    def _check_config(self, value: Any) -> None:
        if isinstance(value, str):
            for used in _PLACEHOLDER.findall(value):
                if used not in self.placeholders:
                    allowed = ", ".join(f"{{{p}}}" for p in sorted(self.placeholders))
                    raise DatasetError(
                        f"Dataset factory {self.pattern!r}: its entry uses {{{used}}}, which "
                        f"is not in the pattern; use only {allowed}."
                    )
        elif isinstance(value, Mapping):
            for item in value.values():
                self._check_config(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._check_config(item)

    def resolve(self, captures: Mapping[str, str]) -> Any:
        return _substitute(self.config, captures)


def _substitute(value: Any, captures: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: captures[m.group(1)], value)
    if isinstance(value, Mapping):
        return {key: _substitute(item, captures) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_substitute(item, captures) for item in value]
    return value


_Match = tuple[_Factory, Mapping[str, str]] | None


class DataCatalog:
    """Datasets by name, as the runner loads and saves them.

    Names that are not declared behave as memory datasets: saving creates a
    :class:`MemoryDataset`, and :meth:`is_memory` is true for them so the
    runner releases them after their last use. Declared names win over
    factories, and among factories the most specific pattern wins. A name
    ``base@suffix`` (transcoding) that is neither declared nor matched by a
    factory is the dataset ``base``. A catalog can be copied and pickled.
    """

    def __init__(self, datasets: Mapping[str, AbstractDataset] | None = None) -> None:
        self._datasets: dict[str, AbstractDataset] = {}
        self._entries: dict[str, Mapping[str, Any]] = {}
        self._factories: tuple[_Factory, ...] = ()
        self._matches: dict[str, _Match] = {}
        self._credentials: Mapping[str, Any] = {}
        self._load_versions: dict[str, str] = {}
        self._save_version: str | None = None
        self._overwrite_save_version = False
        self._lock = threading.Lock()
        for name, dataset in (datasets or {}).items():
            self.add(name, dataset)

    @classmethod
    def from_config(
        cls,
        catalog: Mapping[str, Any] | None,
        credentials: Mapping[str, Any] | None = None,
        load_versions: Mapping[str, str] | None = None,
        save_version: str | None = None,
        overwrite_save_version: bool = False,
    ) -> DataCatalog:
        """Build a catalog from the merged ``catalog.yml`` mapping.

        A ``credentials: <key>`` anywhere in an entry (``fs_args:
        {client_kwargs: {credentials: key}}`` too) names a top-level key of
        ``credentials``; keys starting with ``_`` only hold YAML anchors.
        ``save_version`` (a new timestamp by default) is shared by every
        versioned dataset; ``load_versions`` pins the version a dataset loads.
        ``overwrite_save_version`` lets saves replace files already saved
        under ``save_version``, for a run that repeats work it owns.
        Entries are checked now and constructed when first used.
        """
        self = cls()
        self._credentials = credentials or {}
        self._load_versions = dict(load_versions or {})
        self._save_version = save_version or new_version()
        self._overwrite_save_version = overwrite_save_version
        factories: list[_Factory] = []
        for key, config in (catalog or {}).items():
            name = str(key)
            if name.startswith("_"):
                continue
            if "{" in name or "}" in name:
                factory = _Factory(name, config)
                type_ = config.get("type")
                if isinstance(type_, str) and "{" not in type_:
                    check_type_name(name, type_)
                factories.append(factory)
            else:
                entry = self._with_credentials(name, config)
                check_entry(name, entry, self._load_versions.get(name))
                self._entries[name] = entry
        self._factories = tuple(sorted(factories, key=lambda f: f.sort_key))
        for name, version in self._load_versions.items():
            if name not in self:
                hint = did_you_mean(name, self.list()) or " Check the dataset name."
                raise DatasetError(
                    f"Load version {version!r} was given for dataset {name!r}, which is "
                    f"not in the catalog.{hint}"
                )
        return self

    @property
    def load_versions(self) -> Mapping[str, str]:
        """The version each pinned dataset loads; others load their latest."""
        return dict(self._load_versions)

    @property
    def save_version(self) -> str | None:
        """The version every versioned dataset of this catalog saves under."""
        return self._save_version

    def load(self, name: str) -> Any:
        """Return the data of dataset ``name``."""
        dataset = self._get(name)
        if dataset is None:
            hint = did_you_mean(name, self.list())
            raise DatasetNotFoundError(
                f"Dataset {name!r} is not in the catalog and nothing has saved it"
                + ("." + hint if hint else "; declare it in conf/<env>/catalog.yml.")
            )
        return dataset.load()

    def save(self, name: str, data: Any) -> None:
        """Save ``data`` to ``name``, creating a MemoryDataset for an undeclared name."""
        dataset = self._get(name)
        if dataset is None:
            base = name.partition(_TRANSCODING)[0] or name
            with self._lock:
                dataset = self._datasets.get(base)
                if dataset is None:
                    dataset = self._datasets[base] = MemoryDataset()
                    dataset.name = base
        dataset.save(data)

    def exists(self, name: str) -> bool:
        """Tell whether ``name`` has data to load; false for unknown names."""
        dataset = self._get(name)
        return dataset is not None and dataset.exists()

    def can_load(self, name: str) -> bool:
        """Tell whether ``name`` has a source: declared, factory-matched or saved to.

        Nothing is constructed and ``exists()`` is not asked (tables and APIs
        have no cheap check), except that a memory dataset must hold data.
        """
        if self._resolve(name) is None:
            return False
        return not self.is_memory(name) or self.exists(name)

    def confirm(self, name: str) -> None:
        """Record that ``name``'s last load was processed (an IncrementalDataset's checkpoint)."""
        dataset = self._get(name)
        confirm = getattr(dataset, "confirm", None)
        if not callable(confirm):
            raise DatasetError(
                f"Dataset {name!r} has no checkpoint to confirm; only datasets such as "
                "partitions.IncrementalDataset can be confirmed."
            )
        confirm()

    def release(self, name: str) -> None:
        """Free what ``name`` holds in memory; nothing happens for unknown names.

        A transcoded name (``table@pandas`` standing for ``table``) frees
        nothing: another view of the same data may still have readers.
        """
        if name not in self._datasets and self._resolve(name) != name:
            return
        dataset = self._get(name)
        if dataset is not None:
            dataset.release()

    def get(self, name: str) -> AbstractDataset | None:
        """Return the dataset called ``name``, constructing it on first use."""
        return self._get(name)

    def add(self, name: str, dataset: AbstractDataset, replace: bool = False) -> None:
        """Register ``dataset`` as ``name``; an existing name needs ``replace=True``."""
        if not replace and (name in self._datasets or name in self._entries):
            raise DatasetError(
                f"Dataset {name!r} is already in the catalog; pass replace=True to replace it."
            )
        dataset.name = name
        self._entries.pop(name, None)
        self._datasets[name] = dataset

    def add_parameters(self, params: Mapping[str, Any]) -> None:
        """Add ``parameters`` and ``params:<key>`` for every key, nested ones dotted."""
        self.add("parameters", MemoryDataset(params), replace=True)
        self._add_parameters("params:", params)

    def _add_parameters(self, prefix: str, params: Mapping[str, Any]) -> None:
        for key, value in params.items():
            name = f"{prefix}{key}"
            self.add(name, MemoryDataset(value), replace=True)
            if isinstance(value, Mapping):
                self._add_parameters(f"{name}.", value)

    def is_memory(self, name: str) -> bool:
        """Tell whether ``name`` lives in memory: a MemoryDataset or an undeclared name.

        A declared dataset not constructed yet stays so: its class is enough.
        """
        entry = self._entry(name)
        if entry is not None:
            return issubclass(resolve_dataset_type(name, entry["type"]), MemoryDataset)
        dataset = self._get(name)
        return dataset is None or isinstance(dataset, MemoryDataset)

    def type_of(self, name: str) -> str | None:
        """Return the type of dataset ``name`` as its entry says, without constructing it.

        ``None`` for a name that is neither declared nor matched by a factory.
        """
        entry = self._entry(name)
        if entry is not None:
            type_ = entry["type"]
            return type_ if isinstance(type_, str) else type_.__qualname__
        dataset = self._get(name)
        return None if dataset is None else type(dataset).__name__

    def metadata(self, name: str) -> Mapping[str, Any]:
        """Return the ``metadata:`` of dataset ``name``'s entry, for tools; ``{}`` if none."""
        entry = self._entry(name)
        if entry is not None:
            found = entry.get("metadata")
        else:
            dataset = self._get(name)
            found = None if dataset is None else dataset.metadata
        return dict(found or {})

    def shallow_copy(self) -> DataCatalog:
        """Return a catalog for another run that shares this one's datasets.

        Memory datasets are duplicated (their data is shared, not copied) so
        that what one run saves or releases does not reach the other.
        """
        copy = DataCatalog()
        copy._datasets = {
            name: dataset._duplicate() if isinstance(dataset, MemoryDataset) else dataset
            for name, dataset in self._datasets.items()
        }
        copy._entries = dict(self._entries)
        copy._factories = self._factories
        copy._matches = dict(self._matches)
        copy._credentials = self._credentials
        copy._load_versions = dict(self._load_versions)
        copy._save_version = self._save_version
        copy._overwrite_save_version = self._overwrite_save_version
        return copy

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self._resolve(name) is not None

    def __repr__(self) -> str:
        declared = len(self._datasets) + len(self._entries)
        return f"DataCatalog({declared} datasets, {len(self._factories)} factories)"

    def list(self, regex: str | None = None) -> builtins.list[str]:
        """Return the sorted names of the datasets held, those matching ``regex`` if given.

        Declared datasets are listed whether constructed yet or not; factory
        patterns are not listed, names they matched so far are.
        """
        names = sorted({*self._datasets, *self._entries})
        if regex is None:
            return names
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise DatasetError(
                f"Cannot list datasets: {regex!r} is not a valid regular expression ({exc})."
            ) from exc
        return [name for name in names if pattern.search(name)]

    def _resolve(self, name: str) -> str | None:
        """Return the name ``name`` is held under, declared or factory-matched, or None."""
        if name in self._datasets or name in self._entries or self._match(name) is not None:
            return name
        base, _, suffix = name.partition(_TRANSCODING)
        if (
            suffix
            and base
            and (base in self._datasets or base in self._entries or self._match(base) is not None)
        ):
            return base
        return None

    def _entry(self, name: str) -> Mapping[str, Any] | None:
        """The entry of ``name`` if it is declared or factory-matched but not constructed."""
        held = self._resolve(name)
        if held is None or held in self._datasets:
            return None
        entry = self._entries.get(held)
        if entry is not None:
            return entry
        match = self._match(held)
        if match is None:
            return None
        factory, captures = match
        resolved: Mapping[str, Any] = checked_entry(held, factory.resolve(captures))
        return resolved

    def _get(self, name: str) -> AbstractDataset | None:
        dataset = self._datasets.get(name)
        if dataset is not None:
            return dataset
        held = self._resolve(name)
        if held is None:
            return None
        with self._lock:
            dataset = self._datasets.get(held)
            if dataset is None:
                config = self._entries.get(held)
                if config is None:
                    match = self._match(held)
                    if match is None:
                        return None
                    factory, captures = match
                    config = self._with_credentials(held, factory.resolve(captures))
                dataset = self._datasets[held] = self._build(held, config)
                self._entries.pop(held, None)
        return dataset

    def _match(self, name: str) -> _Match:
        if not self._factories:
            return None
        try:
            return self._matches[name]
        except KeyError:
            pass
        found: _Match = None
        for factory in self._factories:
            match = factory.regex.fullmatch(name)
            if match is not None:
                found = (factory, match.groupdict())
                break
        self._matches[name] = found
        return found

    def _build(self, name: str, config: Any) -> AbstractDataset:
        """Construct ``name`` from its entry, whose credentials are already resolved."""
        return dataset_from_config(
            name,
            config,
            load_version=self._load_versions.get(name),
            save_version=self._save_version,
            overwrite_save_version=self._overwrite_save_version,
        )

    def _with_credentials(self, name: str, value: Any) -> Any:
        """Replace every ``credentials: <key>`` in ``value``, at any depth, by its mapping."""
        if isinstance(value, Mapping):
            return {
                key: self._credentials_for(name, item)
                if key == "credentials" and isinstance(item, str)
                else self._with_credentials(name, item)
                for key, item in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self._with_credentials(name, item) for item in value]
        return value

    def _credentials_for(self, name: str, key: str) -> Mapping[str, Any]:
        if key not in self._credentials:
            hint = did_you_mean(key, self._credentials)
            raise DatasetError(
                f"Dataset {name!r} uses credentials {key!r}, which are not defined; "
                f"add a {key!r} entry to {_CREDENTIALS_FILE}.{hint}"
            )
        value = self._credentials[key]
        if not isinstance(value, Mapping):
            raise DatasetError(
                f"Credentials {key!r} used by dataset {name!r} must be a mapping of options, "
                f"not {type(value).__name__}; fix the entry in {_CREDENTIALS_FILE}."
            )
        return value
