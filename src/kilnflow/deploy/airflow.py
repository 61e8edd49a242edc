"""Airflow deployment: DAG files for a project, and the helper their tasks call.

``create_dag`` runs in a project (``kilnflow airflow create``) and renders
``templates/airflow/dag.py.jinja``. The DAG's tasks call :func:`run_task` on
the Airflow worker, where only the project's wheel is installed: it
configures the package (packaged mode), opens a session that records the
DAG run, and runs the task's nodes with the save version of that DAG run.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kilnflow.errors import ConfigError, PackagingError

if TYPE_CHECKING:
    from kilnflow.deploy._grouping import Task
    from kilnflow.io import DataCatalog

__all__ = ["AIRFLOW_PATTERNS", "create_dag", "dag_run_version", "run_task"]

#: Files of ``conf/<env>/`` that configure the generated DAG.
AIRFLOW_PATTERNS = ["airflow*", "airflow*/**"]
_DAG_KEYS = {
    "schedule",
    "start_date",
    "catchup",
    "tags",
    "default_args",
    "max_active_runs",
    "data_dir",
}
_SECONDS_ARGS = ("retry_delay", "execution_timeout", "max_retry_delay")


def create_dag(
    pipeline_name: str = "__default__",
    *,
    env: str | None = None,
    group_by: str = "memory",
    target_dir: str | Path = "airflow_dags",
    schedule: str | None = None,
    conf_source: str | None = None,
    command: str = "kilnflow airflow create",
) -> Path:
    """Write the DAG file for a pipeline of the configured project; return its path."""
    from kilnflow._build_tools import missing_build_tools
    from kilnflow._templates import render_template
    from kilnflow._version import __version__
    from kilnflow.deploy._grouping import group_nodes
    from kilnflow.project import get_pipeline, package_name

    problem = missing_build_tools("kilnflow airflow create", "jinja2")
    if problem:
        raise PackagingError(problem)
    package = package_name()
    pipeline = get_pipeline(pipeline_name)
    settings, catalog = _airflow_conf_and_catalog(env)
    tasks = group_nodes(pipeline, catalog.is_memory, by=group_by)
    _check_dag_keys(settings, env)
    pipeline_label = "default" if pipeline_name == "__default__" else pipeline_name
    dag_id = _identifier(f"{package}_{pipeline_label}")
    rendered = render_template(
        "airflow/dag.py.jinja",
        {
            "package": package,
            "pipeline_name": pipeline_name,
            "dag_id": dag_id,
            "function_name": dag_id,
            "env": env,
            "conf_source": conf_source,
            "data_dir": _data_dir(settings.get("data_dir"), env),
            **_dag_arguments(settings, package, schedule),
            **_task_arguments(tasks),
            "kilnflow_version": __version__,
            "command": command,
        },
    )
    target = Path(target_dir) / f"{package}_{_identifier(pipeline_label)}_dag.py"
    from kilnflow._atomic import atomic_write

    with atomic_write(target, "w") as file:
        file.write(rendered)
    return target


def _airflow_conf_and_catalog(env: str | None) -> tuple[dict[str, Any], DataCatalog]:
    """The ``airflow*`` configuration of ``env``, and the catalog that says which data is memory."""
    from kilnflow.session import Session

    with Session.create(env=env, save_on_close=False) as session:
        context = session.load_context()
        context.config_loader.config_patterns.setdefault("airflow", AIRFLOW_PATTERNS)
        return dict(context.config_loader["airflow"]), context.catalog


def _check_dag_keys(settings: Mapping[str, Any], env: str | None) -> None:
    unknown = sorted(set(settings) - _DAG_KEYS)
    if unknown:
        raise ConfigError(
            f"conf/{env or 'base'}/airflow.yml: unknown keys {', '.join(unknown)}; "
            f"use {', '.join(sorted(_DAG_KEYS))}."
        )


def _dag_arguments(
    settings: Mapping[str, Any], package: str, schedule: str | None
) -> dict[str, Any]:
    """The DAG's own arguments: ``schedule`` given on the command line wins over airflow.yml."""
    return {
        "schedule": schedule if schedule is not None else settings.get("schedule"),
        "start_date": _start_date(settings.get("start_date")),
        "catchup": bool(settings.get("catchup", False)),
        "tags": list(settings.get("tags", ["kilnflow", package])),
        "default_args": _default_args(settings.get("default_args", {})),
        "dag_args": {k: settings[k] for k in ("max_active_runs",) if k in settings},
    }


