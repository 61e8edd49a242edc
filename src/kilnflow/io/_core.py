"""The dataset interface, and how a catalog entry becomes a dataset.

A dataset is four small hooks (``_load``, ``_save``, ``_exists``,
``_describe``); the public methods around them are where every dataset gets
the same error handling, so a failure always names the dataset at fault.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from typing import Any

from kilnflow.errors import DatasetError, did_you_mean

__all__ = ["AbstractDataset", "dataset_from_config", "resolve_dataset_type"]

#: What users write as ``type:`` for Kilnflow's own datasets, and where each lives.
BUILTIN_TYPES: Mapping[str, str] = {
    "MemoryDataset": "kilnflow.io._datasets:MemoryDataset",
    "PickleDataset": "kilnflow.io._datasets:PickleDataset",
    "JSONDataset": "kilnflow.io._datasets:JSONDataset",
    "YAMLDataset": "kilnflow.io._datasets:YAMLDataset",
    "TextDataset": "kilnflow.io._datasets:TextDataset",
    "pandas.CSVDataset": "kilnflow.io.pandas:CSVDataset",
    "pandas.ParquetDataset": "kilnflow.io.pandas:ParquetDataset",
}


class AbstractDataset(abc.ABC):
    """Loads and saves one piece of data.

    Subclasses implement ``_load``, ``_save``, ``_exists`` and ``_describe``
    (and ``_release`` when they hold data in memory). The public methods turn
    any other exception into a :class:`~kilnflow.errors.DatasetError` that
    names the dataset and chains the original; a ``DatasetError`` raised by a
    hook passes through unchanged, so hooks should name the dataset with
    ``self._label()``.
    """

    #: Name used in messages; the catalog sets it, so subclasses must not use
    #: ``name`` for anything else.
    name: str | None = None

    def load(self) -> Any:
        """Return the data."""
        try:
            return self._load()
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"Could not load {self._label()}: {_reason(exc)}") from exc

    def save(self, data: Any) -> None:
        """Store ``data``, replacing what the dataset held before."""
        try:
            self._save(data)
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"Could not save {self._label()}: {_reason(exc)}") from exc

    def exists(self) -> bool:
        """Tell whether a ``load`` would find data."""
        try:
            return self._exists()
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(
                f"Could not check whether {self._label()} exists: {_reason(exc)}"
            ) from exc

    def release(self) -> None:
        """Free what the dataset holds in memory; the runner calls it after last use."""
        try:
            self._release()
        except DatasetError:
            raise
        except Exception as exc:
            raise DatasetError(f"Could not release {self._label()}: {_reason(exc)}") from exc

    def describe(self) -> dict[str, Any]:
        """Return what identifies the dataset in logs and messages, never credentials."""
        return dict(self._describe())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if v is not None)
        return f"{type(self).__name__}({fields})"

    def _label(self) -> str:
        """Name the dataset in messages: ``dataset 'cars' (CSVDataset(...))``."""
        if self.name is None:
            return f"dataset {self!r}"
        return f"dataset {self.name!r} ({self!r})"

    @abc.abstractmethod
    def _load(self) -> Any: ...

    @abc.abstractmethod
    def _save(self, data: Any) -> None: ...

    @abc.abstractmethod
    def _exists(self) -> bool: ...

    @abc.abstractmethod
    def _describe(self) -> dict[str, Any]: ...

    def _release(self) -> None:
        return None


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


def dataset_from_config(
    name: str,
    config: Mapping[str, Any],
    *,
    load_version: str | None = None,
    save_version: str | None = None,
) -> AbstractDataset:
    """Build the dataset a catalog entry describes and name it ``name``.

    ``config["type"]`` is a built-in type name, the dotted path of a class, or
    a class; the other keys are its constructor arguments. ``save_version``
    applies only when the entry says ``versioned: true`` (a catalog passes one
    version to all its datasets); ``load_version`` is an error otherwise.
    A class that does not subclass :class:`AbstractDataset` but has ``load``
    and ``save`` methods is wrapped so that it behaves like one.
    """
    if not isinstance(config, Mapping):
        raise DatasetError(
            f"Dataset {name!r}: its catalog entry must be a mapping with a 'type' key, "
            f"not {type(config).__name__}."
        )
    kwargs = dict(config)
    type_ = kwargs.pop("type", None)
    if type_ is None:
        raise DatasetError(
            f"Dataset {name!r} has no 'type'; add one to its catalog entry, "
            "for example `type: pandas.CSVDataset`."
        )
    cls = resolve_dataset_type(name, type_)
    label = type_ if isinstance(type_, str) else cls.__qualname__
    if kwargs.get("versioned"):
        if load_version is not None:
            kwargs["load_version"] = load_version
        if save_version is not None:
            kwargs["save_version"] = save_version
    elif load_version is not None:
        raise DatasetError(
            f"Load version {load_version!r} was given for dataset {name!r}, which is not "
            "versioned; set `versioned: true` on it in the catalog or drop the load version."
        )
    _check_arguments(name, label, cls, kwargs)
    try:
        instance = cls(**kwargs)
    except Exception as exc:
        raise DatasetError(f"Dataset {name!r}: could not create a {label}: {_reason(exc)}") from exc
    dataset = instance if isinstance(instance, AbstractDataset) else _ForeignDataset(instance)
    dataset.name = name
    return dataset


def resolve_dataset_type(name: str, type_: Any) -> type[Any]:
    """Return the class that ``type_`` names for dataset ``name``.

    ``pandas.X`` always means ``kilnflow.io.pandas.X``, never the pandas
    library, so a typo there is reported without importing pandas.
    """
    if isinstance(type_, type):
        cls: type[Any] = type_
    elif isinstance(type_, str):
        target = BUILTIN_TYPES.get(type_)
        if target is not None:
            module, _, attribute = target.partition(":")
        else:
            module, _, attribute = type_.rpartition(".")
            if module == "pandas":
                module = "kilnflow.io.pandas"
        cls = _import_class(name, type_, module, attribute)
    else:
        raise DatasetError(
            f"Dataset {name!r}: 'type' must be a string such as 'pandas.CSVDataset', "
            f"not {type(type_).__name__}."
        )
    if issubclass(cls, AbstractDataset):
        return cls
    if callable(getattr(cls, "load", None)) and callable(getattr(cls, "save", None)):
        return cls
    raise DatasetError(
        f"Dataset {name!r}: type '{cls.__module__}.{cls.__qualname__}' is not a dataset; "
        "subclass kilnflow.io.AbstractDataset or give the class load() and save() methods."
    )


def _import_class(name: str, type_: str, module: str, attribute: str) -> type[Any]:
    if not module:
        raise _unknown_type(name, type_)
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise _unknown_type(name, type_) from exc
        raise DatasetError(
            f"Dataset {name!r}: importing module {module!r} for type {type_!r} failed: "
            f"{_reason(exc)}; install what that module needs."
        ) from exc
    except Exception as exc:
        raise DatasetError(
            f"Dataset {name!r}: importing module {module!r} for type {type_!r} failed: "
            f"{_reason(exc)}; fix that module."
        ) from exc
    cls = getattr(imported, attribute, None)
    if cls is None:
        raise _unknown_type(name, type_)
    if not isinstance(cls, type):
        raise DatasetError(
            f"Dataset {name!r}: type {type_!r} is a {type(cls).__name__}, not a class; "
            "point 'type' at a dataset class."
        )
    return cls


def _unknown_type(name: str, type_: str) -> DatasetError:
    hint = did_you_mean(type_, BUILTIN_TYPES, limit=1) or (
        f" Use one of {', '.join(sorted(BUILTIN_TYPES))} or the dotted path of a dataset class."
    )
    return DatasetError(f"Dataset {name!r}: unknown type {type_!r}.{hint}")


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


def _reason(exc: BaseException) -> str:
    """Render a cause for a message; our own errors already read as sentences."""
    text = str(exc)
    if isinstance(exc, DatasetError) or not text:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
