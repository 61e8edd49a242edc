"""Kilnflow's built-in datasets for plain Python data."""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Mapping
from typing import Any, BinaryIO

from kilnflow.errors import DatasetError, did_you_mean

from ._core import AbstractDataset, _reason, require
from ._file import FileDataset, text_io

__all__ = ["JSONDataset", "MemoryDataset", "PickleDataset", "TextDataset", "YAMLDataset"]

_EMPTY: Any = object()
_COPY_MODES = ("assign", "copy", "deepcopy")
#: Values that nobody can mutate, so sharing them is as safe as copying them.
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, frozenset, range)
#: Libraries whose objects copy themselves cheaply (``copy``) or are immutable
#: or not copyable at all (``assign``); anything else is deep-copied.
_LIBRARY_COPY_MODES = {
    "numpy": "copy",
    "pandas": "copy",
    "polars": "assign",
    "pyarrow": "assign",
    "pyspark": "assign",
}


class MemoryDataset(AbstractDataset):
    """Keeps data in memory, copied on save and on load so nodes cannot share state.

    ``copy_mode`` is ``"deepcopy"``, ``"copy"`` (``copy.copy``, a full copy
    for pandas and numpy objects) or ``"assign"`` (no copy). By default it is
    chosen from the data: ``assign`` for immutable builtins, polars, pyarrow
    and Spark objects; ``copy`` for pandas and numpy objects; ``deepcopy``
    for everything else.
    """

    def __init__(self, data: Any = _EMPTY, copy_mode: str | None = None) -> None:
        if copy_mode is not None and copy_mode not in _COPY_MODES:
            hint = did_you_mean(str(copy_mode), _COPY_MODES, or_list=True)
            raise DatasetError(f"MemoryDataset: unknown copy_mode {copy_mode!r}.{hint}")
        self._copy_mode = copy_mode
        self._data: Any = _EMPTY
        self._mode = "assign"
        if data is not _EMPTY:
            self._save(data)

    def _load(self) -> Any:
        if self._data is _EMPTY:
            raise DatasetError(
                f"Cannot load {self._label()}: it holds no data; save to it first, or check "
                "that the node that outputs it has run."
            )
        return self._copied(self._data, self._mode)

    def _save(self, data: Any) -> None:
        mode = self._copy_mode or _infer_copy_mode(data)
        self._data = self._copied(data, mode)
        self._mode = mode

    def _exists(self) -> bool:
        return self._data is not _EMPTY

    def _release(self) -> None:
        self._data = _EMPTY

    def _describe(self) -> dict[str, Any]:
        data = None if self._data is _EMPTY else type(self._data).__name__
        return {"data": data, "copy_mode": self._copy_mode}

    def _duplicate(self) -> MemoryDataset:
        """Return a dataset sharing this one's data but not its future saves."""
        twin = MemoryDataset(copy_mode=self._copy_mode)
        twin._data, twin._mode, twin.name = self._data, self._mode, self.name
        return twin

    def _copied(self, data: Any, mode: str) -> Any:
        if mode == "assign":
            return data
        try:
            return copy.deepcopy(data) if mode == "deepcopy" else copy.copy(data)
        except Exception as exc:
            raise DatasetError(
                f"Cannot {mode} the {type(data).__name__} in {self._label()}: {_reason(exc)}; "
                "declare it in the catalog with `type: MemoryDataset` and `copy_mode: assign`."
            ) from exc


def _infer_copy_mode(data: Any) -> str:
    if isinstance(data, _IMMUTABLE):
        return "assign"
    library = type(data).__module__.partition(".")[0]
    return _LIBRARY_COPY_MODES.get(library, "deepcopy")


#: Pickle backends: the module that reads and writes, and the extra that installs it.
_BACKENDS = {
    "pickle": ("pickle", None),
    "joblib": ("joblib", "pickle"),
    "cloudpickle": ("cloudpickle", "pickle"),
}


class PickleDataset(FileDataset):
    """Any picklable object, through ``backend`` pickle (default), joblib or cloudpickle.

    ``load_args``/``save_args`` go to the backend's ``load``/``dump``;
    joblib and cloudpickle come with ``pip install "kilnflow[pickle]"``.
    Loading a pickle runs code from the file: load only pickles you trust.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        *,
        backend: str = "pickle",
        load_args: Mapping[str, Any] | None = None,
        save_args: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        fs_args: Mapping[str, Any] | None = None,
        versioned: bool = False,
        load_version: str | None = None,
        save_version: str | None = None,
    ) -> None:
        super().__init__(
            filepath,
            load_args=load_args,
            save_args=save_args,
            credentials=credentials,
            fs_args=fs_args,
            versioned=versioned,
            load_version=load_version,
            save_version=save_version,
        )
        if backend not in _BACKENDS:
            hint = did_you_mean(str(backend), _BACKENDS, or_list=True)
            raise DatasetError(
                f"PickleDataset for {self._filepath!r}: unknown backend {backend!r}.{hint}"
            )
        module, extra = _BACKENDS[backend]
        if extra is not None:
            require(f"PickleDataset for {self._filepath!r} with backend {backend!r}", extra, module)
        self._backend = backend

    def _load_from(self, file: BinaryIO) -> Any:
        return importlib.import_module(self._backend).load(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        importlib.import_module(self._backend).dump(data, file, **self._save_args)

    def _describe(self) -> dict[str, Any]:
        info = super()._describe()
        if self._backend != "pickle":
            info["backend"] = self._backend
        return info


class JSONDataset(FileDataset):
    """JSON in UTF-8; ``load_args``/``save_args`` go to ``json.load``/``json.dump``."""

    default_save_args = {"indent": 2}

    def _load_from(self, file: BinaryIO) -> Any:
        import json

        with text_io(file) as text:
            return json.load(text, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        import json

        with text_io(file) as text:
            json.dump(data, text, **self._save_args)


class YAMLDataset(FileDataset):
    """YAML in UTF-8 through PyYAML's safe loader and dumper.

    ``save_args`` go to ``yaml.safe_dump``; keys keep their order by default.
    """

    default_save_args = {"default_flow_style": False, "sort_keys": False, "allow_unicode": True}

    def _load_from(self, file: BinaryIO) -> Any:
        import yaml

        with text_io(file) as text:
            return yaml.safe_load(text)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        import yaml

        with text_io(file) as text:
            yaml.safe_dump(data, text, **self._save_args)


class TextDataset(FileDataset):
    """One ``str``, stored as UTF-8 with line endings kept as they are."""

    def _load_from(self, file: BinaryIO) -> Any:
        with text_io(file) as text:
            return text.read()

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        if not isinstance(data, str):
            raise DatasetError(
                f"Cannot save {self._label()}: a TextDataset stores str, not "
                f"{type(data).__name__}; convert it in the node or use a PickleDataset."
            )
        with text_io(file) as text:
            text.write(data)
