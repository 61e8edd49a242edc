"""``kilnflow pipeline create`` and ``kilnflow pipeline delete``: a pipeline's files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kilnflow.project import bootstrap_here

if TYPE_CHECKING:
    from kilnflow.project import ProjectMetadata

__all__ = ["create_pipeline", "delete_pipeline"]


def _layout() -> tuple[ProjectMetadata, str, str]:
    """The project, its conf folder and base environment, as its settings say."""
    from kilnflow.project import settings

    metadata = bootstrap_here()
    base_env = str(dict(settings.CONFIG_LOADER_ARGS).get("base_env", "base"))
    return metadata, str(settings.CONF_SOURCE), base_env


@click.command("create")
@click.argument("name")
def create_pipeline(name: str) -> None:
    """Add pipeline NAME: nodes, pipeline, parameters file and a test."""
    from kilnflow.project._starter import create_pipeline_files

    metadata, conf_dir, base_env = _layout()
    for path in create_pipeline_files(metadata, name, conf_dir, base_env):
        click.echo(f"Created {path.relative_to(metadata.project_path)}")
    click.echo(f"Run it with: kilnflow run --pipeline {name}")


@click.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Delete without asking for confirmation.")
def delete_pipeline(name: str, yes: bool) -> None:
    """Delete pipeline NAME: its folder, parameters file and test."""
    import shutil

    from kilnflow.errors import ProjectError, did_you_mean
    from kilnflow.project._starter import pipeline_files

    metadata, conf_dir, base_env = _layout()
    paths = [path for path in pipeline_files(metadata, name, conf_dir, base_env) if path.exists()]
    folder = metadata.source_dir / metadata.package_name / "pipelines"
    if not (folder / name).is_dir():
        known = sorted(
            entry.name
            for entry in (folder.iterdir() if folder.is_dir() else ())
            if entry.is_dir() and (entry / "__init__.py").is_file()
        )
        raise ProjectError(
            f"No pipeline {name!r} in {folder}.{did_you_mean(name, known)} Pipelines there: "
            f"{', '.join(known) or 'none'}."
        )
    listing = "\n".join(f"  {path.relative_to(metadata.project_path)}" for path in paths)
    if not yes:
        click.confirm(
            f"Delete pipeline {name!r}, that is:\n{listing}\nProceed?", abort=True, err=True
        )
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    click.echo(f"Deleted pipeline {name!r}:\n{listing}")
