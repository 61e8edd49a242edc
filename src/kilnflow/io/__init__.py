"""Datasets and the DataCatalog that names them.

Importing this package loads no file-system, YAML or pandas library; each is
imported by the dataset that needs it when it first reads or writes.
Tabular datasets live in :mod:`kilnflow.io.pandas`.
"""

from __future__ import annotations

from ._catalog import DataCatalog
from ._core import AbstractDataset, dataset_from_config
from ._datasets import JSONDataset, MemoryDataset, PickleDataset, TextDataset, YAMLDataset
from ._file import FileDataset

__all__ = [
    "AbstractDataset",
    "DataCatalog",
    "FileDataset",
    "JSONDataset",
    "MemoryDataset",
    "PickleDataset",
    "TextDataset",
    "YAMLDataset",
    "dataset_from_config",
]


def __dir__() -> list[str]:
    return __all__
