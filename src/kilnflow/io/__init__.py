"""Datasets and the DataCatalog that names them.

Importing this package loads no file-system, YAML or pandas library; each is
imported by the dataset that needs it when it first reads or writes. Library
datasets live in one module per family (:mod:`kilnflow.io.pandas`,
:mod:`kilnflow.io.polars`, :mod:`kilnflow.io.partitions`, ...). Writing your
own: subclass :class:`FileDataset` (one file) or :class:`PathDataset` (any
path); :func:`atomic_write`, :func:`atomic_directory`, :func:`write_file`,
:func:`text_io` and :func:`require` are what such a class needs.
"""

from __future__ import annotations

from kilnflow._atomic import atomic_directory, atomic_write, discard_unfinished_writes

from ._catalog import DataCatalog
from ._core import AbstractDataset, Version, require
from ._datasets import JSONDataset, MemoryDataset, PickleDataset, TextDataset, YAMLDataset
from ._file import FileDataset, PathDataset, text_io, write_file
from ._registry import dataset_from_config

__all__ = [
    "AbstractDataset",
    "DataCatalog",
    "FileDataset",
    "JSONDataset",
    "MemoryDataset",
    "PathDataset",
    "PickleDataset",
    "TextDataset",
    "Version",
    "YAMLDataset",
    "atomic_directory",
    "atomic_write",
    "dataset_from_config",
    "discard_unfinished_writes",
    "require",
    "text_io",
    "write_file",
]


def __dir__() -> list[str]:
    return __all__
