"""What a session records about where and how it ran, with secrets redacted."""

from __future__ import annotations

import getpass
import os
import platform
import subprocess
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kilnflow._redact import Redactor
from kilnflow.session._process import process_start

__all__ = [
    "git_info",
    "host_info",
    "new_session_id",
    "recorded_environment",
    "start_git_info",
]

# Variables worth recording: Kilnflow's own, the Airflow task context, and
# which interpreter environment ran.
_RECORDED_PREFIXES = ("KILNFLOW_", "AIRFLOW_CTX_")
_RECORDED_NAMES = ("VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "PYTHONPATH")


def new_session_id() -> str:
    """A session id: sortable by start time, unique across processes, file-name safe.

    Microsecond UTC time first so ids sort by time; eight random hex digits
    so two processes starting in the same microsecond still differ.
    """
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{os.urandom(4).hex()}"


def recorded_environment(
    redactor: Redactor, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment variables a session keeps, secrets hidden by the project's rule."""
    source = os.environ if environ is None else environ
    return {
        name: redactor.redact(name, value)
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
    """Host, user, interpreter and process (pid and start) of this run.

    Pid, host and start together let a later command tell a session whose
    process died (killed, out of memory) from one still running.
    """
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {
        "host": platform.node(),  # gethostname() without importing socket
        "user": user,
        "python": platform.python_version(),
        "pid": os.getpid(),
        "process_start": process_start(os.getpid()),
    }
