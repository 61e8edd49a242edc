"""``kilnflow airflow create`` and ``kilnflow docker init``."""

from __future__ import annotations

from pathlib import Path

import click

from kilnflow.cli._run import invoked_args
from kilnflow.project import bootstrap_here

__all__ = ["airflow", "docker"]


@click.group()
def airflow() -> None:
    """Deploy the project's wheel as an Airflow DAG."""


@airflow.command("create")
@click.option("-p", "--pipeline", "pipeline_name", default="__default__", show_default=True)
@click.option("-e", "--env", help="Configuration environment the tasks run with.")
@click.option(
    "--group-by",
    type=click.Choice(["memory", "none"]),
    default="memory",
    show_default=True,
    help="memory: nodes linked by memory datasets share a task; none: a task per node.",
)
@click.option(
    "--target-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("airflow_dags"),
    show_default=True,
)
@click.option("--schedule", help="Airflow schedule (cron or preset); default from airflow.yml.")
@click.option("--conf-source", help="Configuration the tasks read instead of the packaged one.")
@click.pass_context
def create(
    ctx: click.Context,
    /,
    pipeline_name: str,
    env: str | None,
    group_by: str,
    target_dir: Path,
    schedule: str | None,
    conf_source: str | None,
) -> None:
    """Write <target-dir>/<package>_<pipeline>_dag.py for Airflow 3."""
    import shlex

    from kilnflow.deploy.airflow import create_dag

    metadata = bootstrap_here()
    target = create_dag(
        pipeline_name,
        env=env,
        group_by=group_by,
        target_dir=target_dir,
        schedule=schedule,
        conf_source=conf_source,
        command=shlex.join(["kilnflow", *invoked_args(ctx)]),
    )
    click.echo(f"Wrote {target}")
    click.echo(
        f"Install the wheel on the Airflow workers (kilnflow package; pip install "
        f"dist/{metadata.package_name}-*.whl) and put the DAG file in the DAGs folder."
    )


@click.group()
def docker() -> None:
    """Container images that install only the project's wheel."""


@docker.command("init")
@click.option("--python-version", help="Python of the base image (default: this Python's).")
@click.option("--force", is_flag=True, help="Replace an existing Dockerfile and .dockerignore.")
def init(python_version: str | None, force: bool) -> None:
    """Write a multi-stage Dockerfile and a .dockerignore into the project."""
    from kilnflow.deploy.docker import init_docker

    metadata = bootstrap_here()
    for path in init_docker(
        metadata.project_path, metadata.package_name, python_version=python_version, force=force
    ):
        click.echo(f"Wrote {path}")
    click.echo(
        "Build offline: kilnflow package --wheelhouse && docker build --network=none "
        f"-t {metadata.package_name.replace('_', '-')} ."
    )
