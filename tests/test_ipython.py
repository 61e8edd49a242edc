"""``%load_ext kilnflow.ipython`` and ``%reload_kilnflow`` in a real IPython shell."""

from __future__ import annotations

import atexit
import builtins
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from kilnflow.errors import ConfigError, ProjectError, SessionError
from kilnflow.session import Context, Session

REPORT_MIN_11 = """\
Station report

north    n=2   mean=12.80 min=12.50 max=13.10
south    n=3   mean=18.27 min=17.60 max=19.00
"""

MakeProject = Callable[..., Path]


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[InteractiveShell]:
    """A real shell with the extension loaded; the process is left as it was found.

    The profile goes to ``tmp_path`` and history nowhere (nothing is written
    to the user's home), and what the shell changes in the process
    (``__main__``, builtins, an exit handler) is put back afterwards.
    """
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    builtin_names = set(vars(builtins))
    config = Config()
    config.HistoryManager.enabled = False
    instance = InteractiveShell.instance(config=config)
    try:
        instance.run_line_magic("load_ext", "kilnflow.ipython")
        yield instance
    finally:
        instance.run_line_magic("unload_ext", "kilnflow.ipython")
        atexit.unregister(instance.atexit_operations)
        InteractiveShell.clear_instance()
        for name in set(vars(builtins)) - builtin_names:
            delattr(builtins, name)


def reload(shell: InteractiveShell, line: str) -> dict[str, Any]:
    shell.run_line_magic("reload_kilnflow", line)
    return shell.user_ns


def nodes_py(project: Path) -> Path:
    return project / "src" / project.name / "pipelines" / "readings" / "nodes.py"


def test_reload_kilnflow_injects_the_project(
    shell: InteractiveShell, make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("demo")

    ns = reload(shell, f"{project} --params min_valid=11")

    assert "Kilnflow project demo loaded" in capsys.readouterr().out
    session = ns["session"]
    assert isinstance(session, Session)
    assert session.package_name == "demo"
    assert session.project_path == project
    assert session.extra_params == {"min_valid": 11}
    assert isinstance(ns["context"], Context)
    assert ns["params"] == {"min_valid": 11, "report": {"title": "Station report", "decimals": 2}}
    assert ns["context"].params == ns["params"]
    readings = ns["catalog"].load("readings")
    assert len(readings) == 9
    assert readings[0] == {"station": "north", "value": 12.5}
    assert set(ns["pipelines"]) == {"__default__", "readings"}
    assert [n.name for n in ns["pipelines"]["readings"].nodes] == ["clean", "summarise", "report"]

    assert session.run() == {}
    assert (project / "data" / "reporting" / "report.txt").read_text() == REPORT_MIN_11


def test_reload_picks_up_edited_project_code(
    shell: InteractiveShell, make_project: MakeProject
) -> None:
    project = make_project("demo")
    first = reload(shell, str(project))["pipelines"]["readings"].nodes[2].func
    assert first({"a": {"count": 1, "mean": 1, "min": 1, "max": 1}}, {"title": "T", "decimals": 0})
    source = nodes_py(project).read_text()
    nodes_py(project).write_text(
        source.replace('lines = [options["title"], ""]', 'lines = [options["title"].upper(), ""]')
    )

    ns = reload(shell, str(project))

    assert ns["params"]["min_valid"] == 0.0
    render = ns["pipelines"]["readings"].nodes[2].func
    assert render is not first
    assert render({}, {"title": "Edited", "decimals": 1}) == "EDITED\n\n"
    ns["session"].run()
    report = (project / "data" / "reporting" / "report.txt").read_text()
    assert report.startswith("STATION REPORT\n\neast ")


def test_reload_finds_the_project_from_the_working_directory(
    shell: InteractiveShell, make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project("demo")
    monkeypatch.chdir(project / "src" / "demo")

    ns = reload(shell, "")

    assert ns["session"].project_path == project


def test_reload_accepts_a_quoted_path_with_spaces(shell: InteractiveShell, tmp_path: Path) -> None:
    from kilnflow.project import create_project

    project = create_project("demo", tmp_path / "my projects" / "demo")

    ns = reload(shell, f'"{project}" --params report.title=Mine')

    assert ns["session"].project_path == project
    assert ns["params"]["report"] == {"title": "Mine", "decimals": 2}


def test_reload_with_an_env(shell: InteractiveShell, make_project: MakeProject) -> None:
    project = make_project("demo")
    (project / "conf" / "prod").mkdir()
    (project / "conf" / "prod" / "parameters.yml").write_text("min_valid: 11\n")

    ns = reload(shell, f"{project} --env prod")

    assert ns["session"].env == "prod"
    assert ns["params"]["min_valid"] == 11


def test_reload_switches_between_projects(
    shell: InteractiveShell, make_project: MakeProject
) -> None:
    demo = make_project("demo")
    other = make_project("other", example=False)
    reload(shell, str(demo))

    ns = reload(shell, str(other))

    assert ns["session"].package_name == "other"
    assert ns["session"].project_path == other
    assert list(ns["pipelines"]) == ["__default__"]
    assert ns["params"] == {}


def test_reload_without_a_project_is_a_clear_error(shell: InteractiveShell, tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"No Kilnflow project in .*nowhere or its parents"):
        reload(shell, str(tmp_path / "nowhere"))
    assert "session" not in shell.user_ns


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--bogus", r"usage: %reload_kilnflow \[PATH \| PACKAGE\]"),
        ("a b", r"usage: %reload_kilnflow \[PATH \| PACKAGE\]"),
        ("--env", r"--env.*expected one argument; usage: %reload_kilnflow \[PATH \| PACKAGE\]"),
        ('"unclosed', r"usage: %reload_kilnflow \[PATH \| PACKAGE\]"),
        ("{project} --params min_valid", r"'min_valid' is not key=value"),
        ("kilnflow", r"'kilnflow' is Kilnflow itself, not a project"),
    ],
)
def test_reload_with_bad_arguments_is_a_clear_error(
    shell: InteractiveShell,
    make_project: MakeProject,
    capsys: pytest.CaptureFixture[str],
    line: str,
    message: str,
) -> None:
    project = make_project("demo")

    with pytest.raises(ProjectError, match=message):
        reload(shell, line.format(project=project))
    assert capsys.readouterr().err == ""


