"""``kilnflow package``: the project's wheel, ready for ``pip install``."""

from __future__ import annotations

from pathlib import Path

import click

from kilnflow.project import bootstrap_here

__all__ = ["package"]


@click.command()
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write the wheel (default: the project's dist/).",
)
@click.option(
    "--isolated",
    is_flag=True,
    help="Build with 'python -m build' in an isolated environment (needs the index).",
)
@click.option(
    "--wheelhouse",
    is_flag=True,
    help="Also write the wheel and every runtime dependency's wheel to <output-dir>/wheelhouse "
    "(for offline installs and container builds; pip's index settings apply).",
)
def package(output_dir: Path | None, isolated: bool, wheelhouse: bool) -> None:
    """Build the project's wheel: code, settings, pipelines and conf (no secrets)."""
    from kilnflow.packaging import package_project, write_wheelhouse

    metadata = bootstrap_here()
    wheel = package_project(metadata.project_path, output_dir, isolated=isolated)
    click.echo(f"Built {wheel}")
    if wheelhouse:
        house = write_wheelhouse(wheel)
        count = len(list(house.glob("*.whl")))
        click.echo(
            f"Wrote {house} ({count} wheels): pip install --no-index --find-links {house} "
            f"-r {house / 'requirements.txt'}"
        )
    click.echo(f"Install it anywhere: pip install {wheel}")
    click.echo(
        f"Then run: python -m {metadata.package_name} (options as for 'kilnflow run', "
        "e.g. --env, --params, --conf-source)"
    )
