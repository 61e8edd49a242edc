"""What a session records about where and how it ran, with secrets redacted."""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
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


def recorded_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables a session keeps, secrets redacted."""
    source = os.environ if environ is None else environ
    return {
        name: redact(name, value)
        for name, value in sorted(source.items())
        if name.startswith(_RECORDED_PREFIXES) or name in _RECORDED_NAMES
    }


def git_info(path: Path) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the repository holding ``path``, if any.

    One ``git status`` call gives all three, which keeps session start quick.
    """
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in result.stdout.splitlines():
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
