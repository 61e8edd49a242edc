"""Packaging: the hatchling build hook and ``kilnflow package``."""

from __future__ import annotations

from kilnflow.packaging._build import package_project, write_wheelhouse

__all__ = ["package_project", "write_wheelhouse"]


def __dir__() -> list[str]:
    return __all__
