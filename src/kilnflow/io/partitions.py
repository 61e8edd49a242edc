"""Folders of partitions: ``type: partitions.PartitionedDataset`` in a catalog.

Each file of the folder is one partition, read and written by an
underlying dataset of any type, so a folder of CSV files, of images or of
pickles works the same way.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from kilnflow._atomic import atomic_directory
from kilnflow.errors import DatasetError

from ._core import AbstractDataset
from ._file import PathDataset, absolute, is_local
from ._registry import Subject, check_type_name, dataset_from_config, resolve_dataset_type, takes

__all__ = ["IncrementalDataset", "PartitionedDataset"]


class PartitionedDataset(PathDataset):
    """A folder of partitions, each loaded and saved by the dataset ``dataset``.

    ``dataset`` is a type name or a catalog entry without ``filepath`` (the
    partition's path goes to its ``filepath_arg``). A load lists the files
    under ``path`` ending in ``filename_suffix`` (``load_args`` go to
    fsspec's ``find``) and returns ``{partition id: load function}``, sorted
    by id, so a node loads only the partitions it calls. A save takes a dict
    ``{partition id: data}``; a value may be a function returning the data,
    called only then, so partitions can be produced one at a time. With
    ``overwrite: true`` a save replaces the partitions saved before (on
    local disk all at once, once every new partition is written).
    ``credentials`` reach the file system and the underlying dataset; with
    ``versioned: true`` each save is a new folder
    ``<path>/<save_version>/<basename>``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dataset: str | type[Any] | Mapping[str, Any],
        *,
        filepath_arg: str = "filepath",
        filename_suffix: str = "",
        load_args: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        fs_args: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        versioned: bool = False,
        load_version: str | None = None,
        save_version: str | None = None,
    ) -> None:
        super().__init__(
            path,
            load_args=load_args,
            credentials=credentials,
            fs_args=fs_args,
            versioned=versioned,
            load_version=load_version,
            save_version=save_version,
        )
        owner = f"{type(self).__name__} for {self._filepath!r}"
        config: dict[str, Any] = (
            dict(dataset) if isinstance(dataset, Mapping) else {"type": dataset}
        )
        subject = Subject(f"{owner}, key 'dataset'")
        check_type_name(subject, config.get("type"))
        for key, why in (
            (filepath_arg, "each partition's path goes there"),
            ("versioned", "version the PartitionedDataset instead"),
        ):
            if key in config:
                raise DatasetError(f"{owner}: its dataset must not set {key!r}; {why}.")
        cls = resolve_dataset_type(subject, config["type"])
        if credentials is not None and "credentials" not in config and takes(cls, "credentials"):
            config["credentials"] = credentials
        self._dataset_config = config
        self._filepath_arg = filepath_arg
        self._suffix = filename_suffix
        self._overwrite = overwrite

    def _load(self) -> dict[str, Any]:
        fs, path = self._filesystem()
        root = self._load_path(fs, path)
        partitions = {pid: self._partition(fs, root, pid).load for pid in self._ids(fs, root)}
        if not partitions:
            raise DatasetError(
                f"Cannot load {self._label()}: no partition found under {root!r}; save some "
                "first, or check path and filename_suffix."
            )
        return partitions

    def _save(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise DatasetError(
                f"Cannot save {self._label()}: it saves a dict of partition id to data, not a "
                f"{type(data).__name__}."
            )
        fs, path = self._filesystem()
        root = self._save_path(fs, path)
        if self._overwrite and is_local(fs):
            # The old partitions stay whole until every new one is written.
            with atomic_directory(root) as staging:
                self._save_partitions(fs, staging, data)
        else:
            if self._overwrite and fs.exists(root):
                fs.rm(root, recursive=True)
            self._save_partitions(fs, root, data)
        fs.invalidate_cache(root)

    def _save_partitions(self, fs: Any, root: str, data: Mapping[Any, Any]) -> None:
        for pid, value in sorted(data.items()):
            self._partition(fs, root, str(pid)).save(value() if callable(value) else value)

    def _exists(self) -> bool:
        fs, path = self._filesystem()
        try:
            root = self._load_path(fs, path)
        except DatasetError:
            return False
        return bool(self._ids(fs, root))

    def _describe(self) -> dict[str, Any]:
        info = {"path": self._filepath, "dataset": self._dataset_config.get("type")}
        if self._suffix:
            info["filename_suffix"] = self._suffix
        if self._versioned:
            info.update(versioned=True, save_version=self._save_version)
        return info

    def _ids(self, fs: Any, root: str) -> list[str]:
        """Partition ids under ``root``: relative paths less the suffix, hidden files left out."""
        if not fs.isdir(root):
            return []
        ids = []
        for found in fs.find(root, **self._load_args):
            relative = posixpath.relpath(found, root)
            if any(part.startswith(".") for part in relative.split("/")):
                continue  # a save in progress, or a file the user hid
            if relative.endswith(self._suffix) and not self._ignored(fs, found):
                ids.append(relative[: len(relative) - len(self._suffix)])
        return sorted(ids)

    def _ignored(self, fs: Any, found: str) -> bool:
        """Tell whether the file ``found`` is not a partition though it looks like one."""
        return False

    def _partition(self, fs: Any, root: str, pid: str) -> AbstractDataset:
        location = posixpath.join(root, pid + self._suffix)
        if not is_local(fs):
            location = fs.unstrip_protocol(location)
        config = {**self._dataset_config, self._filepath_arg: location}
        return dataset_from_config(f"{self.name or self._filepath}[{pid}]", config)


class IncrementalDataset(PartitionedDataset):
    """A PartitionedDataset that loads only partitions newer than its checkpoint.

    A load returns ``{partition id: data}`` (loaded, not functions) for the
    ids that sort after the checkpoint; :meth:`confirm` (or
    ``catalog.confirm(name)``) records the last id loaded (of the load that
    saw the fewest, when several loaded since the last confirm), so the next
    run starts after it. ``checkpoint`` is a file path or a catalog entry (a
    ``TextDataset`` at ``<path>/CHECKPOINT`` by default). The checkpoint
    says what was processed, so this dataset is not versioned.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        dataset: str | type[Any] | Mapping[str, Any],
        *,
        checkpoint: str | Mapping[str, Any] | None = None,
        filepath_arg: str = "filepath",
        filename_suffix: str = "",
        load_args: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
        fs_args: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        super().__init__(
            path,
            dataset,
            filepath_arg=filepath_arg,
            filename_suffix=filename_suffix,
            load_args=load_args,
            credentials=credentials,
            fs_args=fs_args,
            overwrite=overwrite,
        )
        if checkpoint is None or isinstance(checkpoint, str):
            default = posixpath.join(str(path).rstrip("/"), "CHECKPOINT")
            checkpoint = {"filepath": checkpoint or default}
        self._checkpoint_config = {"type": "TextDataset", **checkpoint}
        if credentials is not None:
            self._checkpoint_config.setdefault("credentials", credentials)
        self._checkpoint: AbstractDataset | None = None
        self._loaded: str | None = None

    def _load(self) -> dict[str, Any]:
        fs, path = self._filesystem()
        done = self._checkpointed()
        fresh = [pid for pid in self._ids(fs, path) if done is None or pid > done]
        loaded = {pid: self._partition(fs, path, pid).load() for pid in fresh}
        mark = fresh[-1] if fresh else done
        if mark is not None:
            self.set_loaded_mark(mark)
        return loaded

    def confirm(self) -> None:
        """Record the last partition loaded, so the next load starts after it."""
        if self._loaded is not None:
            self._checkpoint_dataset().save(self._loaded)
            self._loaded = None

    def loaded_mark(self) -> str | None:
        """What :meth:`confirm` would record: the last partition id loaded, if any.

        A runner that loads in one process and confirms in another passes
        it from the copy that loaded to the copy that confirms.
        """
        return self._loaded

    def set_loaded_mark(self, mark: str) -> None:
        """Note what a load (here, or by a copy in another process) returned.

        Until the next confirm the earliest mark wins: when a partition
        arrives between two nodes' loads, only the one that loaded last has
        seen it, so confirming past it would hide it from the other for good.
        """
        self._loaded = mark if self._loaded is None else min(self._loaded, mark)

    def _checkpointed(self) -> str | None:
        checkpoint = self._checkpoint_dataset()
        return str(checkpoint.load()).strip() if checkpoint.exists() else None

    def _checkpoint_dataset(self) -> AbstractDataset:
        if self._checkpoint is None:
            name = f"{self.name or self._filepath}[checkpoint]"
            self._checkpoint = dataset_from_config(name, self._checkpoint_config)
        return self._checkpoint

    def _ignored(self, fs: Any, found: str) -> bool:
        checkpoint = self._checkpoint_config.get("filepath")
        if not isinstance(checkpoint, str):
            return False
        from fsspec.core import url_to_fs

        return bool(url_to_fs(absolute(checkpoint), **self._storage_options)[1] == found)


def __dir__() -> list[str]:
    return __all__
