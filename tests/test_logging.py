"""Logging as users see it: `kilnflow run` and an installed wheel's `python -m`, as subprocesses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import data_folder, fresh_venv, run_cli, run_installed

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

NODE_LOGGING = """
import logging

logger = logging.getLogger(__name__)


def clean_readings(readings, min_valid):
    logger.info("cleaning %d readings", len(readings))
    logger.debug("threshold is %s", min_valid)
    logging.getLogger("some.library").debug("library detail")
    logger.warning("readings below %s are dropped", min_valid)
    return [row for row in readings if row["value"] >= min_valid]
"""

HOOK = """
import logging

from kilnflow.hooks import hook_impl

logger = logging.getLogger(__name__)


class LogRuns:
    @hook_impl
    def after_pipeline_run(self, run_params):
        logger.info("pipeline %s done", run_params["pipeline_name"])
"""

CUSTOM_LOGGING = """
version: 1
formatters:
  custom:
    format: "CUSTOM|%(levelname)s|%(name)s|%(message)s"
handlers:
  console:
    class: logging.StreamHandler
    formatter: custom
  file:
    class: logging.FileHandler
    formatter: custom
    filename: {log_file}
root:
  level: INFO
  handlers: [console, file]
"""


def logging_project(parent: Path) -> Path:
    """The starter project, whose clean node and a project hook log through their loggers."""
    project = parent / "demo"
    run_cli("new", "demo", cwd=parent)
    nodes = project / "src" / "demo" / "pipelines" / "readings" / "nodes.py"
    nodes.write_text(nodes.read_text().replace("def clean_readings(", "def _unused_clean(", 1))
    nodes.write_text(nodes.read_text() + NODE_LOGGING)
    (project / "src" / "demo" / "hooks.py").write_text(HOOK)
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "HOOKS = ()", "from demo.hooks import LogRuns\n\nHOOKS = (LogRuns(),)"
        )
    )
    return project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return logging_project(tmp_path)


def lines(stderr: str, pattern: str) -> list[str]:
    return [line for line in stderr.splitlines() if re.fullmatch(pattern, line)]


def test_node_and_hook_records_are_shown_by_default_with_time_level_and_logger(
    project: Path,
) -> None:
    result = run_cli("run", cwd=project)

    err = result.stderr
    assert lines(err, rf"{STAMP} INFO demo\.pipelines\.readings\.nodes: cleaning 9 readings")
    assert lines(err, rf"{STAMP} WARNING demo\.pipelines\.readings\.nodes: readings below .*")
    assert lines(err, rf"{STAMP} INFO demo\.hooks: pipeline __default__ done")
    assert "threshold is" not in err
    assert "library detail" not in err


def test_node_records_from_parallel_workers_are_shown(project: Path) -> None:
    result = run_cli("run", "-r", "parallel", "--max-workers", "2", cwd=project)

    # Workers send their records to this process, whose handler and format show them.
    assert lines(
        result.stderr, rf"{STAMP} INFO demo\.pipelines\.readings\.nodes: cleaning 9 readings"
    ), result.stderr
    assert "threshold is" not in result.stderr


def test_a_run_ends_with_one_summary_line(project: Path) -> None:
    result = run_cli("run", "--nodes", "clean,summarise", cwd=project)

    last = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(
        rf"{STAMP} INFO kilnflow: Pipeline '__default__' finished: 2 nodes run in "
        r"\d+\.\d\ds; session (\S+) recorded in (.+)\.",
        last,
    )
    assert match, last
    assert match[2] == f"sqlite:///{project / '.kilnflow' / 'sessions.db'}"
    shown = run_cli("session", "show", match[1], cwd=project)
    assert match[1] in shown.stdout


def test_a_failed_run_ends_with_a_summary_too(project: Path) -> None:
    nodes = project / "src" / "demo" / "pipelines" / "readings" / "nodes.py"
    nodes.write_text(nodes.read_text() + "\ndef render_report(summary, options):\n    1 / 0\n")

    result = run_cli("run", cwd=project, check=False)

    assert result.returncode == 1
    assert lines(
        result.stderr,
        rf"{STAMP} ERROR kilnflow: Pipeline '__default__' failed: 2 nodes run in "
        r"\d+\.\d\ds; session \S+ recorded in .+\.",
    )


def test_quiet_shows_warnings_and_errors_only(project: Path) -> None:
    result = run_cli("run", "-q", cwd=project)

    assert lines(result.stderr, rf"{STAMP} WARNING demo\.pipelines\.readings\.nodes: .*")
    assert " INFO " not in result.stderr
    assert result.stderr.strip().splitlines() == lines(result.stderr, rf"{STAMP} WARNING .*")


def test_quiet_before_the_command_works_too(project: Path) -> None:
    assert " INFO " not in run_cli("-q", "run", cwd=project).stderr


@pytest.mark.parametrize("where", ["after", "before"])
def test_verbose_shows_debug_records_of_every_logger(project: Path, where: str) -> None:
    args = ["run", "-v"] if where == "after" else ["-v", "run"]
    result = run_cli(*args, cwd=project)

    assert lines(result.stderr, rf"{STAMP} DEBUG demo\.pipelines\.readings\.nodes: threshold .*")
    assert lines(result.stderr, rf"{STAMP} DEBUG some\.library: library detail")


def test_verbose_and_quiet_together_are_refused(project: Path) -> None:
    result = run_cli("run", "-v", "-q", cwd=project, check=False)

    assert result.returncode == 2
    assert "-v/--verbose and -q/--quiet contradict each other; pass one." in result.stderr


def test_conf_logging_yml_configures_logging(project: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "run.log"
    (project / "conf" / "logging.yml").write_text(CUSTOM_LOGGING.format(log_file=log_file))

    result = run_cli("run", cwd=project)

    expected = "CUSTOM|INFO|demo.pipelines.readings.nodes|cleaning 9 readings"
    assert expected in result.stderr.splitlines()
    assert expected in log_file.read_text().splitlines()
    assert not lines(result.stderr, rf"{STAMP} .*")
    assert "CUSTOM|DEBUG" not in result.stderr


def test_verbose_lowers_the_levels_of_a_logging_file(project: Path, tmp_path: Path) -> None:
    (project / "conf" / "logging.yml").write_text(
        CUSTOM_LOGGING.format(log_file=tmp_path / "run.log")
    )

    result = run_cli("run", "-v", cwd=project)

    assert "CUSTOM|DEBUG|some.library|library detail" in result.stderr.splitlines()


def test_quiet_raises_the_levels_of_a_logging_file(project: Path, tmp_path: Path) -> None:
    (project / "conf" / "logging.yml").write_text(
        CUSTOM_LOGGING.format(log_file=tmp_path / "run.log")
    )

    result = run_cli("run", "-q", cwd=project)

    assert "CUSTOM|INFO" not in result.stderr
    assert "CUSTOM|WARNING|demo.pipelines.readings.nodes|readings below 0.0 are dropped" in (
        result.stderr.splitlines()
    )


def test_the_environment_variable_replaces_conf_logging_yml(project: Path, tmp_path: Path) -> None:
    (project / "conf" / "logging.yml").write_text("version: 1\nroot: {level: ERROR}\n")
    override = tmp_path / "override.yml"
    override.write_text(CUSTOM_LOGGING.format(log_file=tmp_path / "run.log"))

    result = run_cli("run", cwd=project, env={"KILNFLOW_LOGGING_CONFIG": str(override)})

    assert "CUSTOM|INFO|demo.hooks|pipeline __default__ done" in result.stderr.splitlines()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("version: 1\nhandlers: {h: {class: no.such.Handler}}\n", "is not a valid logging"),
        ("version: [1\n", ", line 2: invalid YAML (expected ',' or ']', but got"),
        ("- a list\n", "must hold a mapping in logging.config.dictConfig's format"),
    ],
)
def test_a_bad_logging_file_is_one_line_naming_it(
    project: Path, content: str, message: str
) -> None:
    path = project / "conf" / "logging.yml"
    path.write_text(content)

    result = run_cli("run", cwd=project, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {path}")
    assert message in line
    assert not (project / "data" / "processed").exists()


def test_a_missing_logging_file_in_the_variable_is_one_line(project: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"

    result = run_cli("run", cwd=project, env={"KILNFLOW_LOGGING_CONFIG": str(missing)}, check=False)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: KILNFLOW_LOGGING_CONFIG={missing} is not a file; point it at a logging YAML "
        "file or unset it."
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_gets_rich_records_and_the_progress_bar(project: Path) -> None:
    from conftest import SCRIPTS, read_terminal

    returncode, raw = read_terminal([str(SCRIPTS / "kilnflow"), "run"], project)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert returncode == 0, text
    assert "\x1b[" in raw
    assert re.search(r"INFO\s+demo\.pipelines\.readings\.nodes: cleaning 9 readings", text)
    assert "Running nodes" in text
    assert "3/3" in text
    assert not re.search(rf"{STAMP} INFO", text)


def test_importing_kilnflow_configures_no_logging() -> None:
    code = """
