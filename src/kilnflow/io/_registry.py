"""How a catalog entry becomes a dataset: type names, arguments, foreign classes.

Type names are checked without importing anything (``pandas.X`` never
imports pandas), so a typo in a catalog is reported when the catalog is
built; classes are imported, and datasets constructed, only when a run
first needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from kilnflow.errors import DatasetError, VersionNotFoundError, did_you_mean

from ._core import AbstractDataset, Version, _reason
from ._file import (
    absolute,
    is_local,
    new_version,
    storage_options,
    versioned_load_path,
    versioned_save_path,
)

__all__ = [
    "BUILTIN_TYPES",
    "Subject",
    "check_entry",
    "check_type_name",
    "checked_entry",
    "dataset_from_config",
    "resolve_dataset_type",
    "takes",
]

_PLAIN = "kilnflow.io._datasets"

#: What users write as ``type:`` for Kilnflow's own datasets, and where each lives.
#: The names are those Kedro users already write, so a ported catalog keeps them.
BUILTIN_TYPES: Mapping[str, str] = {
    "MemoryDataset": f"{_PLAIN}:MemoryDataset",
    "PickleDataset": f"{_PLAIN}:PickleDataset",
    "JSONDataset": f"{_PLAIN}:JSONDataset",
    "YAMLDataset": f"{_PLAIN}:YAMLDataset",
    "TextDataset": f"{_PLAIN}:TextDataset",
    "pickle.PickleDataset": f"{_PLAIN}:PickleDataset",
    "json.JSONDataset": f"{_PLAIN}:JSONDataset",
    "yaml.YAMLDataset": f"{_PLAIN}:YAMLDataset",
    "text.TextDataset": f"{_PLAIN}:TextDataset",
    **{
        f"pandas.{name}": f"kilnflow.io.pandas:{name}"
        for name in (
            "CSVDataset",
            "ExcelDataset",
            "FeatherDataset",
            "JSONDataset",
            "ParquetDataset",
            "SQLQueryDataset",
            "SQLTableDataset",
        )
    },
    **{
        f"polars.{name}": f"kilnflow.io.polars:{name}"
        for name in ("CSVDataset", "EagerPolarsDataset", "LazyPolarsDataset", "ParquetDataset")
    },
    "partitions.PartitionedDataset": "kilnflow.io.partitions:PartitionedDataset",
    "partitions.IncrementalDataset": "kilnflow.io.partitions:IncrementalDataset",
    "matplotlib.MatplotlibDataset": "kilnflow.io.matplotlib:MatplotlibDataset",
    "matplotlib.MatplotlibWriter": "kilnflow.io.matplotlib:MatplotlibDataset",
    "plotly.HTMLDataset": "kilnflow.io.plotly:HTMLDataset",
    "plotly.JSONDataset": "kilnflow.io.plotly:JSONDataset",
    "plotly.PlotlyDataset": "kilnflow.io.plotly:PlotlyDataset",
    "api.APIDataset": "kilnflow.io.api:APIDataset",
}

#: ``family.Name`` prefixes that are Kilnflow's own: anything else under them is a typo.
_OWN_FAMILIES = frozenset(name.partition(".")[0] for name in BUILTIN_TYPES if "." in name)

#: Library families whose datasets Kilnflow does not build in.
_FOREIGN_FAMILIES = frozenset(
    {
        "biosequence",
        "dask",
        "databricks",
        "email",
        "geopandas",
        "holoviews",
        "huggingface",
        "ibis",
        "langchain",
        "netcdf",
        "networkx",
        "optuna",
        "pillow",
        "redis",
        "snowflake",
        "spark",
        "svmlight",
        "tensorflow",
        "tracking",
        "video",
    }
)

#: Datasets of Kilnflow's own families that the libraries have and Kilnflow does not.
_NOT_BUILT_IN = frozenset(
    {
        "pandas.DeltaTableDataset",
        "pandas.GBQQueryDataset",
        "pandas.GBQTableDataset",
        "pandas.GenericDataset",
        "pandas.HDFDataset",
        "pandas.XMLDataset",
        "polars.GenericDataset",
    }
)


class Subject(str):
    """What a message names instead of ``Dataset '<name>'``, such as a dataset's own key."""


def _who(name: str) -> str:
    return name if isinstance(name, Subject) else f"Dataset {name!r}"


