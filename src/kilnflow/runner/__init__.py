"""Runners: schedule a pipeline's nodes against a data catalog.

Every runner shares one scheduling loop (:class:`AbstractRunner`); a runner
only chooses the executor that nodes are submitted to.
"""

from __future__ import annotations

from kilnflow.runner._base import AbstractRunner, run_node
from kilnflow.runner._sequential import SequentialRunner

__all__ = ["AbstractRunner", "SequentialRunner", "run_node"]
