"""See pipelines and runs: the HTML viewer, its server and pipeline descriptions.

A layer between the command line and the rest: it reads projects, pipelines,
catalogs and session stores, and nothing but the CLI imports it.
"""

from __future__ import annotations

from kilnflow.viz._formats import FORMATS, describe
from kilnflow.viz._graph import pipeline_graph
from kilnflow.viz._page import render_page
from kilnflow.viz._server import serve
from kilnflow.viz._view import ViewSource

__all__ = ["FORMATS", "ViewSource", "describe", "pipeline_graph", "render_page", "serve"]


def __dir__() -> list[str]:
    return __all__