def check_type_name(name: str, type_: Any) -> None:
    """Reject a ``type:`` that cannot name a dataset, without importing anything.

    Built-in names and classes pass; a dotted path to another module is
    imported only when the dataset is built.
    """
    if isinstance(type_, type) or type_ in BUILTIN_TYPES:
        return
    if not isinstance(type_, str):
        raise DatasetError(
            f"{_who(name)}: 'type' must be a string such as 'pandas.CSVDataset', "
            f"not {type(type_).__name__}."
        )
    module, _, attribute = type_.rpartition(".")
    if not module:
        raise _unknown_type(name, type_)
    if "." in module:
        return
    if type_ in _NOT_BUILT_IN or module in _FOREIGN_FAMILIES:
        raise DatasetError(
            f"{_who(name)}: type {type_!r} is a library dataset that is not built in; "
            "use a dotted class path to it (for example "
            f"'kedro_datasets.{module}.{attribute}' with that package installed) "
            "or write your own dataset class."
        )
    if module in _OWN_FAMILIES:
        raise _unknown_type(name, type_)


def resolve_dataset_type(name: str, type_: Any) -> type[Any]:
    """Return the class that ``type_`` names for dataset ``name``, importing its module."""
    check_type_name(name, type_)
    if isinstance(type_, type):
        cls: type[Any] = type_
    else:
        target = BUILTIN_TYPES.get(type_)
        if target is not None:
            module, _, attribute = target.partition(":")
        else:
            module, _, attribute = type_.rpartition(".")
        cls = _import_class(name, type_, module, attribute)
    if issubclass(cls, AbstractDataset):
        return cls
    if callable(getattr(cls, "load", None)) and callable(getattr(cls, "save", None)):
        return cls
    raise DatasetError(
        f"{_who(name)}: type '{cls.__module__}.{cls.__qualname__}' is not a dataset; "
        "subclass kilnflow.io.AbstractDataset or give the class load() and save() methods."
    )


def _import_class(name: str, type_: str, module: str, attribute: str) -> type[Any]:
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise _unknown_type(name, type_) from exc
        raise DatasetError(
            f"{_who(name)}: importing module {module!r} for type {type_!r} failed: "
            f"{_reason(exc)}; install what that module needs."
        ) from exc
    except Exception as exc:
        raise DatasetError(
            f"{_who(name)}: importing module {module!r} for type {type_!r} failed: "
            f"{_reason(exc)}; fix that module."
        ) from exc
    cls = getattr(imported, attribute, None)
    if cls is None:
        raise _unknown_type(name, type_)
    if not isinstance(cls, type):
        raise DatasetError(
            f"{_who(name)}: type {type_!r} is a {type(cls).__name__}, not a class; "
            "point 'type' at a dataset class."
        )
    return cls


def _unknown_type(name: str, type_: str) -> DatasetError:
    hint = did_you_mean(type_, BUILTIN_TYPES, limit=1) or (
        " Use a type from the datasets table in README or the dotted path of a dataset class."
    )
    return DatasetError(f"{_who(name)}: unknown type {type_!r}.{hint}")


def dataset_from_config(
    name: str,
    config: Mapping[str, Any],
    *,
    load_version: str | None = None,
    save_version: str | None = None,
    overwrite_save_version: bool = False,
) -> AbstractDataset:
    """Build the dataset a catalog entry describes and name it ``name``.

    ``config["type"]`` is a built-in type name, the dotted path of a class, or
    a class; ``metadata`` is kept on the dataset, never passed to the class;
    the other keys are its constructor arguments. ``save_version`` applies
    only when the entry says ``versioned: true`` (a catalog passes one
    version to all its datasets); ``load_version`` is an error otherwise.
    A class that does not subclass :class:`AbstractDataset` but has ``load``
    and ``save`` methods is wrapped so that it behaves like one, versions
    included: it gets a ``version`` argument if it takes one, else the
    ``filepath`` of the version each load or save uses.
    ``overwrite_save_version`` reaches the classes that take it (Kilnflow's
    file datasets) and versioned foreign classes.
    """
    plan = _Plan(name, config, load_version, save_version, overwrite_save_version)
    dataset: AbstractDataset
    if issubclass(plan.cls, AbstractDataset):
        dataset = plan.construct()
    elif plan.versioned and "version" not in plan.accepted:
        plan.check_arguments()
        dataset = _VersionedForeignDataset(
            plan.cls, plan.kwargs, load_version, save_version, overwrite=overwrite_save_version
        )
    else:
        dataset = _ForeignDataset(plan.construct())
    dataset.name = name
    dataset.metadata = plan.metadata
    return dataset