def _task_arguments(tasks: Sequence[Task]) -> dict[str, Any]:
    """Tasks as the template writes them, each bound to a Python variable ``task_<n>``."""
    variables = {task.name: f"task_{index}" for index, task in enumerate(tasks, start=1)}
    return {
        "tasks": [
            {
                "name": task.name,
                "variable": variables[task.name],
                "nodes": task.nodes,
                "upstream": task.upstream,
            }
            for task in tasks
        ],
        "variables": variables,
    }


def _identifier(text: str) -> str:
    cleaned = re.sub(r"\W+", "_", text).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"dag_{cleaned}"


def _data_dir(value: Any, env: str | None) -> str | None:
    """The workers' data folder from airflow.yml: absolute, since workers run anywhere."""
    if value is None:
        return None
    if not isinstance(value, str) or not os.path.isabs(value):
        raise ConfigError(
            f"conf/{env or 'base'}/airflow.yml: data_dir {value!r} must be an absolute path "
            "on the Airflow workers, such as /srv/data/demo."
        )
    return value


def _start_date(value: Any) -> datetime.date:
    if value is None:
        return datetime.date(2024, 1, 1)
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ConfigError(
            f"airflow.yml: start_date {value!r} is not a date; write it as 2024-01-01."
        ) from None


def _default_args(values: Mapping[str, Any]) -> str:
    """Python source for ``default_args``; durations in seconds become timedeltas."""
    if not isinstance(values, Mapping):
        raise ConfigError("airflow.yml: default_args must be a mapping, e.g. {retries: 2}.")
    items = []
    for key, value in sorted(values.items()):
        if key in _SECONDS_ARGS and isinstance(value, (int, float)):
            items.append(f"{key!r}: datetime.timedelta(seconds={value!r})")
        else:
            items.append(f"{key!r}: {value!r}")
    return "{" + ", ".join(items) + "}"


def dag_run_version(run_id: str, when: datetime.datetime | None) -> str:
    """The save version every task of one DAG run shares.

    Shaped like a session id (UTC time first, so versions sort by run time,
    then a digest of the run id) so it is unique per run and file-name safe.
    """
    moment = (when or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{moment:%Y%m%dT%H%M%S.%fZ}-{digest}"


def run_task(
    package: str,
    pipeline_name: str,
    node_names: Sequence[str],
    *,
    env: str | None = None,
    conf_source: str | None = None,
    data_dir: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Run ``node_names`` of an installed package's pipeline as one Airflow task.

    Every task of a DAG run saves versioned datasets under the DAG run's
    version, and may replace what an earlier try of the same DAG run saved
    there: Airflow retries and clears repeat a task, and its downstream
    tasks must read the repeated output. Other DAG runs, and sessions
    outside Airflow, save under versions of their own, never overwritten.
    ``data_dir`` (``KILNFLOW_DATA_DIR`` for the task) anchors relative
    catalog paths, since a worker's working directory is not the user's.
    """
    from kilnflow.project import configure_project
    from kilnflow.session import DATA_DIR_ENV, Session

    configure_project(package)
    airflow = _airflow_record(context or {})
    run_id = airflow.get("run_id")
    when = airflow.pop("_when", None)
    save_version = dag_run_version(str(run_id), when) if run_id else None
    with contextlib.ExitStack() as stack:
        if data_dir is not None:
            stack.enter_context(_environment(DATA_DIR_ENV, data_dir))
        session = stack.enter_context(
            Session.create(
                env=env,
                conf_source=conf_source,
                save_version=save_version,
                overwrite_save_version=save_version is not None,
            )
        )
        session.store["airflow"] = airflow
        session.run(pipeline_name, node_names=list(node_names))


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Set one environment variable for a task; ``dag.test()`` runs tasks in-process."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def _airflow_record(context: Mapping[str, Any]) -> dict[str, Any]:
    """What a session keeps of the Airflow task context."""
    dag_run = context.get("dag_run")
    task_instance = context.get("ti") or context.get("task_instance")
    when = None
    for attribute in ("run_after", "logical_date", "start_date"):
        when = when or getattr(dag_run, attribute, None)
    return {
        "dag_id": getattr(dag_run, "dag_id", None),
        "run_id": context.get("run_id") or getattr(dag_run, "run_id", None),
        "task_id": getattr(task_instance, "task_id", None),
        "try_number": getattr(task_instance, "try_number", None),
        "_when": when if isinstance(when, datetime.datetime) else None,
    }


def __dir__() -> list[str]:
    return __all__
