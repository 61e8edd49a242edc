"""Where Kilnflow's own templates live, installed or in a checkout.

The wheel carries ``templates/`` as ``kilnflow/templates`` (hatch
``force-include``); a source checkout or an editable install keeps it at the
repository root. Both are read through the importlib.resources
``Traversable`` interface so callers never assume a file system.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["Traversable", "files", "templates"]


def files(package: str) -> Traversable:
    """The resources of ``package``, as ``importlib.resources.files`` gives them.

    A package installed as a folder (a wheel in site-packages, a source tree)
    is answered with that folder's ``Path``, which is exactly what
    importlib.resources returns for it, without importing importlib.resources
    (with tempfile, zipfile and random): that costs a packaged run, which
    reads its configuration here, about a twentieth of its time. Packages in
    archives and namespace packages go through importlib.resources.
    """
    spec = importlib.util.find_spec(package)
    loader = spec.loader if spec is not None else None
    on_disk = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)
    if spec is not None and spec.submodule_search_locations and isinstance(loader, on_disk):
        return Path(loader.path).parent
    from importlib.resources import files as resource_files

    return resource_files(package)


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