def check_entry(name: str, config: Any, load_version: str | None) -> None:
    """Check a catalog entry as far as possible without importing or constructing anything.

    Shape, type name, versions and, for Kilnflow's own types, the arguments:
    mistakes there are reported when the catalog is built. Classes named by
    a dotted path are imported, and every dataset constructed, on first use.
    """
    type_ = checked_entry(name, config).get("type")
    check_type_name(name, type_)
    if isinstance(type_, type) or type_ in BUILTIN_TYPES:
        plan = _Plan(name, config, load_version, None)
        if issubclass(plan.cls, AbstractDataset):
            plan.check_arguments()


class _Plan:
    """What constructing the dataset of one catalog entry takes: class and arguments."""

    def __init__(
        self,
        name: str,
        config: Mapping[str, Any],
        load_version: str | None,
        save_version: str | None,
        overwrite_save_version: bool = False,
    ) -> None:
        kwargs = dict(checked_entry(name, config))
        type_ = kwargs.pop("type")
        self.name = name
        self.metadata: Mapping[str, Any] | None = kwargs.pop("metadata", None)
        self.cls = resolve_dataset_type(name, type_)
        self.label = type_ if isinstance(type_, str) else self.cls.__qualname__
        self.versioned = bool(kwargs.get("versioned"))
        if load_version is not None and not self.versioned:
            raise DatasetError(
                f"Load version {load_version!r} was given for dataset {name!r}, which is not "
                "versioned; set `versioned: true` on it in the catalog or drop the load version."
            )
        self.accepted = _signature(self.cls)[0]
        if issubclass(self.cls, AbstractDataset):
            if self.versioned:
                kwargs.update(_given(load_version=load_version, save_version=save_version))
                if overwrite_save_version and "overwrite_save_version" in self.accepted:
                    kwargs["overwrite_save_version"] = True
        else:
            kwargs.pop("versioned", None)
            if self.versioned and "version" in self.accepted:
                kwargs["version"] = Version(load_version, save_version)
            elif self.versioned and "filepath" not in self.accepted:
                raise DatasetError(
                    f"Dataset {name!r}: type {self.label!r} cannot be versioned: it takes "
                    "neither a 'filepath' nor a 'version' argument; drop `versioned: true`."
                )
        self.kwargs = kwargs

    def check_arguments(self) -> None:
        _check_arguments(self.name, self.label, self.cls, self.kwargs)

    def construct(self) -> Any:
        self.check_arguments()
        try:
            return self.cls(**self.kwargs)
        except Exception as exc:
            raise DatasetError(
                f"Dataset {self.name!r}: could not create a {self.label}: {_reason(exc)}"
            ) from exc


def checked_entry(name: str, config: Any) -> Mapping[str, Any]:
    """Return the catalog entry ``config`` of ``name`` once its shape is right."""
    if not isinstance(config, Mapping):
        raise DatasetError(
            f"Dataset {name!r}: its catalog entry must be a mapping with a 'type' key, "
            f"not {type(config).__name__}."
        )
    if config.get("type") is None:
        raise DatasetError(
            f"Dataset {name!r} has no 'type'; add one to its catalog entry, "
            "for example `type: pandas.CSVDataset`."
        )
    metadata = config.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise DatasetError(
            f"Dataset {name!r}: 'metadata' must be a mapping (it is kept for tools), "
            f"not {type(metadata).__name__}."
        )
    return config


def _given(**values: str | None) -> dict[str, str]:
    return {key: value for key, value in values.items() if value is not None}


class _ForeignDataset(AbstractDataset):
    """Adapts a class that has ``load`` and ``save`` but not this interface.

    This lets a catalog use datasets written for other frameworks (a Kedro
    dataset, say) unchanged. Without an ``exists`` method the dataset counts as
    existing, so a missing input surfaces as a load error naming it.
    """

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def _load(self) -> Any:
        return self._wrapped.load()

    def _save(self, data: Any) -> None:
        self._wrapped.save(data)

    def _exists(self) -> bool:
        exists = getattr(self._wrapped, "exists", None)
        return bool(exists()) if callable(exists) else True

    def _release(self) -> None:
        release = getattr(self._wrapped, "release", None)
        if callable(release):
            release()

    def _describe(self) -> dict[str, Any]:
        cls = type(self._wrapped)
        return {"wraps": f"{cls.__module__}.{cls.__qualname__}"}


