"""Datasets stored as one file, local or remote, optionally versioned.

fsspec is imported, and the file system created, on first use, so a catalog
of file datasets costs nothing to build. Saves never leave half a file: on
local disk the data goes to a temporary file in the target directory that
replaces the target only once complete; elsewhere it is serialized in memory
and written in one call.
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
import posixpath
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, BinaryIO, ClassVar, TextIO

from kilnflow.errors import DatasetError, VersionNotFoundError

from ._core import AbstractDataset

__all__ = ["FileDataset", "new_version", "text_io"]


def new_version() -> str:
    """Return a save version that sorts after every earlier one (UTC timestamp)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H.%M.%S.%fZ")


@contextlib.contextmanager
def text_io(binary: BinaryIO) -> Iterator[TextIO]:
    """Read or write UTF-8 text on ``binary`` without closing it afterwards."""
    wrapper = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    try:
        yield wrapper
    finally:
        wrapper.detach()


class FileDataset(AbstractDataset):
    """Base of datasets kept in one file; subclasses only (de)serialize.

    Subclasses implement ``_load_from`` and ``_save_to`` on a binary file
    object (wrap it with :func:`text_io` for text) and may set
    ``default_load_args`` / ``default_save_args``, which the user's
    ``load_args`` / ``save_args`` update.

    ``filepath`` is a local path or an fsspec URL (``s3://bucket/key``);
    ``credentials`` and ``fs_args`` become the file system's storage options.
    With ``versioned=True`` each save goes to
    ``<filepath>/<save_version>/<basename>`` and a version is never
    overwritten; a load reads ``load_version``, else the ``save_version`` when
    that exists (what this run, or its sibling sessions, saved), else the
    greatest version.
    """

    default_load_args: ClassVar[Mapping[str, Any]] = {}
    default_save_args: ClassVar[Mapping[str, Any]] = {}

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
        self._filepath = os.fspath(filepath)
        if not versioned and (load_version is not None or save_version is not None):
            raise DatasetError(
                f"{type(self).__name__} for {self._filepath!r} got a load or save version "
                "but is not versioned; pass versioned=True."
            )
        for argument, value in (("credentials", credentials), ("fs_args", fs_args)):
            if value is not None and not isinstance(value, Mapping):
                raise DatasetError(
                    f"{type(self).__name__} for {self._filepath!r}: {argument} must be a "
                    f"mapping of storage options, not {type(value).__name__}."
                )
        self._load_args = {**self.default_load_args, **(load_args or {})}
        self._save_args = {**self.default_save_args, **(save_args or {})}
        self._storage_options = {**(fs_args or {}), **(credentials or {})}
        self._versioned = bool(versioned)
        self._load_version = load_version
        self._save_version = save_version
        # A relative local path means the working directory of now, not of first use.
        is_url = "://" in self._filepath or "::" in self._filepath
        self._target = self._filepath if is_url else os.path.abspath(self._filepath)
        self._fs_path: tuple[Any, str] | None = None

    @abc.abstractmethod
    def _load_from(self, file: BinaryIO) -> Any: ...

    @abc.abstractmethod
    def _save_to(self, file: BinaryIO, data: Any) -> None: ...

    def _load(self) -> Any:
        fs, path = self._filesystem()
        with fs.open(self._load_path(fs, path), "rb") as file:
            return self._load_from(file)

    def _save(self, data: Any) -> None:
        fs, path = self._filesystem()
        target = path
        if self._versioned:
            if self._save_version is None:
                self._save_version = new_version()
            target = posixpath.join(path, self._save_version, posixpath.basename(path))
            if fs.exists(target):
                raise DatasetError(
                    f"Cannot save {self._label()}: version {self._save_version!r} already "
                    f"exists at {target!r} and versions are never overwritten; save under "
                    "a new version."
                )
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if "file" in protocols:
            self._save_local(target, data)
        else:
            buffer = io.BytesIO()
            self._save_to(buffer, data)
            fs.makedirs(posixpath.dirname(target), exist_ok=True)
            fs.pipe_file(target, buffer.getvalue())
        fs.invalidate_cache(target)

    def _save_local(self, target: str, data: Any) -> None:
        directory, basename = os.path.split(target)
        os.makedirs(directory, exist_ok=True)
        # Mode "x" on an unguessable name respects the umask, unlike mkstemp.
        temporary = os.path.join(directory, f".{basename}.{os.urandom(6).hex()}.tmp")
        try:
            with open(temporary, "xb") as file:
                self._save_to(file, data)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _exists(self) -> bool:
        fs, path = self._filesystem()
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

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs_path is None:
            from fsspec.core import url_to_fs

            self._fs_path = url_to_fs(self._target, **self._storage_options)
        return self._fs_path

    def _load_path(self, fs: Any, path: str) -> str:
        """Return the file a load reads; for versions, the chosen version's file."""
        if not self._versioned:
            return path
        basename = posixpath.basename(path)
        if self._load_version is not None:
            target = posixpath.join(path, self._load_version, basename)
            if not fs.exists(target):
                raise VersionNotFoundError(
                    f"Cannot load {self._label()}: version {self._load_version!r} does not "
                    f"exist at {target!r}; pick a saved version or omit it to load the latest."
                )
            return target
        if self._save_version is not None:
            # Sessions that share a save version (the tasks of one Airflow DAG run)
            # read what they saved, even if a concurrent run saved something newer.
            own = posixpath.join(path, self._save_version, basename)
            if fs.exists(own):
                return own
        found = fs.glob(posixpath.join(path, "*", basename))
        versions = [posixpath.basename(posixpath.dirname(match)) for match in found]
        if not versions:
            raise VersionNotFoundError(
                f"Cannot load {self._label()}: no version has been saved under {path!r}; "
                "run the pipeline that saves it first."
            )
        return posixpath.join(path, max(versions), basename)
