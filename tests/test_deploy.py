"""Deployment artefacts: task grouping, generated Airflow DAGs and Dockerfiles."""

from __future__ import annotations

import ast
import os
import re
import subprocess

import pytest

from conftest import fresh_venv, outside_environment, run_cli
from kilnflow.deploy import group_nodes
from kilnflow.errors import PackagingError
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


def test_docker_init_writes_a_slim_non_root_wheel_only_image(make_project):
    root = make_project()
    result = run_cli("docker", "init", "--python-version", "3.12", cwd=root)
    assert "Wrote" in result.stdout
    dockerfile = (root / "Dockerfile").read_text()
    ignore = (root / ".dockerignore").read_text().splitlines()

    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", dockerfile, flags=re.MULTILINE)
    assert stages == [
        ("python:${PYTHON_VERSION}-slim", "build"),
        ("python:${PYTHON_VERSION}-slim", ""),
    ]
    assert "ARG PYTHON_VERSION=3.12" in dockerfile
    final_stage = dockerfile.split("FROM python:${PYTHON_VERSION}-slim\n")[1]
    assert "COPY . ." not in final_stage
    assert "USER kilnflow" in final_stage
    assert final_stage.strip().endswith('ENTRYPOINT ["python", "-m", "demo"]')
    for documented in ("--env prod", "--params", "--conf-source /conf", "-e DB_PASSWORD"):
        assert documented in dockerfile
    for excluded in ("conf/local/", "**/credentials*", "data/", ".venv/", ".git/"):
        assert excluded in ignore

    again = run_cli("docker", "init", cwd=root, check=False)
    assert again.returncode == 1
    assert "--force" in again.stderr


@pytest.mark.slow
def test_dockerfile_commands_work_in_a_fresh_venv(make_project, tmp_path, wheelhouse):
    """No container engine here: run the Dockerfile's own build and install steps."""
    root = make_project()
    run_cli("docker", "init", cwd=root)
    dockerfile = (root / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+)$", dockerfile, flags=re.MULTILINE)
    assert "python -m build --wheel --outdir /dist ." in runs
    assert any(
        run.startswith("python -m pip install --no-cache-dir /tmp/dist/*.whl") for run in runs
    )

    builder = fresh_venv(tmp_path / "build-stage", wheelhouse, "build")
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    subprocess.run(
        [
            str(builder / "python"),
            "-m",
            "build",
            "--wheel",
            "--outdir",
            str(tmp_path / "dist"),
            ".",
        ],
        cwd=root,
        env={**os.environ, **offline},
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("demo-*.whl")
    runtime = fresh_venv(tmp_path / "final-stage", wheelhouse, str(wheel))
    work = tmp_path / "work" / "data" / "raw"
    work.mkdir(parents=True)
    (work / "readings.json").write_bytes((root / "data" / "raw" / "readings.json").read_bytes())
    environment = outside_environment()
    result = subprocess.run(
        [str(runtime / "python"), "-m", "demo", "--params", "min_valid=11"],
        cwd=tmp_path / "work",
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "work" / "data" / "reporting" / "report.txt").read_text()
    assert "north" in report
    assert "east" not in report
