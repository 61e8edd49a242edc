"""Tabular datasets backed by pandas: ``type: pandas.CSVDataset`` in a catalog.

pandas is imported only when data is read or written, so this module imports
without pandas installed and a catalog naming these types builds quickly;
creating one of them without pandas says which extra to install.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any, BinaryIO

from kilnflow.errors import DatasetError

from ._file import FileDataset

__all__ = ["CSVDataset", "ParquetDataset"]

_INSTALL = 'pip install "kilnflow[pandas]"'
_FOUND: set[str] = set()


def _installed(module: str) -> bool:
    """Tell whether ``module`` can be imported, without importing it."""
    if module not in _FOUND and importlib.util.find_spec(module) is not None:
        _FOUND.add(module)
    return module in _FOUND


class _PandasDataset(FileDataset):
    #: Modules to install; each inner tuple is satisfied by any one of its modules.
    _requires: tuple[tuple[str, ...], ...] = (("pandas",),)

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        *,
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
        for alternatives in self._requires:
            if not any(_installed(module) for module in alternatives):
                raise DatasetError(
                    f"pandas.{type(self).__name__} for {self._filepath!r} needs "
                    f"{' or '.join(alternatives)}, which is not installed; install it with "
                    f"{_INSTALL}."
                )


class CSVDataset(_PandasDataset):
    """A DataFrame as CSV; ``load_args``/``save_args`` go to ``read_csv``/``to_csv``.

    The index is not written unless ``save_args`` say ``index: true``.
    """

    default_save_args = {"index": False}

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_csv(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.to_csv(file, **self._save_args)


class ParquetDataset(_PandasDataset):
    """A DataFrame as Parquet; ``load_args``/``save_args`` go to ``read_parquet``/``to_parquet``."""

    _requires = (("pandas",), ("pyarrow", "fastparquet"))

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_parquet(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.to_parquet(file, **self._save_args)


def __dir__() -> list[str]:
    return __all__
