"""Is the process that started a session still the one running it?

A session records its pid, host and the process's start time. A pid alone
is not enough: after the process dies the kernel hands the number to another
one, so the start time (and the boot it belongs to) tells them apart.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_is_running", "process_start"]

_PROC = Path("/proc")


def process_start(pid: int) -> str | None:
    """A token naming process ``pid`` for its whole life (``None`` when unknown or gone).

    On Linux: the boot id and the start time in clock ticks from
    ``/proc/PID/stat``; a zombie counts as gone. Elsewhere there is no cheap
    equivalent, and callers fall back on whether the pid exists.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
        boot = (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = stat.rpartition(")")[2].split()
    state, start_ticks = fields[0], fields[19]
    return None if state == "Z" else f"{boot}:{start_ticks}"


def process_is_running(pid: int, started: str | None) -> bool:
    """Whether ``pid`` on this host is still the process that recorded ``started``."""
    if started is not None and _PROC.joinpath("self", "stat").exists():
        return process_start(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