def test_reload_with_a_missing_env_lists_the_existing_ones(
    shell: InteractiveShell, make_project: MakeProject
) -> None:
    project = make_project("demo")

    with pytest.raises(ConfigError, match="base, local"):
        reload(shell, f"{project} --env missing")


def test_load_ext_in_a_project_folder_loads_the_project_at_once(
    shell: InteractiveShell,
    make_project: MakeProject,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_project("demo")
    shell.run_line_magic("unload_ext", "kilnflow.ipython")
    monkeypatch.chdir(project / "src")

    shell.run_line_magic("load_ext", "kilnflow.ipython")

    assert f"Kilnflow project demo loaded (from {project}" in capsys.readouterr().out
    assert shell.user_ns["session"].project_path == project
    assert set(shell.user_ns["pipelines"]) == {"__default__", "readings"}


def test_load_ext_outside_a_project_says_what_to_run(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("unload_ext", "kilnflow.ipython")

    shell.run_line_magic("load_ext", "kilnflow.ipython")

    assert "%reload_kilnflow PACKAGE for an installed project" in capsys.readouterr().out
    assert "session" not in shell.user_ns


def test_reload_an_importable_package_without_its_folder(
    shell: InteractiveShell,
    make_project: MakeProject,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = make_project("demo")
    # The layout of an installed wheel: configuration inside the package.
    shutil.copytree(project / "conf" / "base", project / "src" / "demo" / "conf" / "base")
    monkeypatch.syspath_prepend(str(project / "src"))
    (project.parent / "away").mkdir()
    monkeypatch.chdir(project.parent / "away")

    ns = reload(shell, "demo")

    assert "Kilnflow project demo loaded (installed package" in capsys.readouterr().out
    assert ns["session"].project_path is None
    assert ns["params"]["min_valid"] == 0.0
    assert [n.name for n in ns["pipelines"]["readings"].nodes] == ["clean", "summarise", "report"]


def test_node_progress_shows_in_the_notebook(
    shell: InteractiveShell, make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project("demo")
    ns = reload(shell, str(project))
    capsys.readouterr()

    ns["session"].run()

    err = capsys.readouterr().err
    assert "INFO kilnflow.runner: Completed node 1 of 3: clean" in err
    assert "Completed node 3 of 3: report" in err


def test_a_second_run_says_to_call_reload_kilnflow(
    shell: InteractiveShell, make_project: MakeProject
) -> None:
    project = make_project("demo")
    ns = reload(shell, str(project))
    ns["session"].run()

    with pytest.raises(SessionError, match=r"call %reload_kilnflow for a new session"):
        ns["session"].run()

    ns = reload(shell, str(project))
    assert ns["session"].run() == {}
