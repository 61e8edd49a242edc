"""The viewer page: one self-contained HTML file, its script and style inlined.

Nothing is fetched from the network: ``templates/viz`` holds the page, its
style and its script (Kilnflow's own code), and the view model is embedded
as JSON, so the file opens offline, from an e-mail or an artefact store.
The page is filled with the standard library's ``string.Template``, not the
jinja2 renderer that build-time files use: the viewer runs where an installed
project runs, and jinja2 belongs to the ``build`` extra only.
"""

from __future__ import annotations

import html
import json
from string import Template
from typing import Any

__all__ = ["render_page"]


def _embedded_json(model: dict[str, Any]) -> str:
    """JSON that cannot end its ``<script>`` element early, whatever names it holds."""
    text = json.dumps(model, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(model: dict[str, Any]) -> str:
    """The complete HTML page showing ``model`` (a :meth:`ViewSource.view`)."""
    from kilnflow._resources import templates

    folder = templates() / "viz"
    title = f"{model['project']['package']} · {model['pipeline']}"
    # Values are inserted as they are: nothing in the script or style is substituted.
    return Template((folder / "viewer.html").read_text("utf-8")).substitute(
        title=html.escape(title),
        style=(folder / "viewer.css").read_text("utf-8"),
        script=(folder / "viewer.js").read_text("utf-8"),
        model=_embedded_json(model),
    )
