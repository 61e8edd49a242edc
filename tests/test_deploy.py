"""Deployment artefacts: task grouping, generated Airflow DAGs and Dockerfiles."""

from __future__ import annotations

import ast
import datetime
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import data_folder, run_cli
from kilnflow.deploy import group_nodes
from kilnflow.errors import NodeFailedError, PackagingError
from kilnflow.pipeline import Pipeline, node


def step(*values: int) -> int:
    return sum(values)


def memory(*names: str):  # type: ignore[no-untyped-def]
    return lambda name: name in names


def as_tuples(pipeline: Pipeline, is_memory, by: str = "memory"):  # type: ignore[no-untyped-def]
    return [(task.name, task.nodes, task.upstream) for task in group_nodes(pipeline, is_memory, by)]


def test_nodes_linked_by_memory_share_a_task():
    pipe = Pipeline(
        [
            node(step, "raw", "m1", name="a"),
            node(step, "m1", "f1", name="b"),
            node(step, "f1", "m2", name="c"),
            node(step, "m2", "out", name="d"),
        ]
    )
    assert as_tuples(pipe, memory("m1", "m2")) == [
        ("a__b", ["a", "b"], []),
        ("c__d", ["c", "d"], ["a__b"]),
    ]


def test_persisted_links_make_separate_tasks_with_dependencies():
    pipe = Pipeline(
        [
            node(step, "raw", "f1", name="a"),
            node(step, "raw", "f2", name="b"),
            node(step, ["f1", "f2"], "f3", name="c"),
        ]
    )
    assert as_tuples(pipe, memory()) == [
        ("a", ["a"], []),
        ("b", ["b"], []),
        ("c", ["c"], ["a", "b"]),
    ]


def test_groups_that_would_form_a_cycle_are_merged():
    # a -> (memory) -> c, and a -> (file) -> b -> (file) -> c: grouping a with c
    # would put b both after and before that task, so all three share one.
    pipe = Pipeline(
        [
            node(step, "raw", ["m", "f1"], name="a"),
            node(step, "f1", "f2", name="b"),
            node(step, ["m", "f2"], "out", name="c"),
            node(step, "out", "final", name="d"),
        ]
    )
    tasks = as_tuples(pipe, memory("m"))
    assert tasks == [("a__b__c", ["a", "b", "c"], []), ("d", ["d"], ["a__b__c"])]


def test_group_by_none_refuses_memory_between_tasks():
    pipe = Pipeline([node(step, "raw", "m", name="a"), node(step, "m", "out", name="b")])
    with pytest.raises(PackagingError) as caught:
        group_nodes(pipe, memory("m"), by="none")
    message = str(caught.value)
    assert "Dataset 'm' passes from node 'a' to node 'b' in memory" in message
    assert "--group-by memory" in message
    assert as_tuples(pipe, memory(), by="none") == [("a", ["a"], []), ("b", ["b"], ["a"])]


def test_unknown_grouping_is_refused():
    with pytest.raises(PackagingError, match="use one of memory, none"):
        group_nodes(Pipeline([]), memory(), by="layer")


def test_task_names_are_airflow_safe_and_unique():
    pipe = Pipeline(
        [
            node(step, "raw", "x", name="load data!"),
            node(step, "raw", "y", name="load data?"),
        ]
    )
    names = [task.name for task in group_nodes(pipe, memory(), "none")]
    assert names == ["load_data", "load_data_2"]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name in names)


