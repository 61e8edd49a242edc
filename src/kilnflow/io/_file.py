"""Datasets stored as files, local or remote, optionally versioned.

fsspec is imported, and the file system created, on first use, so a catalog
of file datasets costs nothing to build. Saves never leave half a file: on
local disk the data goes to a temporary file in the target directory that
replaces the target only once complete (:func:`kilnflow._atomic.atomic_write`);
elsewhere it is serialized in memory and written in one call.
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, ClassVar, TextIO

from kilnflow._atomic import atomic_write
from kilnflow.errors import DatasetError, VersionNotFoundError

from ._core import AbstractDataset, require

__all__ = [
    "FileDataset",
    "PathDataset",
    "is_local",
    "new_version",
    "text_io",
    "versioned_load_path",
    "versioned_save_path",
    "write_file",
]


def type_label(cls: type[Any]) -> str:
    """The ``type:`` users write for ``cls``: ``pandas.CSVDataset`` for kilnflow.io.pandas."""
    package, _, family = cls.__module__.rpartition(".")
    if package == "kilnflow.io" and not family.startswith("_"):
        return f"{family}.{cls.__name__}"
    return cls.__name__


def new_version() -> str:
    """Return a save version that sorts after every earlier one (UTC timestamp)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H.%M.%S.%fZ")


@contextlib.contextmanager
def text_io(binary: BinaryIO) -> Iterator[TextIO]:
    """Read or write UTF-8 text on ``binary`` without closing it afterwards."""
    wrapper = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    try:
        yield wrapper
    finally:
        wrapper.detach()


def is_local(fs: Any) -> bool:
    """Tell whether the fsspec file system ``fs`` is the local disk."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols


def write_file(fs: Any, target: str, write: Callable[[BinaryIO], None]) -> None:
    """Write ``target`` on ``fs`` with ``write``, all at once or not at all.

    Locally through :func:`atomic_write`; on other file systems ``write``
    fills a buffer first, which is uploaded in one call.
    """
    if is_local(fs):
        with atomic_write(target) as file:
            write(file)
    else:
        buffer = io.BytesIO()
        write(buffer)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        fs.pipe_file(target, buffer.getvalue())
    fs.invalidate_cache(target)


def versioned_save_path(
    fs: Any, path: str, version: str, label: str, *, overwrite: bool = False
) -> str:
    """Return ``<path>/<version>/<basename>``, refusing a version that already exists.

    ``overwrite`` lets a run that owns ``version`` replace what it saved
    there before: a retried Airflow task of the DAG run the version belongs to.
    """
    target = posixpath.join(path, version, posixpath.basename(path))
    if not overwrite and fs.exists(target):
        raise DatasetError(
            f"Cannot save {label}: version {version!r} already exists at {target!r} and "
            "versions are never overwritten; save under a new version."
        )
    return target


def versioned_load_path(
    fs: Any, path: str, load_version: str | None, save_version: str | None, label: str
) -> str:
    """Return the file a versioned load reads.

    That is ``load_version``'s file when given, else ``save_version``'s when
    it exists (what this run, or its sibling sessions, saved), else the
    greatest version's.
    """
    basename = posixpath.basename(path)
    if load_version is not None:
        target = posixpath.join(path, load_version, basename)
        if not fs.exists(target):
            raise VersionNotFoundError(
                f"Cannot load {label}: version {load_version!r} does not exist at "
                f"{target!r}; pick a saved version or omit it to load the latest."
            )
        return target
    if save_version is not None:
        # Sessions that share a save version (the tasks of one Airflow DAG run)
        # read what they saved, even if a concurrent run saved something newer.
        own = posixpath.join(path, save_version, basename)
        if fs.exists(own):
            return own
    found = fs.glob(posixpath.join(path, "*", basename))
    versions = [posixpath.basename(posixpath.dirname(match)) for match in found]
    if not versions:
        raise VersionNotFoundError(
            f"Cannot load {label}: no version has been saved under {path!r}; run the "
            "pipeline that saves it first."
        )
    return posixpath.join(path, max(versions), basename)


def storage_options(
    owner: str, credentials: Mapping[str, Any] | None, fs_args: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Merge ``fs_args`` and ``credentials`` into fsspec storage options."""
    for argument, value in (("credentials", credentials), ("fs_args", fs_args)):
        if value is not None and not isinstance(value, Mapping):
            raise DatasetError(
                f"{owner}: {argument} must be a mapping of storage options, not "
                f"{type(value).__name__}."
            )
    return {**(fs_args or {}), **(credentials or {})}


def _is_url(filepath: str) -> bool:
    return "://" in filepath or "::" in filepath


def absolute(filepath: str) -> str:
    """A relative local path means the working directory of now, not of first use."""
    return filepath if _is_url(filepath) else os.path.abspath(filepath)


class _LocalDisk:
    """The file-system calls FileDataset itself makes, on the local disk.

    Importing fsspec (with asyncio and ssl) costs a short run more than all
    its scheduling, so a local path with no storage options is read and
    written with the standard library. Its paths are fsspec's for the same
    file; subclasses that ask :meth:`PathDataset._filesystem` still get
    fsspec's file system.
    """

    protocol = ("file", "local")

    def open(self, path: str, mode: str) -> IO[Any]:
        return open(path, mode)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def glob(self, pattern: str) -> list[str]:
        import glob

        return sorted(glob.glob(pattern))

    def invalidate_cache(self, path: str | None = None) -> None:
        """Nothing is cached, so there is nothing to forget."""


