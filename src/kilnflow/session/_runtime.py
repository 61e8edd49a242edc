"""What a session records about where and how it ran, with secrets redacted."""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "REDACTED",
    "git_info",
    "host_info",
    "new_session_id",
    "recorded_environment",
    "redact",
    "redact_arguments",
    "redact_pairs",
    "redact_values",
    "split_pairs",
    "start_git_info",
]

#: What a secret's value is replaced with.
REDACTED = "***"

# Names that usually carry secrets; matched anywhere in an upper-cased name.
_SECRET_NAMES = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PWD|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|SIGNATURE|CERT"
)
# user:password@ inside URLs, whatever the variable is called.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^/:@\s]*:)[^/@\s]+(?=@)")
# Variables worth recording: Kilnflow's own, the Airflow task context, and
# which interpreter environment ran.
_RECORDED_PREFIXES = ("KILNFLOW_", "AIRFLOW_CTX_")
_RECORDED_NAMES = ("VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "PYTHONPATH")


def new_session_id() -> str:
    """A session id: sortable by start time, unique across processes, file-name safe.

    Microsecond UTC time first so ids sort by time; eight random hex digits
    so two processes starting in the same microsecond still differ.
    """
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{os.urandom(4).hex()}"


def redact(name: str, value: str) -> str:
    """Hide a variable's value if its name looks secret, and any URL password."""
    if _SECRET_NAMES.search(name.upper()):
        return REDACTED
    return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", value)


def redact_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-looking keys (at any depth) and URL passwords hidden.

    Runtime parameters are recorded this way: a ``--params db_password=...``
    must not reach the session store, a hook's log or ``session show``.
    """
    return {key: _redact_any(str(key), value) for key, value in values.items()}


def _redact_any(name: str, value: Any) -> Any:
    if _SECRET_NAMES.search(name.upper()):
        return REDACTED
    if isinstance(value, Mapping):
        return redact_values(value)
    if isinstance(value, (list, tuple)):
        return [_redact_any(name, item) for item in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", value)
    return value


# A new key=value pair starts after a comma followed by a key and "=".
_NEXT_PAIR = re.compile(r",(?=\s*[\w.\-]+\s*=)")
# Options whose values are key=value pairs that may hold secrets.
_PAIR_OPTIONS = ("--params", "--runner-args")


def split_pairs(text: str) -> list[str]:
    """Split ``a=1,b.c=[1,2],d=x`` into its ``key=value`` items."""
    return _NEXT_PAIR.split(text)


def redact_pairs(text: str) -> str:
    """``key=value,...`` text with the values of secret-looking keys hidden."""
    redacted = []
    for item in split_pairs(text):
        key, sep, value = item.partition("=")
        redacted.append(f"{key}{sep}{redact(key.strip(), value)}" if sep else item)
    return ",".join(redacted)


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """A command line with secret ``--params``/``--runner-args`` values and URL passwords hidden."""
    redacted: list[str] = []
    pairs_follow = False
    for argument in arguments:
        flag, equals, value = argument.partition("=")
        if pairs_follow:
            redacted.append(redact_pairs(argument))
        elif equals and flag in _PAIR_OPTIONS:
            redacted.append(f"{flag}={redact_pairs(value)}")
        else:
            redacted.append(_URL_PASSWORD.sub(rf"\g<head>{REDACTED}", argument))
        pairs_follow = argument in _PAIR_OPTIONS
    return redacted


def recorded_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables a session keeps, secrets redacted."""
    source = os.environ if environ is None else environ
    return {
        name: redact(name, value)
        for name, value in sorted(source.items())
        if name.startswith(_RECORDED_PREFIXES) or name in _RECORDED_NAMES
    }


_GIT_STATUS = ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"]


def git_info(path: Path) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository holding ``path``, if any."""
    try:
        result = subprocess.run(
            _GIT_STATUS,
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return _parse_git_status(result.stdout) if result.returncode == 0 else None


def start_git_info(path: Path) -> Callable[[], dict[str, Any] | None]:
    """Start :func:`git_info` in a background thread; return a function that waits for it.

    One ``git status`` gives commit, branch and dirty flag; run alongside the
    session it adds nothing to a run's time. The thread always reaps the git
    process, even for a session that is never closed.
    """
    answer: list[dict[str, Any] | None] = []
    thread = threading.Thread(
        target=lambda: answer.append(git_info(path)), name="kilnflow-git", daemon=True
    )
    thread.start()

    def wait() -> dict[str, Any] | None:
        thread.join(timeout=15)
        return answer[0] if answer else None

    return wait


def _parse_git_status(output: str) -> dict[str, Any]:
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in output.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[-1]
            info["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split()[-1]
            info["branch"] = None if head == "(detached)" else head
        elif not line.startswith("#"):
            info["dirty"] = True
    return info


def host_info() -> dict[str, Any]:
    """Host, user and interpreter of this process."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {
        "host": socket.gethostname(),
        "user": user,
        "python": platform.python_version(),
        "pid": os.getpid(),
    }
