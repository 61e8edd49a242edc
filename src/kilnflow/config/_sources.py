"""Where configuration files come from: a directory, an archive or a package.

The loader only ever needs three things from a configuration source: the
environment folders it holds, the files below one of them and their bytes.
Keeping that interface tiny lets a project read the same ``conf/`` tree from
its checkout, from a ``--conf-source`` archive (never extracted to disk) and
from inside an installed wheel, with one code path for everything else.
"""

from __future__ import annotations

import abc
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kilnflow.errors import ConfigError, MissingConfigError

if TYPE_CHECKING:
    from kilnflow._resources import Traversable

__all__ = ["Source", "open_source"]

_TAR_SUFFIXES = (".tar.gz", ".tgz")
_ZIP_SUFFIXES = (".zip",)


class Source(abc.ABC):
    """A read-only tree of environment folders holding configuration files.

    Paths inside an environment are relative and ``/``-separated whatever the
    source, so matching and sorting behave the same for all of them. Names
    starting with a dot (editor and notebook droppings such as
    ``.ipynb_checkpoints``) are never listed.
    """

    @abc.abstractmethod
    def envs(self) -> list[str]:
        """Return the names of the environment folders at the root."""

    @abc.abstractmethod
    def files(self, env: str) -> list[str]:
        """Return the relative paths of all files below ``env``, in any order."""

    @abc.abstractmethod
    def read(self, env: str, path: str) -> bytes:
        """Return the content of one file listed by ``files(env)``."""

    @abc.abstractmethod
    def where(self, env: str, path: str = "") -> str:
        """Return how messages should name an environment folder or a file in it."""


class _DirectorySource(Source):
    def __init__(self, root: Path) -> None:
        self._root = root

    def envs(self) -> list[str]:
        with os.scandir(self._root) as entries:
            return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]

    def files(self, env: str) -> list[str]:
        top = os.path.join(self._root, env)
        found: list[str] = []
        for folder, dirnames, filenames in os.walk(top, followlinks=True):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            relative = os.path.relpath(folder, top)
            prefix = "" if relative == os.curdir else relative.replace(os.sep, "/") + "/"
            found.extend(prefix + f for f in filenames if not f.startswith("."))
        return found

    def read(self, env: str, path: str) -> bytes:
        return Path(self._root, env, *path.split("/")).read_bytes()

    def where(self, env: str, path: str = "") -> str:
        return str(Path(self._root, env, *path.split("/") if path else ()))


class _TraversableSource(Source):
    """A folder inside an installed package, possibly inside a zip file."""

    def __init__(self, root: Traversable) -> None:
        self._root = root

    def envs(self) -> list[str]:
        return [c.name for c in self._root.iterdir() if c.is_dir() and not c.name.startswith(".")]

    def files(self, env: str) -> list[str]:
        found: list[str] = []
        pending = [(self._root / env, "")]
        while pending:
            folder, prefix = pending.pop()
            for child in folder.iterdir():
                if child.name.startswith("."):
                    continue
                if child.is_dir():
                    pending.append((child, f"{prefix}{child.name}/"))
                else:
                    found.append(prefix + child.name)
        return found

    def read(self, env: str, path: str) -> bytes:
        return self._node(env, path).read_bytes()

    def where(self, env: str, path: str = "") -> str:
        return str(self._node(env, path))

    def _node(self, env: str, path: str) -> Traversable:
        node = self._root / env
        for part in path.split("/") if path else ():
            node = node / part
        return node


