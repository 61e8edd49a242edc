"""Datasets backed by polars: ``type: polars.CSVDataset`` and friends in a catalog.

polars is imported only when data is read or written; constructing one of
these without polars says to ``pip install "kilnflow[polars]"``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any, BinaryIO

from kilnflow.errors import DatasetError, did_you_mean

from ._file import FileDataset, PathDataset, is_local, type_label, write_file

__all__ = ["CSVDataset", "EagerPolarsDataset", "LazyPolarsDataset", "ParquetDataset"]


class _PolarsDataset(FileDataset):
    _extra = "polars"
    _requires = ("polars",)


class CSVDataset(_PolarsDataset):
    """A polars DataFrame as CSV; args go to ``polars.read_csv``/``DataFrame.write_csv``."""

    def _load_from(self, file: BinaryIO) -> Any:
        import polars as pl

        return pl.read_csv(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.write_csv(file, **self._save_args)


class ParquetDataset(_PolarsDataset):
    """A polars DataFrame as Parquet; args go to ``read_parquet``/``write_parquet``."""

    def _load_from(self, file: BinaryIO) -> Any:
        import polars as pl

        return pl.read_parquet(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.write_parquet(file, **self._save_args)


_FORMATS = ("csv", "ipc", "ndjson", "parquet")


class LazyPolarsDataset(PathDataset):
    """A polars LazyFrame: a load scans the file, so the query reads only what it needs.

    ``file_format`` is ``csv``, ``parquet``, ``ipc`` or ``ndjson``;
    ``load_args`` go to ``polars.scan_<format>``. A save takes a LazyFrame
    (collected) or a DataFrame; ``save_args`` go to ``write_<format>``.
    Local files are scanned in place; other file systems are read into
    memory first, since polars reads only some of fsspec's protocols.
    """

    _extra = "polars"
    _requires = ("polars",)

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        *,
        file_format: str = "parquet",
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
        if file_format not in _FORMATS:
            hint = did_you_mean(str(file_format), _FORMATS, or_list=True)
            raise DatasetError(
                f"{type_label(type(self))} for {self._filepath!r}: unknown file_format "
                f"{file_format!r}.{hint}"
            )
        self._format = file_format

    def _load(self) -> Any:
        import polars as pl

        fs, path = self._filesystem()
        target = self._load_path(fs, path)
        if is_local(fs):
            return getattr(pl, f"scan_{self._format}")(target, **self._load_args)
        source = io.BytesIO(fs.cat_file(target))
        return getattr(pl, f"scan_{self._format}")(source, **self._load_args)

    def _save(self, data: Any) -> None:
        frame = data.collect() if hasattr(data, "collect") else data
        write = getattr(frame, f"write_{self._format}")
        fs, path = self._filesystem()
        write_file(fs, self._save_path(fs, path), lambda file: write(file, **self._save_args))

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "file_format": self._format}


class EagerPolarsDataset(LazyPolarsDataset):
    """A polars DataFrame in any ``file_format`` of :class:`LazyPolarsDataset`, loaded whole.

    ``load_args`` go to ``polars.scan_<format>``, so a load can select
    columns or rows before reading (``n_rows``, ``columns`` for parquet).
    """

    def _load(self) -> Any:
        return super()._load().collect()


def __dir__() -> list[str]:
    return __all__
