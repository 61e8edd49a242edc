"""Deployment: Airflow DAGs and container images for packaged projects."""

from __future__ import annotations

from kilnflow.deploy._grouping import GROUP_BY, Task, group_nodes

__all__ = ["GROUP_BY", "Task", "group_nodes"]


def __dir__() -> list[str]:
    return __all__
