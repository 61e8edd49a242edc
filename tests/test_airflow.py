"""A generated DAG run end to end by a real Apache Airflow 3 with the project's wheel installed.

Airflow lives in its own virtual environment, with a SQLite metadata
database under the test's temporary folder. Airflow itself comes from the
package index (it is far too large for the shared wheelhouse); Kilnflow and
the project come from the wheels this test session built. One test runs a
DAG in-process (``dag.test()``); another runs Airflow as it runs in
production, an API server, a DAG processor and a scheduler with the
LocalExecutor as separate processes, and retries a task.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import outside_environment, run_cli
from kilnflow.packaging import package_project

#: The Airflow release the deployment is tested against.
AIRFLOW_VERSION = "3.3.2"

CHECK_RUN = """
import json, runpy, sys
from airflow.models import TaskInstance
from airflow.utils.session import create_session

namespace = runpy.run_path(sys.argv[1])
run = namespace["demo_default_dag"].test()
with create_session() as session:
    rows = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id)
    states = {ti.task_id: str(ti.state) for ti in rows}
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "tasks": states}))
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory, wheelhouse, make_project_module):  # type: ignore[no-untyped-def]
    """An Airflow 3 venv with the example's wheel installed and a migrated SQLite database."""
    base = tmp_path_factory.mktemp("airflow")
    root = make_project_module(base)
    wheel = package_project(root, base / "dist")
    venv_dir = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    python = venv_dir / "bin" / "python"
    subprocess.run(
        [
            str(python), "-m", "pip", "install", "-q",
            "--find-links", str(wheelhouse),
            f"apache-airflow=={AIRFLOW_VERSION}", str(wheel),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    environment = outside_environment(
        AIRFLOW_HOME=str(base / "home"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "airflow_dags"),
        KILNFLOW_HOME=str(base / "kilnflow-home"),
    )
    subprocess.run(
        [str(venv_dir / "bin" / "airflow"), "db", "migrate"],
        env=environment,
        check=True,
        capture_output=True,
    )
    return root, python, environment


@pytest.fixture(scope="module")
def make_project_module():  # type: ignore[no-untyped-def]
    """The example project, with its station summary versioned."""
    from kilnflow.project import create_project

    def make(base: Path) -> Path:
        root = create_project("demo", base / "demo")
        catalog = root / "conf" / "base" / "catalog.yml"
        catalog.write_text(
            catalog.read_text().replace(
                "filepath: data/processed/station_summary.json",
                "filepath: data/processed/station_summary.json\n  versioned: true",
            )
        )
        run_cli("airflow", "create", cwd=root)
        return root

    return make


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_generated_dag_runs_in_airflow_under_one_run_id(airflow_home, tmp_path):
    root, python, environment = airflow_home
    work = tmp_path / "worker"
    (work / "data" / "raw").mkdir(parents=True)
    (work / "data" / "raw" / "readings.json").write_bytes(
        (root / "data" / "raw" / "readings.json").read_bytes()
    )
    dag_file = root / "airflow_dags" / "demo_default_dag.py"
    result = subprocess.run(
        [str(python), "-c", CHECK_RUN, str(dag_file)],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(lines[-1][len("RESULT ") :])
    assert outcome["state"].endswith("success")
    assert outcome["tasks"] == {"clean__summarise": "success", "report": "success"}

    report = (work / "data" / "reporting" / "report.txt").read_text()
    assert report.startswith("Station report")
    (version_dir,) = (work / "data" / "processed" / "station_summary.json").iterdir()
    assert (version_dir / "station_summary.json").is_file()

    database = Path(environment["KILNFLOW_HOME"]) / "sessions.db"
    records = [json.loads(row[0]) for row in metadata_rows(database, "SELECT record FROM sessions")]
    assert sorted(r["airflow"]["task_id"] for r in records) == ["clean__summarise", "report"]
    assert {r["airflow"]["run_id"] for r in records} == {outcome["run_id"]}
    assert {r["save_version"] for r in records} == {version_dir.name}
    assert all(r["outcome"] == "success" and r["mode"] == "packaged" for r in records)
    assert all(r["build"]["project_version"] == "0.1.0" for r in records)

    listing = subprocess.run(
        [str(python.parent / "kilnflow"), "session", "list", "--dag-run", outcome["run_id"]],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert listing.stdout.count(outcome["run_id"]) == 2


FLAKY_NODES = """
import os
from pathlib import Path


def produce():
    \"\"\"Save this attempt's number; the log file counts attempts across task processes.\"\"\"
    log = Path(os.environ["FLAKY_ATTEMPTS"])
    with log.open("a") as file:
        file.write("attempt\\n")
    attempt = len(log.read_text().splitlines())
    return {"attempt": attempt}, attempt


def check(attempt):
    if attempt == 1:
        raise RuntimeError("the first try fails after its versioned data was saved")
    return attempt


def consume(numbers):
    return {"read_attempt": numbers["attempt"]}
"""

FLAKY_PIPELINE = """
from kilnflow.pipeline import Pipeline, node

from .nodes import check, consume, produce


def create_pipeline():
    return Pipeline(
        [
            node(produce, None, ["numbers", "attempt"], name="produce"),
            node(check, "attempt", "checked", name="check"),
            node(consume, "numbers", "result", name="consume"),
        ]
    )
"""

FLAKY_CATALOG = """
numbers:
  type: JSONDataset
  filepath: data/numbers.json
  versioned: true

result:
  type: JSONDataset
  filepath: data/result.json
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def airflow_processes(
    airflow: Path, environment: dict[str, str], logs: Path, cwd: Path
) -> Iterator[None]:
    """api-server, dag-processor and scheduler, each its own process group, stopped by PID."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in (
            ("api-server", ["api-server"]),
            ("dag-processor", ["dag-processor"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
        ):
            with (logs / f"{name}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(
                        [str(airflow), *args],
                        cwd=cwd,
                        env=environment,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def wait_for(what: str, check, logs: Path, timeout: float = 300):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something truthy; fail with the Airflow logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        time.sleep(1)
    tails = "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs.glob("*.log")
    )
    raise AssertionError(f"Timed out waiting for {what}\n{tails}")


def metadata_rows(database: Path, query: str, *args: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(query, args).fetchall()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_scheduler_retries_a_task_that_saved_versioned_data(airflow_home, tmp_path):
    """A task saves versioned data, fails, and its retry replaces the data downstream reads."""
    from kilnflow.project import create_project

    _, python, _ = airflow_home
    root = create_project("flaky", tmp_path / "flaky", example=False)
    pipeline_dir = root / "src" / "flaky" / "pipelines" / "retry"
    pipeline_dir.mkdir(parents=True)
    (pipeline_dir / "__init__.py").write_text(FLAKY_PIPELINE)
    (pipeline_dir / "nodes.py").write_text(FLAKY_NODES)
    (root / "conf" / "base" / "catalog.yml").write_text(FLAKY_CATALOG)
    data_dir = tmp_path / "worker-data"
    data_dir.mkdir()
    (root / "conf" / "base" / "airflow.yml").write_text(
        f"default_args: {{retries: 1, retry_delay: 1}}\ndata_dir: {data_dir}\n"
    )
    run_cli("airflow", "create", cwd=root)
    wheel = package_project(root, tmp_path / "dist")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )

    home, logs, scheduler_cwd = tmp_path / "airflow", tmp_path / "logs", tmp_path / "cwd"
    for folder in (home, logs, scheduler_cwd):
        folder.mkdir()
    port = free_port()
    environment = outside_environment(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "airflow_dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET="kilnflow-test-only",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        KILNFLOW_HOME=str(tmp_path / "kilnflow-home"),
        FLAKY_ATTEMPTS=str(tmp_path / "attempts.log"),
    )
    airflow = python.parent / "airflow"
    subprocess.run(
        [str(airflow), "db", "migrate"], env=environment, check=True, capture_output=True
    )
    database = home / "airflow.db"
    with airflow_processes(airflow, environment, logs, scheduler_cwd):
        health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
        wait_for("the API server", lambda: urllib.request.urlopen(health, timeout=5), logs)
        wait_for(
            "the DAG to be parsed",
            lambda: metadata_rows(database, "SELECT 1 FROM dag WHERE dag_id = 'flaky_default'"),
            logs,
        )
        subprocess.run(
            [str(airflow), "dags", "trigger", "flaky_default"],
            env=environment,
            check=True,
            capture_output=True,
        )
        (state,) = wait_for(
            "the DAG run to finish",
            lambda: [
                row[0]
                for row in metadata_rows(
                    database, "SELECT state FROM dag_run WHERE dag_id = 'flaky_default'"
                )
                if row[0] in ("success", "failed")
            ],
            logs,
        )
        tries = dict(
            metadata_rows(
                database,
                "SELECT task_id, try_number FROM task_instance WHERE dag_id = 'flaky_default' "
                "AND state = 'success'",
            )
        )
    assert state == "success", "\n".join(log.read_text()[-2000:] for log in logs.glob("*.log"))
    assert tries == {"produce__check": 2, "consume": 1}

    assert (tmp_path / "attempts.log").read_text().splitlines() == ["attempt", "attempt"]
    (version,) = (data_dir / "data" / "numbers.json").iterdir()
    assert json.loads((version / "numbers.json").read_text()) == {"attempt": 2}
    assert json.loads((data_dir / "data" / "result.json").read_text()) == {"read_attempt": 2}
    assert not (scheduler_cwd / "data").exists()

    records = [
        json.loads(row[0])
        for row in metadata_rows(
            tmp_path / "kilnflow-home" / "sessions.db", "SELECT record FROM sessions"
        )
    ]
    outcomes = sorted(
        (r["airflow"]["task_id"], r["airflow"]["try_number"], r["outcome"]) for r in records
    )
    assert outcomes == [
        ("consume", 1, "success"),
        ("produce__check", 1, "failed"),
        ("produce__check", 2, "success"),
    ]
    assert {r["save_version"] for r in records} == {version.name}