def test_airflow_create_writes_an_airflow3_dag(make_project):
    root = make_project()
    (root / "conf" / "base" / "airflow.yml").write_text(
        "schedule: '@daily'\nstart_date: 2025-03-01\ntags: [sensors]\n"
        "default_args: {retries: 2, retry_delay: 300, owner: data}\n"
    )
    result = run_cli("airflow", "create", "--env", "local", cwd=root)
    dag_file = root / "airflow_dags" / "demo_default_dag.py"
    assert "Wrote airflow_dags/demo_default_dag.py" in result.stdout
    source = dag_file.read_text()
    tree = ast.parse(source)

    imports = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("airflow.sdk", "dag") in imports
    assert ("airflow.sdk", "task") in imports
    assert not any(
        module.startswith(("airflow.operators", "airflow.decorators")) for module, _ in imports
    )
    for removed in ("schedule_interval", "days_ago", "provide_context", "airflow.models.DAG"):
        assert removed not in source
    assert "bootstrap_project" not in source
    assert "os.getcwd" not in source
    assert "__file__" not in source

    assert "schedule='@daily'" in source
    assert "datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)" in source
    assert "tags=['sensors']" in source
    assert "'retry_delay': datetime.timedelta(seconds=300)" in source
    assert "ENV = 'local'" in source
    assert "@task(task_id='clean__summarise')" in source
    assert "run_nodes(['clean', 'summarise'])" in source
    assert "@task(task_id='report')" in source
    assert "task_1_done >> task_2_done" in source


def test_airflow_create_group_by_none_error_and_schedule_option(make_project):
    root = make_project()
    failed = run_cli("airflow", "create", "--group-by", "none", cwd=root, check=False)
    assert failed.returncode == 1
    assert "Dataset 'clean_readings' passes from node 'clean' to node 'summarise'" in failed.stderr
    assert not (root / "airflow_dags").exists()

    (root / "conf" / "base" / "catalog.yml").write_text(
        (root / "conf" / "base" / "catalog.yml").read_text()
        + "\nclean_readings:\n  type: PickleDataset\n  filepath: data/clean.pkl\n"
    )
    run_cli(
        "airflow",
        "create",
        "--group-by",
        "none",
        "--schedule",
        "0 3 * * *",
        "--target-dir",
        "dags",
        cwd=root,
    )
    source = (root / "dags" / "demo_default_dag.py").read_text()
    assert source.count("@task(") == 3
    assert "schedule='0 3 * * *'" in source


def test_airflow_yml_unknown_key_is_named(make_project):
    root = make_project()
    (root / "conf" / "base" / "airflow.yml").write_text("shedule: '@daily'\n")
    failed = run_cli("airflow", "create", cwd=root, check=False)
    assert failed.returncode == 1
    assert "unknown keys shedule" in failed.stderr


def test_docker_init_writes_an_offline_any_uid_wheelhouse_image(make_project):
    root = make_project()
    result = run_cli("docker", "init", "--python-version", "3.12", cwd=root)
    assert "Wrote" in result.stdout
    assert "kilnflow package --wheelhouse && docker build --network=none -t demo ." in result.stdout
    dockerfile = (root / "Dockerfile").read_text()
    ignore = [line for line in (root / ".dockerignore").read_text().splitlines() if line[:1] != "#"]

    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", dockerfile, flags=re.MULTILINE)
    assert stages == [
        ("python:${PYTHON_VERSION}-slim", "install"),
        ("python:${PYTHON_VERSION}-slim", "runtime"),
        ("scratch", ""),
    ]
    assert "ARG PYTHON_VERSION=3.12" in dockerfile
    assert "COPY dist/wheelhouse/ /wheelhouse/" in dockerfile
    assert '--no-index"; fi' in dockerfile
    assert "--requirement /wheelhouse/requirements.txt" in dockerfile
    assert "ARG INDEX_URL" in dockerfile
    assert "COPY . ." not in dockerfile
    final_stage = dockerfile.split("FROM scratch\n")[1]
    assert "USER 10001:10001" in final_stage
    assert "KILNFLOW_HOME=/sessions" in final_stage
    assert 'ENTRYPOINT ["python", "-m", "demo"]' in final_stage
    assert '--user "$(id -u):$(id -g)"' in dockerfile
    for missing_in_a_fresh_project in ("--env prod", "min_valid"):
        assert missing_in_a_fresh_project not in dockerfile
    assert ignore == ["*", "!dist/wheelhouse/"]

    again = run_cli("docker", "init", cwd=root, check=False)
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_airflow_yml_data_dir_reaches_the_dag_and_must_be_absolute(make_project):
    root = make_project()
    airflow_yml = root / "conf" / "base" / "airflow.yml"
    airflow_yml.write_text("data_dir: data\n")
    failed = run_cli("airflow", "create", cwd=root, check=False)
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        "Error: conf/base/airflow.yml: data_dir 'data' must be an absolute path on the "
        "Airflow workers, such as /srv/data/demo."
    )
    assert not (root / "airflow_dags").exists()
    airflow_yml.write_text("data_dir: /srv/data/demo\n")
    run_cli("airflow", "create", cwd=root)
    source = (root / "airflow_dags" / "demo_default_dag.py").read_text()
    assert "DATA_DIR = '/srv/data/demo'" in source
    assert "data_dir=DATA_DIR" in source


