"""Nodes, pipelines and namespaces: the pure description of a project's work.

Nothing here does I/O or reads configuration; runners and sessions turn these
descriptions into runs. Only :mod:`kilnflow.errors` is imported from Kilnflow.
"""

from __future__ import annotations

from kilnflow.pipeline._modular import pipeline
from kilnflow.pipeline._node import Node, node
from kilnflow.pipeline._pipeline import Pipeline

__all__ = ["Node", "Pipeline", "node", "pipeline"]


def __dir__() -> list[str]:
    return __all__
