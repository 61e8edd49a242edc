"""``kilnflow viz``: the pipeline and its latest run as one HTML file, or served live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kilnflow.viz import ViewSource

__all__ = ["viz"]

DEFAULT_PORT = 4141


@click.command()
@click.option(
    "-p", "--pipeline", "pipeline_name", help="A registered pipeline (default: __default__)."
)
@click.option(
    "--session",
    "session_id",
    help="Colour nodes by this recorded run (a unique id prefix); default: the pipeline's latest.",
)
@click.option("-e", "--env", help="Configuration environment the catalog is read with.")
@click.option("--package", help="An installed project's package: no project folder needed.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the viewer to this self-contained HTML file.",
)
@click.option("--serve", is_flag=True, help="Serve the viewer on 127.0.0.1, reloading on changes.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help=f"Port for --serve (default {DEFAULT_PORT}; 0 picks a free one).",
)
def viz(
    pipeline_name: str | None,
    session_id: str | None,
    env: str | None,
    package: str | None,
    output: Path | None,
    serve: bool,
    port: int | None,
) -> None:
    """Draw a pipeline with its datasets, namespaces, tags and the outcome of a run."""
    from kilnflow.viz import render_page
    from kilnflow.viz import serve as serve_viewer

    if serve == (output is not None):
        raise click.UsageError(
            "Pass --output FILE to write the viewer to a file, or --serve to serve it."
        )
    if port is not None and not serve:
        raise click.UsageError("--port applies only with --serve.")
    source = _source(package, env)
    if serve:
        if pipeline_name or session_id:
            raise click.UsageError(
                "--pipeline and --session are chosen in the served page; drop them with --serve."
            )
        serve_viewer(source, DEFAULT_PORT if port is None else port, announce=click.echo)
        return
    assert output is not None
    model = source.view(pipeline_name, session_id)
    _write(output, render_page(model))
    shown = (
        f"run {model['run']['session_id']} ({model['run']['outcome']})"
        if model["run"]
        else "no run"
    )
    click.echo(
        f"Wrote {output}: pipeline {model['pipeline']}, {len(model['nodes'])} nodes, {shown}."
    )


def _source(package: str | None, env: str | None) -> ViewSource:
    from kilnflow.errors import ProjectError
    from kilnflow.project import find_project_root
    from kilnflow.viz import ViewSource

    if package is not None:
        return ViewSource(package=package, env=env)
    root = find_project_root(Path.cwd())
    if root is None:
        raise ProjectError(
            f"No Kilnflow project in {Path.cwd()} or its parents: cd into a project, or pass "
            "--package NAME to view an installed project."
        )
    return ViewSource(project_path=root, env=env)


def _write(target: Path, text: str) -> None:
    """Write ``text`` whole or not at all: a half-written page would only mislead."""
    from kilnflow._atomic import atomic_write

    if not target.parent.is_dir():
        raise click.BadParameter(
            f"folder {target.parent} does not exist; create it or write elsewhere.",
            param_hint="'--output'",
        )
    with atomic_write(target, "w") as file:
        file.write(text)