def airflow_context(run_id: str, task_id: str, try_number: int) -> dict[str, object]:
    """What ``get_current_context()`` gives a task, as far as ``run_task`` reads it."""
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    return {
        "run_id": run_id,
        "dag_run": SimpleNamespace(dag_id="demo_default", run_id=run_id, run_after=when),
        "ti": SimpleNamespace(task_id=task_id, try_number=try_number),
    }


def versioned_demo(make_project, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """The example project with a versioned station summary, importable as a package."""
    root = make_project()
    catalog = root / "conf" / "base" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace(
            "filepath: data/processed/station_summary.json",
            "filepath: data/processed/station_summary.json\n  versioned: true",
        )
    )
    monkeypatch.syspath_prepend(str(root / "src"))
    return root


def test_a_retried_task_replaces_its_dag_runs_version_and_downstream_reads_it(
    make_project, monkeypatch, tmp_path
):
    from kilnflow.deploy.airflow import run_task
    from kilnflow.session import Session

    root = versioned_demo(make_project, monkeypatch)
    work = data_folder(tmp_path / "work", root / "data" / "raw" / "readings.json")
    summary = work / "data" / "processed" / "station_summary.json"
    options = {"conf_source": str(root / "conf"), "data_dir": str(work)}
    monkeypatch.chdir(tmp_path)

    run_task("demo", "__default__", ["clean", "summarise"], **options,
             context=airflow_context("manual__1", "clean__summarise", 1))  # fmt: skip
    (version,) = summary.iterdir()
    first = json.loads((version / "station_summary.json").read_text())
    readings = work / "data" / "raw" / "readings.json"
    readings.write_text(json.dumps(json.loads(readings.read_text())[:2]))

    run_task("demo", "__default__", ["clean", "summarise"], **options,
             context=airflow_context("manual__1", "clean__summarise", 2))  # fmt: skip
    assert [path.name for path in summary.iterdir()] == [version.name]
    retried = json.loads((version / "station_summary.json").read_text())
    assert sorted(first) == ["east", "north", "south"]
    assert sorted(retried) == ["north"]
    run_task("demo", "__default__", ["report"], **options,
             context=airflow_context("manual__1", "report", 1))  # fmt: skip
    report = (work / "data" / "reporting" / "report.txt").read_text()
    assert "north    n=2" in report
    assert "south" not in report
    assert "KILNFLOW_DATA_DIR" not in os.environ
    assert not (tmp_path / "data").exists()

    run_task("demo", "__default__", ["clean", "summarise"], **options,
             context=airflow_context("manual__2", "clean__summarise", 1))  # fmt: skip
    assert len(list(summary.iterdir())) == 2
    assert json.loads((version / "station_summary.json").read_text()) == retried

    monkeypatch.setenv("KILNFLOW_DATA_DIR", str(work))
    from kilnflow.project import configure_project

    configure_project("demo")
    outside = Session.create(conf_source=str(root / "conf"), save_version=version.name)
    with outside, pytest.raises(NodeFailedError, match="versions are never overwritten"):
        outside.run(node_names=["clean", "summarise"])
    assert json.loads((version / "station_summary.json").read_text()) == retried
