"""The project's pipelines, by name."""

from kilnflow.pipeline import Pipeline
from kilnflow.project import find_pipelines


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline under ``pipelines/``; ``__default__`` runs them all."""
    return find_pipelines()
