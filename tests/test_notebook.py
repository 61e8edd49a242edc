"""Notebooks in a real Jupyter kernel, executed with nbclient.

Once in a project folder (``%load_ext`` loads it at once), once with the
project's wheel installed in a fresh venv and no project folder anywhere
(``%reload_kilnflow demo``); the kernel runs in that venv, with ipykernel
installed there offline from a wheelhouse.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import add_wheels, fresh_venv

#: A log line from the project's own code, as users write them in nodes.
NODE_LOG = '''
import logging

logger = logging.getLogger(__name__)


def clean_readings(readings, min_valid):
    """Drop faulty readings, saying how many were dropped."""
    kept = [row for row in readings if row["value"] >= min_valid]
    logger.info("dropped %d faulty readings", len(readings) - len(kept))
    return kept
'''


def logging_project(make_project: Any) -> Path:
    project: Path = make_project("demo")
    nodes = project / "src" / "demo" / "pipelines" / "readings" / "nodes.py"
    nodes.write_text(nodes.read_text() + NODE_LOG)
    return project


def kernel_home(tmp_path: Path, python: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernelspec ``kilnflow-test`` running ``python``; Jupyter's files stay in tmp_path."""
    spec = tmp_path / "jupyter" / "kernels" / "kilnflow-test"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Kilnflow test", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))


def execute(cells: list[str], cwd: Path) -> list[Any]:
    """Run ``cells`` as a notebook in the ``kilnflow-test`` kernel; return the executed cells."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        notebook,
        kernel_name="kilnflow-test",
        timeout=180,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return list(notebook.cells)


def stream(cell: Any, name: str) -> str:
    return "".join(o["text"] for o in cell.outputs if o.output_type == "stream" and o.name == name)


def error(cell: Any) -> Any:
    return next((o for o in cell.outputs if o.output_type == "error"), None)


def assert_no_error(cells: list[Any]) -> None:
    for index, cell in enumerate(cells):
        failure = error(cell)
        assert failure is None, f"cell {index}: {failure and failure.ename}: {failure.evalue}"


CELLS = [
    "outputs = session.run()",
    "session.run()",
    "%reload_kilnflow {target} --params min_valid=11\n"
    "session.run()\n"
    "print(catalog.load('report').splitlines()[2])",
]


def check_run_cells(cells: list[Any]) -> None:
    """Logs and progress in the run's cell; the second run points to %reload_kilnflow."""
    run, again, reloaded = cells
    assert error(run) is None
    logs = stream(run, "stderr")
    assert "demo.pipelines.readings.nodes: dropped 2 faulty readings" in logs
    assert "kilnflow.runner: Completed node 1 of 3: clean" in logs
    assert "Completed node 3 of 3: report" in logs
    failure = error(again)
    assert failure.ename == "SessionError"
    assert "call %reload_kilnflow for a new session" in failure.evalue
    assert_no_error([reloaded])
    assert stream(reloaded, "stdout").splitlines()[-1].startswith("north    n=2   mean=12.80")


@pytest.mark.slow
def test_notebook_in_a_project_folder(
    make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = logging_project(make_project)
    kernel_home(tmp_path, Path(sys.executable), monkeypatch)

    cells = execute(
        ["%load_ext kilnflow.ipython", *(cell.format(target="") for cell in CELLS)],
        cwd=project / "src",
    )

    assert_no_error(cells[:1])
    assert f"Kilnflow project demo loaded (from {project}" in stream(cells[0], "stdout")
    check_run_cells(cells[1:])
    assert (project / "data" / "reporting" / "report.txt").read_text().startswith("Station")


@pytest.fixture(scope="module")
def kernel_wheelhouse(wheelhouse: Path) -> Path:
    """ipykernel and its dependencies as wheels, beside Kilnflow's, for offline venvs."""
    from importlib.metadata import version

    return add_wheels(wheelhouse, f"ipykernel=={version('ipykernel')}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook_with_the_installed_wheel(
    make_project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel_wheelhouse: Path
) -> None:
    from kilnflow.packaging import package_project

    project = logging_project(make_project)
    wheel = package_project(project, tmp_path / "dist")
    bindir = fresh_venv(tmp_path / "venv", kernel_wheelhouse, str(wheel), "ipykernel")
    work = tmp_path / "work"
    shutil.copytree(project / "data" / "raw", work / "data" / "raw")
    shutil.rmtree(project)
    kernel_home(tmp_path, bindir / "python", monkeypatch)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)

    cells = execute(
        [
            "%load_ext kilnflow.ipython",
            "%reload_kilnflow demo",
            "import kilnflow, demo; print(kilnflow.__file__); print(demo.__file__)",
            *(cell.format(target="demo") for cell in CELLS),
        ],
        cwd=work,
    )

    assert_no_error(cells[:3])
    assert "%reload_kilnflow PACKAGE for an installed project" in stream(cells[0], "stdout")
    assert "Kilnflow project demo loaded (installed package" in stream(cells[1], "stdout")
    kilnflow_file, demo_file = stream(cells[2], "stdout").split()
    assert kilnflow_file.startswith(str(tmp_path / "venv"))
    assert demo_file.startswith(str(tmp_path / "venv"))
    check_run_cells(cells[3:])
    assert (work / "data" / "reporting" / "report.txt").read_text().startswith("Station")
