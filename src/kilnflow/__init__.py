"""Kilnflow: data-pipeline projects that run the same from source and as a wheel.

The public names below are imported on first use, so ``import kilnflow`` and
``kilnflow --help`` stay fast and load no heavy library. The modular
``pipeline()`` function is not among them: ``kilnflow.pipeline`` is the
subpackage, so import it from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kilnflow._lazy import lazy_names
from kilnflow._version import __version__

_LAZY = {
    "node": "kilnflow.pipeline",
    "Node": "kilnflow.pipeline",
    "Pipeline": "kilnflow.pipeline",
    "DataCatalog": "kilnflow.io",
    "ConfigLoader": "kilnflow.config",
    "hook_impl": "kilnflow.hooks",
    "SequentialRunner": "kilnflow.runner",
    "KilnflowError": "kilnflow.errors",
}

__all__ = [
    "ConfigLoader",
    "DataCatalog",
    "KilnflowError",
    "Node",
    "Pipeline",
    "SequentialRunner",
    "__version__",
    "hook_impl",
    "node",
]

if TYPE_CHECKING:
    from kilnflow.config import ConfigLoader
    from kilnflow.errors import KilnflowError
    from kilnflow.hooks import hook_impl
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline, node
    from kilnflow.runner import SequentialRunner


__getattr__ = lazy_names(__name__, _LAZY)


def __dir__() -> list[str]:
    # What tab completion and dir() offer: the public names, not imports and helpers.
    return __all__
