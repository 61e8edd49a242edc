"""The codebase stays lint- and type-clean: ruff and mypy run as part of the suite."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from conftest import REPO, SCRIPTS


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command):
    result = subprocess.run(
        [str(SCRIPTS / command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_python_floor_is_claimed_everywhere(make_project) -> None:
    """The oldest supported Python is stated once per tool; they drift apart silently.

    Packaging metadata, the classifiers, mypy, ruff, the README and the
    projects ``kilnflow new`` generates name the same floor, and this
    interpreter meets it.
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    floor = project["project"]["requires-python"]
    assert floor.startswith(">="), floor
    version = floor.removeprefix(">=")
    major, minor = (int(part) for part in version.split("."))
    listed = [
        classifier.rsplit(" :: ", 1)[1]
        for classifier in project["project"]["classifiers"]
        if classifier.startswith("Programming Language :: Python :: 3.")
    ]
    assert listed[0] == version, listed
    assert project["tool"]["mypy"]["python_version"] == version
    assert project["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert f"Python {version}+" in (REPO / "README.md").read_text("utf-8")
    generated = tomllib.loads((make_project(example=False) / "pyproject.toml").read_text("utf-8"))
    assert generated["project"]["requires-python"] == floor
    assert sys.version_info >= (major, minor)