class _ArchiveSource(Source):
    """A ``.tar.gz``/``.tgz``/``.zip`` archive read into memory, never extracted.

    Configuration trees are small, so reading every member once up front is
    cheaper than reopening (and for tar, decompressing) the archive per file.
    The environments may sit at the root of the archive or inside one
    top-level folder, as ``tar czf conf.tgz conf`` produces.
    """

    def __init__(self, archive: Path, base_env: str) -> None:
        self._archive = archive
        if archive.name.lower().endswith(_TAR_SUFFIXES):
            members, folders = _read_tar(archive)
        else:
            members, folders = _read_zip(archive)
        for name in members:
            folders.update("/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1))
        tops = {p.split("/")[0] for p in (*members, *folders)}
        self._prefix = ""
        if base_env not in tops and len(tops) == 1 and tops <= folders:
            self._prefix = f"{tops.pop()}/"
        cut = len(self._prefix)
        self._members = {name[cut:]: data for name, data in members.items()}
        self._folders = {name[cut:] for name in folders if name.startswith(self._prefix)}

    def envs(self) -> list[str]:
        return [f for f in self._folders if f and "/" not in f and not f.startswith(".")]

    def files(self, env: str) -> list[str]:
        start = f"{env}/"
        return [
            name[len(start) :]
            for name in self._members
            if name.startswith(start) and not any(p.startswith(".") for p in name.split("/"))
        ]

    def read(self, env: str, path: str) -> bytes:
        return self._members[f"{env}/{path}"]

    def where(self, env: str, path: str = "") -> str:
        inside = f"{self._prefix}{env}/{path}" if path else f"{self._prefix}{env}"
        return f"{self._archive}/{inside}"


def open_source(conf_source: Any, base_env: str) -> Source:
    """Pick the source implementation that can read ``conf_source``."""
    if isinstance(conf_source, (str, os.PathLike)):
        path = Path(conf_source)
        if path.is_dir():
            return _DirectorySource(path)
        if not path.exists():
            raise MissingConfigError(
                f"Configuration source '{path}' does not exist; pass an existing conf "
                "folder or a .tar.gz, .tgz or .zip archive of one."
            )
        if path.name.lower().endswith(_TAR_SUFFIXES + _ZIP_SUFFIXES):
            return _ArchiveSource(path, base_env)
        raise ConfigError(
            f"Configuration source '{path}' is a file but not a .tar.gz, .tgz or .zip "
            "archive; pass a conf folder or an archive of one."
        )
    if all(hasattr(conf_source, a) for a in ("iterdir", "is_dir", "read_bytes", "joinpath")):
        if not conf_source.is_dir():
            raise MissingConfigError(
                f"Configuration source '{conf_source}' does not exist or is not a folder; "
                "point conf_source at the packaged conf folder."
            )
        return _TraversableSource(conf_source)
    raise ConfigError(
        f"conf_source must be a path or an importlib.resources Traversable, not "
        f"{type(conf_source).__name__}; pass the conf folder or an archive of it."
    )


def _member_path(archive: Path, name: str) -> str:
    """Return the normalised member path, refusing any that leaves the root."""
    unified = name.replace("\\", "/")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if unified.startswith("/") or unified[1:2] == ":" or ".." in parts:
        raise ConfigError(
            f"Archive '{archive}' member '{name}' points outside the archive; rebuild the "
            "archive with paths relative to the conf folder."
        )
    return "/".join(parts)


def _refuse_link(archive: Path, name: str) -> ConfigError:
    return ConfigError(
        f"Archive '{archive}' member '{name}' is a link or special file; rebuild the "
        "archive with regular files and folders only."
    )


def _unreadable(archive: Path, exc: Exception) -> ConfigError:
    return ConfigError(
        f"Archive '{archive}' cannot be read ({exc}); rebuild it or pass the conf folder."
    )


def _read_tar(archive: Path) -> tuple[dict[str, bytes], set[str]]:
    import tarfile
    import zlib

    members: dict[str, bytes] = {}
    folders: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                path = _member_path(archive, info.name)
                if info.isdir():
                    folders.add(path)
                elif not info.isfile():
                    raise _refuse_link(archive, info.name)
                elif path:
                    extracted = tar.extractfile(info)
                    members[path] = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _unreadable(archive, exc) from exc
    folders.discard("")
    return members, folders


def _read_zip(archive: Path) -> tuple[dict[str, bytes], set[str]]:
    import zipfile

    members: dict[str, bytes] = {}
    folders: set[str] = set()
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                path = _member_path(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise _refuse_link(archive, info.filename)
                if info.is_dir():
                    folders.add(path)
                elif path:
                    members[path] = zipped.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(archive, exc) from exc
    folders.discard("")
    return members, folders
