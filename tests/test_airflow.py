"""A generated DAG run end to end by a real Apache Airflow 3 with the project's wheel installed.

Airflow lives in its own virtual environment, with a SQLite metadata
database under the test's temporary folder. Airflow itself comes from the
package index (it is far too large for the shared wheelhouse); Kilnflow and
the project come from the wheels this test session built.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
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
    records = [
        json.loads(row[0])
        for row in sqlite3.connect(database).execute("SELECT record FROM sessions")
    ]
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
