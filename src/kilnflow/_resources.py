"""Where Kilnflow's own templates live, installed or in a checkout.

The wheel carries ``templates/`` as ``kilnflow/templates`` (hatch
``force-include``); a source checkout or an editable install keeps it at the
repository root. Both are read through the importlib.resources
``Traversable`` interface so callers never assume a file system.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    from importlib.resources import files
    from importlib.resources.abc import Traversable
else:
    from importlib_resources import files
    from importlib_resources.abc import Traversable

__all__ = ["Traversable", "files", "templates"]


def templates() -> Traversable:
    """Return the root of Kilnflow's templates, packaged or from the checkout."""
    packaged = files("kilnflow") / "templates"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "templates"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"Kilnflow's templates are missing: looked in {packaged} and {checkout}. "
        "Reinstall Kilnflow ('pip install --force-reinstall kilnflow')."
    )
