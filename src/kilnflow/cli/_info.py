"""``kilnflow info``, ``kilnflow pipeline`` and ``kilnflow catalog``."""

from __future__ import annotations

import platform
from pathlib import Path

import click

from kilnflow._version import __version__
from kilnflow.cli._pipeline import create_pipeline, delete_pipeline
from kilnflow.project import bootstrap_here

__all__ = ["catalog", "info", "pipeline"]

#: Entry-point group under which packaged projects announce themselves.
PROJECTS_GROUP = "kilnflow.projects"


@click.command()
@click.option("--installed", is_flag=True, help="Also list Kilnflow projects installed here.")
def info(installed: bool) -> None:
    """Show Kilnflow's version, the project in this folder and installed projects."""
    from kilnflow.errors import KilnflowError
    from kilnflow.project import find_project_root, pipelines

    click.echo(f"Kilnflow {__version__} (Python {platform.python_version()})")
    root = find_project_root(Path.cwd())
    if root is not None:
        metadata = bootstrap_here()
        click.echo(f"Project:  {metadata.project_name} ({metadata.project_path})")
        click.echo(f"Package:  {metadata.package_name} (source: {metadata.source_dir})")
        try:
            names = ", ".join(sorted(pipelines)) or "none"
        except KilnflowError as exc:
            names = f"cannot be loaded: {exc}"
        click.echo(f"Pipelines: {names}")
    else:
        click.echo("No project in this folder or its parents.")
    if installed:
        click.echo("Installed projects:")
        found = installed_projects()
        for name, version in found:
            click.echo(f"  {name} {version}  (run: python -m {name})")
        if not found:
            click.echo("  none")


def installed_projects() -> list[tuple[str, str]]:
    """Packaged projects in this environment, by their ``kilnflow.projects`` entry point."""
    from kilnflow._entry_points import entry_points_of

    return sorted({(entry.name, version) for _, version, entry in entry_points_of(PROJECTS_GROUP)})


@click.group()
def pipeline() -> None:
    """Inspect, create and delete the project's pipelines."""


@pipeline.command("list")
def list_pipelines() -> None:
    """List registered pipelines with their node counts."""
    from kilnflow.project import pipelines

    bootstrap_here()
    for name in sorted(pipelines):
        click.echo(f"{name}  ({len(pipelines[name].nodes)} nodes)")


@pipeline.command("describe")
@click.argument("name", default="__default__")
@click.option(
    "-f",
    "--format",
    "format_name",
    type=click.Choice(["text", "json", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="text: nodes in run order; json: the graph; mermaid or dot: a picture to paste.",
)
def describe_pipeline(name: str, format_name: str) -> None:
    """Show a pipeline's nodes in the order they run, with inputs and outputs."""
    from kilnflow.project import get_pipeline
    from kilnflow.viz import describe, pipeline_graph

    bootstrap_here()
    click.echo(describe(pipeline_graph(get_pipeline(name), name), format_name))


pipeline.add_command(create_pipeline)
pipeline.add_command(delete_pipeline)


@click.group()
def catalog() -> None:
    """Inspect the project's data catalog."""


@catalog.command("list")
@click.option("-e", "--env", help="Configuration environment.")
@click.option("-p", "--pipeline", "pipeline_name", help="Only datasets of this pipeline.")
def list_datasets(env: str | None, pipeline_name: str | None) -> None:
    """List datasets with their types; undeclared ones are in memory."""
    from kilnflow.project import get_pipeline, pipelines
    from kilnflow.session import Session

    bootstrap_here()
    with Session.create(env=env, save_on_close=False) as session:
        data_catalog = session.load_context().catalog
        if pipeline_name:
            names = sorted(get_pipeline(pipeline_name).datasets())
        else:
            used = {name for registered in pipelines.values() for name in registered.datasets()}
            names = sorted(used | set(data_catalog.list()))
        for name in names:
            if name.startswith("params:") or name == "parameters":
                continue
            kind = data_catalog.type_of(name) or "MemoryDataset (undeclared)"
            click.echo(f"{name}: {kind}")