import importlib, logging, pkgutil
import kilnflow
for module in pkgutil.walk_packages(kilnflow.__path__, "kilnflow."):
    if module.name.split(".")[1] not in ("deploy", "ipython", "packaging"):
        importlib.import_module(module.name)
configured = [
    name for name, item in logging.root.manager.loggerDict.items()
    if isinstance(item, logging.Logger) and (item.handlers or item.level)
]
print(len(logging.root.handlers), logging.root.level, configured)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "30", "[]"]


@pytest.mark.slow
def test_an_installed_wheel_logs_like_project_mode(tmp_path: Path, wheelhouse: Path) -> None:
    """conf/logging.yml ships in the wheel; the variable replaces it, a commented file is none."""
    from kilnflow.packaging import package_project

    project = logging_project(tmp_path)
    packaged_log = tmp_path / "packaged.log"
    (project / "conf" / "logging.yml").write_text(CUSTOM_LOGGING.format(log_file=packaged_log))
    wheel = package_project(project, tmp_path / "dist")
    bindir = fresh_venv(tmp_path / "venv", wheelhouse, str(wheel))
    cwd = data_folder(tmp_path / "work", project / "data" / "raw" / "readings.json")

    packaged = run_installed(bindir, ["python", "-m", "demo"], cwd)
    commented = tmp_path / "commented.yml"
    commented.write_text("# version: 1\n")
    default = run_installed(
        bindir, ["python", "-m", "demo"], cwd, KILNFLOW_LOGGING_CONFIG=str(commented)
    )

    assert packaged.returncode == 0, packaged.stderr
    assert "CUSTOM|INFO|demo.pipelines.readings.nodes|cleaning 9 readings" in (
        packaged.stderr.splitlines()
    )
    assert "CUSTOM|INFO|demo.hooks|pipeline __default__ done" in packaged.stderr.splitlines()
    assert packaged_log.read_text().count("cleaning 9 readings") == 1
    assert default.returncode == 0, default.stderr
    assert lines(default.stderr, rf"{STAMP} INFO demo\.pipelines\.readings\.nodes: cleaning .*")
    summary = default.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"{STAMP} INFO kilnflow: Pipeline '__default__' finished: 3 nodes run in \S+s; "
        rf"session \S+ recorded in sqlite:///{re.escape(str(cwd / '.home'))}\S*\.",
        summary,
    ), summary