class _VersionedForeignDataset(AbstractDataset):
    """Versions a foreign class that takes a ``filepath``, by choosing that path.

    Each save constructs the class on ``<filepath>/<save_version>/<basename>``
    and each load on the version chosen as for Kilnflow's own file datasets;
    ``credentials`` and ``fs_args`` arguments, when given, also reach the
    file system used to find versions.
    """

    def __init__(
        self,
        cls: type[Any],
        kwargs: Mapping[str, Any],
        load_version: str | None,
        save_version: str | None,
        *,
        overwrite: bool = False,
    ) -> None:
        self._cls = cls
        self._kwargs = dict(kwargs)
        self._filepath = str(kwargs["filepath"])
        self._load_version = load_version
        self._save_version = save_version
        self._overwrite = overwrite
        self._fs_path: tuple[Any, str] | None = None

    def _load(self) -> Any:
        fs, path = self._filesystem()
        target = versioned_load_path(
            fs, path, self._load_version, self._save_version, self._label()
        )
        return self._at(fs, target).load()

    def _save(self, data: Any) -> None:
        fs, path = self._filesystem()
        if self._save_version is None:
            self._save_version = new_version()
        target = versioned_save_path(
            fs, path, self._save_version, self._label(), overwrite=self._overwrite
        )
        self._at(fs, target).save(data)

    def _exists(self) -> bool:
        fs, path = self._filesystem()
        try:
            target = versioned_load_path(
                fs, path, self._load_version, self._save_version, self._label()
            )
        except VersionNotFoundError:
            return False
        exists = getattr(self._at(fs, target), "exists", None)
        return bool(exists()) if callable(exists) else bool(fs.exists(target))

    def _describe(self) -> dict[str, Any]:
        return {
            "wraps": f"{self._cls.__module__}.{self._cls.__qualname__}",
            "filepath": self._filepath,
            "versioned": True,
            "load_version": self._load_version,
            "save_version": self._save_version,
        }

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs_path is None:
            from fsspec.core import url_to_fs

            options = storage_options(
                f"{self._cls.__qualname__} for {self._filepath!r}",
                _mapping_or_none(self._kwargs.get("credentials")),
                _mapping_or_none(self._kwargs.get("fs_args")),
            )
            self._fs_path = url_to_fs(absolute(self._filepath), **options)
        return self._fs_path

    def _at(self, fs: Any, path: str) -> Any:
        location = path if is_local(fs) else fs.unstrip_protocol(path)
        return self._cls(**{**self._kwargs, "filepath": location})


def _mapping_or_none(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def takes(cls: type[Any], argument: str) -> bool:
    """Tell whether constructing ``cls`` accepts the keyword ``argument``."""
    accepted, _, open_ended = _signature(cls)
    return open_ended or argument in accepted


_Signature = tuple[frozenset[str], tuple[str, ...], bool]
_SIGNATURES: dict[type[Any], _Signature] = {}


def _signature(cls: type[Any]) -> _Signature:
    """Return (accepted keywords, required keywords, takes **kwargs) of ``cls``, cached."""
    cached = _SIGNATURES.get(cls)
    if cached is not None:
        return cached
    import inspect

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), (), True
    keywords = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    result = _SIGNATURES[cls] = (
        frozenset(p.name for p in keywords),
        tuple(p.name for p in keywords if p.default is p.empty),
        any(p.kind is p.VAR_KEYWORD for p in parameters),
    )
    return result


def _check_arguments(name: str, label: str, cls: type[Any], kwargs: Mapping[str, Any]) -> None:
    accepted, required, open_ended = _signature(cls)
    if not open_ended:
        for argument in kwargs:
            if argument not in accepted:
                hint = did_you_mean(argument, accepted) or (
                    f" Valid arguments: {', '.join(sorted(accepted)) or 'none'}."
                )
                raise DatasetError(
                    f"Dataset {name!r}: type {label!r} has no argument {argument!r}.{hint}"
                )
    for argument in required:
        if argument not in kwargs:
            raise DatasetError(
                f"Dataset {name!r}: type {label!r} needs argument {argument!r}; "
                "add it to the catalog entry."
            )
