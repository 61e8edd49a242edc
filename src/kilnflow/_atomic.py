"""Writes that replace a local file or folder whole, or leave it as it was.

A leaf, because datasets, the parsed-file cache, generated deployment files,
new projects and viewer pages all write this way, and a process stopped by
a signal must be able to remove the temporary files of its unfinished writes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

__all__ = ["atomic_directory", "atomic_write", "discard_unfinished_writes"]


#: Temporary files and folders of the atomic writes under way in this process.
#: A process that must end at once (a stop signal, abandoned threads) removes
#: them with :func:`discard_unfinished_writes`; otherwise each write cleans up.
_UNFINISHED: set[str] = set()


def discard_unfinished_writes() -> None:
    """Remove the temporary files of atomic writes still under way in this process.

    Called by a process about to end on a stop signal whose writes will
    never finish; their targets stay as they were, as an atomic write promises.
    """
    for temporary in list(_UNFINISHED):
        if os.path.isdir(temporary) and not os.path.islink(temporary):
            _remove_tree(temporary, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        _UNFINISHED.discard(temporary)


def _remove_tree(path: str, *, ignore_errors: bool = False) -> None:
    """``shutil.rmtree``, imported when a folder is removed: most runs never do."""
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _temporary_sibling(target: str | os.PathLike[str]) -> str:
    """An unguessable hidden name beside ``target``, whose folder is created."""
    directory, basename = os.path.split(os.fspath(target))
    os.makedirs(directory or os.curdir, exist_ok=True)
    return os.path.join(directory, f".{basename}.{os.urandom(6).hex()}.tmp")


@overload
def atomic_write(
    target: str | os.PathLike[str], mode: Literal["wb"] = "wb", *, private: bool = False
) -> contextlib.AbstractContextManager[BinaryIO]: ...


@overload
def atomic_write(
    target: str | os.PathLike[str], mode: Literal["w"], *, private: bool = False
) -> contextlib.AbstractContextManager[TextIO]: ...


def atomic_write(
    target: str | os.PathLike[str], mode: Literal["w", "wb"] = "wb", *, private: bool = False
) -> contextlib.AbstractContextManager[IO[Any]]:
    """Open a local file for writing that replaces ``target`` only once closed whole.

    Readers see the old file or the new one, never half of one; if the
    ``with`` block fails, ``target`` is untouched and no temporary file
    stays behind. Text mode writes UTF-8. Parent folders are created. A
    ``private`` file is readable by its owner only, whatever the umask.
    """
    return _atomic_write(target, mode, private)


@contextlib.contextmanager
def _atomic_write(target: str | os.PathLike[str], mode: str, private: bool) -> Iterator[IO[Any]]:
    temporary = _temporary_sibling(target)
    _UNFINISHED.add(temporary)
    try:
        # An unguessable name created exclusively (O_EXCL); its mode respects the
        # umask unless private, unlike mkstemp's, which is always 0600.
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        descriptor = os.open(temporary, flags, 0o600 if private else 0o666)
        if mode == "w":
            with open(descriptor, "w", encoding="utf-8") as text:
                yield text
        else:
            with open(descriptor, "wb") as binary:
                yield binary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        _UNFINISHED.discard(temporary)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a fresh local folder that replaces the folder ``target`` once filled.

    The old folder is moved aside before the new one takes its place and
    removed after, so ``target`` holds either the complete old content or
    the complete new content; a failed ``with`` block leaves it as it was.
    """
    temporary = _temporary_sibling(target)
    os.mkdir(temporary)
    _UNFINISHED.add(temporary)
    aside = None
    try:
        yield temporary
        if os.path.lexists(target):
            aside = _temporary_sibling(target)
            os.replace(target, aside)
        os.replace(temporary, target)
    except BaseException:
        if aside is not None and not os.path.lexists(target):
            os.replace(aside, target)  # the new folder could not take its place
        _remove_tree(temporary, ignore_errors=True)
        raise
    finally:
        _UNFINISHED.discard(temporary)
    if aside is not None:
        if os.path.isdir(aside) and not os.path.islink(aside):
            _remove_tree(aside)
        else:
            os.unlink(aside)
