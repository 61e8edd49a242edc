"""``kilnflow new``: start a project from the starter template."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["new"]


@click.command()
@click.argument("name")
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to create (default: ./NAME). It must not exist or be empty.",
)
@click.option(
    "--example/--no-example",
    default=True,
    show_default=True,
    help="Include the example pipeline and its data.",
)
def new(name: str, directory: Path | None, example: bool) -> None:
    """Create project NAME; its package is NAME with dashes as underscores."""
    from kilnflow.project import create_project

    target = create_project(name, directory, example=example)
    click.echo(f"Created {target}")
    click.echo(f"Next: cd {target} && kilnflow run")
