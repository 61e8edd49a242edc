"""ParallelRunner from an installed wheel: ``python -m <package>`` and the console script.

Spawned workers of an installed package have no source tree and no
``pyproject.toml``; they must configure the package themselves, and the
project's hooks must run in them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import (
    HOOK_LOG_ENV,
    add_counting_hook,
    counted_nodes,
    data_folder,
    fresh_venv,
    run_installed,
)
from kilnflow.packaging import package_project
from kilnflow.project import create_project

NODES = ["clean", "report", "summarise"]


@pytest.fixture(scope="module")
def installed_demo_with_hook(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> tuple[Path, Path]:
    """The example project, with a node-counting hook, installed from its wheel in a fresh venv."""
    base = tmp_path_factory.mktemp("packaged-runners")
    root = create_project("demo", base / "demo")
    add_counting_hook(root)
    wheel = package_project(root, base / "dist")
    bindir = fresh_venv(base / "venv", wheelhouse, str(wheel))
    return bindir, root / "data" / "raw" / "readings.json"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "command",
    [["python", "-m", "demo", "--runner", "parallel"], ["demo", "--runner", "parallel"]],
    ids=["python -m", "console script"],
)
def test_parallel_runner_runs_the_installed_package_with_its_hooks(
    installed_demo_with_hook: tuple[Path, Path], tmp_path: Path, command: list[str]
) -> None:
    bindir, data = installed_demo_with_hook
    sequential = data_folder(tmp_path / "sequential", data)
    result = run_installed(
        bindir,
        command[: command.index("--runner")],
        sequential,
        **{HOOK_LOG_ENV: str(sequential / "hooks.log")},
    )
    assert result.returncode == 0, result.stderr
    parallel = data_folder(tmp_path / "parallel", data)

    result = run_installed(
        bindir,
        [*command, "--max-workers", "2"],
        parallel,
        **{HOOK_LOG_ENV: str(parallel / "hooks.log")},
    )

    assert result.returncode == 0, result.stderr
    for output in ("data/processed/station_summary.json", "data/reporting/report.txt"):
        assert (parallel / output).read_text() == (sequential / output).read_text()
    assert sorted(name for name, _, _ in counted_nodes(sequential / "hooks.log")) == NODES
    calls = counted_nodes(parallel / "hooks.log")
    assert sorted(name for name, _, _ in calls) == NODES
    workers = ("ForkServerProcess", "SpawnProcess")
    assert all(process.startswith(workers) for _, _, process in calls), calls
