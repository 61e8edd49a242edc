"""Kilnflow's folder for one user, for what belongs to no project.

Packaged runs record their sessions there and the command line keeps its
rendered help there. A leaf without pathlib, because ``kilnflow --help``
reads it before anything else is imported.
"""

from __future__ import annotations

import os
import sys

__all__ = ["kilnflow_home"]


def kilnflow_home() -> str:
    """``$KILNFLOW_HOME``, else ``kilnflow`` in the platform's folder for a user's data."""
    home = os.environ.get("KILNFLOW_HOME")
    if home:
        return os.path.expanduser(home)
    user = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(user, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(user, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(user, ".local", "share")
    return os.path.join(base, "kilnflow")
