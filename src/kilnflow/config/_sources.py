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
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kilnflow.errors import ConfigError, MissingConfigError

if TYPE_CHECKING:
    from kilnflow._resources import Traversable

__all__ = ["MAX_ARCHIVE_BYTES", "MAX_FILE_BYTES", "Source", "conf_files", "open_source"]

_TAR_SUFFIXES = (".tar.gz", ".tgz")
_ZIP_SUFFIXES = (".zip",)
#: Largest configuration file read, whatever the source.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Most bytes a tar archive may inflate to while it is scanned for configuration.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
_TAR_BLOCK = 512

#: Tells whether a path inside an environment is a file the loader may read.
Wanted = Callable[[str], bool]


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
    """A conf folder on disk.

    Links are followed only while they stay inside the folder: a link to a
    file elsewhere would make a run (and a wheel) read whatever it points at,
    and a link back to a containing folder would make the walk endless.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._real = os.path.realpath(root)

    def envs(self) -> list[str]:
        with os.scandir(self._root) as entries:
            return [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]

    def files(self, env: str) -> list[str]:
        return list(_walk(self._root, self._real, env))

    def read(self, env: str, path: str) -> bytes:
        where = self.where(env, path)
        try:
            descriptor = os.open(where, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise ConfigError(
                f"{where} cannot be read ({exc.strerror or exc}); fix or remove the file."
            ) from exc
        with os.fdopen(descriptor, "rb") as stream:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise ConfigError(
                    f"{where} is not a regular file (a FIFO, device or socket); replace it "
                    "with a configuration file or remove it."
                )
            return _read_capped(stream, where)

    def where(self, env: str, path: str = "") -> str:
        return str(Path(self._root, env, *path.split("/") if path else ()))


def _walk(root: Path, real_root: str, top: str) -> dict[str, Path]:
    """Files below ``root/top`` by ``/``-separated relative path, links checked.

    Iterative and keyed on real folders, so a link loop is reported, never
    walked forever. Hidden names are skipped.
    """
    found: dict[str, Path] = {}
    start = Path(root, top) if top else Path(root)
    if start.is_symlink():
        _check_link(start, real_root)
    pending: list[tuple[Path, str, frozenset[str]]] = [(start, "", frozenset())]
    while pending:
        folder, prefix, ancestors = pending.pop()
        real = os.path.realpath(folder)
        if real in ancestors:
            raise ConfigError(
                f"{folder} is a link to a folder that contains it (a link loop); remove the link."
            )
        with os.scandir(folder) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                _check_link(path, real_root)
            if entry.is_dir():
                pending.append((path, f"{prefix}{entry.name}/", ancestors | {real}))
            else:
                found[prefix + entry.name] = path
    return found


def _check_link(link: Path, real_root: str) -> None:
    target = os.path.realpath(link)
    if os.path.commonpath([target, real_root]) != real_root:
        raise ConfigError(
            f"{link} is a link to {target}, outside the configuration folder {real_root}; "
            "copy the file into the configuration folder instead."
        )


def conf_files(root: Path) -> dict[str, Path]:
    """Every file of a conf folder as the loader sees it, by relative path.

    The build hook ships exactly these (less what must never ship), so a
    wheel reads the same files as project mode: hidden names are skipped,
    links must stay inside the folder and link loops are errors.
    """
    return _walk(root, os.path.realpath(root), "")


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
        with self._node(env, path).open("rb") as stream:
            return _read_capped(stream, self.where(env, path))

    def where(self, env: str, path: str = "") -> str:
        return str(self._node(env, path))

    def _node(self, env: str, path: str) -> Traversable:
        node = self._root / env
        for part in path.split("/") if path else ():
            node = node / part
        return node


class _ArchiveSource(Source):
    """A ``.tar.gz``/``.tgz``/``.zip`` archive read into memory, never extracted.

    One pass lists every member and reads the ones the loader wants (their
    paths match a config pattern), each capped at ``MAX_FILE_BYTES``; a tar
    archive is also refused once it inflates past ``MAX_ARCHIVE_BYTES``, since
    skipping a compressed member still means inflating it. A member wanted
    later (patterns added after construction) is fetched on demand. The
    environments may sit at the root of the archive or inside one top-level
    folder, as ``tar czf conf.tgz conf`` produces.
    """

    def __init__(self, archive: Path, base_env: str, wanted: Wanted) -> None:
        self._archive = archive
        self._is_tar = archive.name.lower().endswith(_TAR_SUFFIXES)

        def wanted_member(name: str) -> bool:
            parts = name.split("/")
            return any(wanted("/".join(parts[skip:])) for skip in (1, 2) if len(parts) > skip)

        scan = _scan_tar if self._is_tar else _scan_zip
        names, folders, self._loaded = scan(archive, wanted_member)
        for name in names:
            folders.update("/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1))
        tops = {p.split("/")[0] for p in (*names, *folders)}
        self._prefix = ""
        if base_env not in tops and len(tops) == 1 and tops <= folders:
            self._prefix = f"{tops.pop()}/"
        cut = len(self._prefix)
        self._names = {name[cut:] for name in names if name.startswith(self._prefix)}
        self._folders = {name[cut:] for name in folders if name.startswith(self._prefix)}

    def envs(self) -> list[str]:
        return [f for f in self._folders if f and "/" not in f and not f.startswith(".")]

    def files(self, env: str) -> list[str]:
        start = f"{env}/"
        return [
            name[len(start) :]
            for name in self._names
            if name.startswith(start) and not any(p.startswith(".") for p in name.split("/"))
        ]

    def read(self, env: str, path: str) -> bytes:
        name = f"{self._prefix}{env}/{path}"
        if name not in self._loaded:
            scan = _scan_tar if self._is_tar else _scan_zip
            self._loaded.update(scan(self._archive, lambda member: member == name)[2])
        return self._loaded[name]

    def where(self, env: str, path: str = "") -> str:
        inside = f"{self._prefix}{env}/{path}" if path else f"{self._prefix}{env}"
        return f"{self._archive}/{inside}"


def open_source(conf_source: Any, base_env: str, wanted: Wanted | None = None) -> Source:
    """Pick the source implementation that can read ``conf_source``.

    ``wanted`` tells which files the loader will read (all by default), so
    an archive need not inflate the others.
    """
    if isinstance(conf_source, (str, os.PathLike)):
        path = Path(conf_source)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise MissingConfigError(
                f"Configuration source '{path}' does not exist; pass an existing conf "
                "folder or a .tar.gz, .tgz or .zip archive of one."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"Configuration source '{path}' cannot be read ({exc.strerror or exc}); pass "
                "a conf folder or a .tar.gz, .tgz or .zip archive of one."
            ) from exc
        if stat.S_ISDIR(mode):
            return _DirectorySource(path)
        if not stat.S_ISREG(mode):
            raise ConfigError(
                f"Configuration source '{path}' is not a regular file or folder (a FIFO, "
                "device or socket); pass a conf folder or a .tar.gz, .tgz or .zip archive of one."
            )
        if path.name.lower().endswith(_TAR_SUFFIXES + _ZIP_SUFFIXES):
            return _ArchiveSource(path, base_env, wanted or (lambda _: True))
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


def _read_capped(stream: IO[bytes], where: str) -> bytes:
    data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(where)
    return data


def _too_large(where: str) -> ConfigError:
    return ConfigError(
        f"{where} is larger than {MAX_FILE_BYTES // 2**20} MiB; configuration files must be "
        "small: move data out of the configuration."
    )


# Member names, folder names, and the content of the wanted members.
_Scan = tuple[list[str], set[str], dict[str, bytes]]


def _scan_tar(archive: Path, wanted: Wanted) -> _Scan:
    import tarfile
    import zlib

    names: list[str] = []
    folders: set[str] = set()
    loaded: dict[str, bytes] = {}
    inflated = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                path = _member_path(archive, info.name)
                inflated += _TAR_BLOCK + info.size
                if inflated > MAX_ARCHIVE_BYTES:
                    raise ConfigError(
                        f"Archive '{archive}' inflates to more than "
                        f"{MAX_ARCHIVE_BYTES // 2**20} MiB (at member '{info.name}'); a "
                        "configuration archive should hold configuration files only."
                    )
                if info.isdir():
                    folders.add(path)
                elif not info.isfile():
                    raise _refuse_link(archive, info.name)
                elif path:
                    names.append(path)
                    if wanted(path):
                        extracted = tar.extractfile(info)
                        where = f"{archive}/{path}"
                        loaded[path] = b"" if extracted is None else _read_capped(extracted, where)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _unreadable(archive, exc) from exc
    folders.discard("")
    return names, folders, loaded


def _scan_zip(archive: Path, wanted: Wanted) -> _Scan:
    import zipfile

    names: list[str] = []
    folders: set[str] = set()
    loaded: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                path = _member_path(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise _refuse_link(archive, info.filename)
                if info.is_dir():
                    folders.add(path)
                elif path:
                    names.append(path)
                    if wanted(path):
                        where = f"{archive}/{path}"
                        if info.file_size > MAX_FILE_BYTES:
                            raise _too_large(where)
                        with zipped.open(info) as member:
                            loaded[path] = _read_capped(member, where)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(archive, exc) from exc
    folders.discard("")
    return names, folders, loaded