_LOCAL_DISK = _LocalDisk()


class PathDataset(AbstractDataset):
    """Base of datasets kept at one path, local or remote, optionally versioned.

    It owns the path, the file system and the versions; subclasses implement
    ``_load`` and ``_save`` with :meth:`_filesystem`, :meth:`_load_path` and
    :meth:`_save_path`, and write through :func:`write_file` or
    :func:`atomic_directory` to keep saves atomic. Datasets of one file
    subclass :class:`FileDataset` instead, which does all of that for them.

    ``filepath`` is a local path or an fsspec URL (``s3://bucket/key``);
    ``credentials`` and ``fs_args`` become the file system's storage options.
    With ``versioned=True`` each save goes to
    ``<filepath>/<save_version>/<basename>`` and a version is never
    overwritten, unless ``overwrite_save_version`` says the run owns its save
    version (a retried Airflow task replaces what its failed try saved under
    its DAG run's version); a load reads ``load_version``, else the
    ``save_version`` when that exists (what this run, or its sibling
    sessions, saved), else the greatest version.
    """

    default_load_args: ClassVar[Mapping[str, Any]] = {}
    default_save_args: ClassVar[Mapping[str, Any]] = {}
    #: Kilnflow's own datasets: the extra that installs the modules ``_requires``
    #: names (a tuple is any one of its modules), checked when constructed.
    _extra: ClassVar[str] = ""
    _requires: ClassVar[tuple[str | tuple[str, ...], ...]] = ()

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
        overwrite_save_version: bool = False,
    ) -> None:
        self._filepath = os.fspath(filepath)
        owner = f"{type(self).__name__} for {self._filepath!r}"
        if not versioned and (load_version is not None or save_version is not None):
            raise DatasetError(
                f"{owner} got a load or save version but is not versioned; pass versioned=True."
            )
        self._storage_options = storage_options(owner, credentials, fs_args)
        self._load_args = {**self.default_load_args, **(load_args or {})}
        self._save_args = {**self.default_save_args, **(save_args or {})}
        self._versioned = bool(versioned)
        self._load_version = load_version
        self._save_version = save_version
        self._overwrite_save_version = overwrite_save_version
        self._target = absolute(self._filepath)
        self._fs_path: tuple[Any, str] | None = None
        # A plain local path, named as fsspec names it; None when fsspec must serve it.
        self._local_path = (
            None
            if _is_url(self._filepath) or self._storage_options
            else self._target.replace(os.sep, "/")
        )
        if self._requires:
            require(
                f"{type_label(type(self))} for {self._filepath!r}", self._extra, *self._requires
            )

    def _exists(self) -> bool:
        fs, path = self._files()
        try:
            target = self._load_path(fs, path)
        except VersionNotFoundError:
            return False
        return bool(fs.exists(target))

    def _describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"filepath": self._filepath}
        if self._load_args:
            info["load_args"] = self._load_args
        if self._save_args:
            info["save_args"] = self._save_args
        if self._versioned:
            info["versioned"] = True
            info["load_version"] = self._load_version
            info["save_version"] = self._save_version
        return info

    def _files(self) -> tuple[Any, str]:
        """The file system this class's own load, save and exists use, and the path on it.

        The local disk through the standard library for a plain local path,
        else :meth:`_filesystem`.
        """
        if self._local_path is not None:
            return _LOCAL_DISK, self._local_path
        return self._filesystem()

    def _filesystem(self) -> tuple[Any, str]:
        """Return the fsspec file system and the path on it, created on first use."""
        if self._fs_path is None:
            from fsspec.core import url_to_fs

            self._fs_path = url_to_fs(self._target, **self._storage_options)
        return self._fs_path

    def _load_path(self, fs: Any, path: str) -> str:
        """Return the path a load reads; for versions, the chosen version's."""
        if not self._versioned:
            return path
        return versioned_load_path(fs, path, self._load_version, self._save_version, self._label())

    def _save_path(self, fs: Any, path: str) -> str:
        """Return the path a save writes; for versions, a new version's."""
        if not self._versioned:
            return path
        if self._save_version is None:
            self._save_version = new_version()
        return versioned_save_path(
            fs, path, self._save_version, self._label(), overwrite=self._overwrite_save_version
        )


class FileDataset(PathDataset):
    """Base of datasets kept in one file; subclasses only (de)serialize.

    Subclasses implement ``_load_from`` and ``_save_to`` on a binary file
    object (wrap it with :func:`text_io` for text) and may set
    ``default_load_args`` / ``default_save_args``, which the user's
    ``load_args`` / ``save_args`` update. Paths, credentials, versions and
    atomic saves work as :class:`PathDataset` describes, with no code.
    """

    @abc.abstractmethod
    def _load_from(self, file: BinaryIO) -> Any: ...

    @abc.abstractmethod
    def _save_to(self, file: BinaryIO, data: Any) -> None: ...

    def _load(self) -> Any:
        fs, path = self._files()
        with fs.open(self._load_path(fs, path), "rb") as file:
            return self._load_from(file)

    def _save(self, data: Any) -> None:
        fs, path = self._files()
        write_file(fs, self._save_path(fs, path), lambda file: self._save_to(file, data))
