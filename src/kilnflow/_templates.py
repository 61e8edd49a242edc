"""The one template renderer behind every file Kilnflow generates.

The project starter, the packaged ``__main__``, the Airflow DAG and the
Dockerfile all render through here, so they share one set of rules: a
variable a template uses but nobody passes is an error (never an empty
string in a generated file), trailing newlines are kept, nothing is
HTML-escaped (the outputs are Python, YAML and Dockerfiles), and
``| pyrepr`` writes a value as a Python literal. jinja2 is imported here
and nowhere else, only when something is rendered.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kilnflow._resources import templates

if TYPE_CHECKING:
    import jinja2

__all__ = ["render_template", "render_text"]


@functools.cache
def _environment() -> jinja2.Environment:
    import jinja2

    environment = jinja2.Environment(
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False
    )
    environment.filters["pyrepr"] = repr
    return environment


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """Render template text (a file's content or a templated file name)."""
    return _environment().from_string(source).render(context)


def render_template(name: str, context: Mapping[str, Any]) -> str:
    """Render ``templates/<name>``, for example ``docker/Dockerfile.jinja``."""
    return render_text((templates() / name).read_text("utf-8"), context)
