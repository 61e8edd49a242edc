"""Hostile or broken input, as users meet it: one line on stderr, exit 1, nothing silent.

Every test runs the real command in a subprocess. None asserts on time: the
pytest timeout guards against a hang, which is the failure these prevent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from kilnflow.packaging import package_project

LAUGHS = (
    "{a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol], "
    + ", ".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "}"
)

BROKEN_MODULE = "import kilnflow_no_such_module\n"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def add_pipeline(project: Path, name: str, init: str) -> None:
    folder = project / "src" / "demo" / "pipelines" / name
    folder.mkdir()
    (folder / "__init__.py").write_text(init)


def packaged(project: Path, target: Path) -> Path:
    """The project's wheel unpacked into ``target``, importable as an installed package."""
    wheel = package_project(project, target.parent / "dist")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def run_packaged_demo(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m demo ARGS`` with the unpacked wheel on the path and no source tree."""
    environment = {**os.environ, "PYTHONPATH": str(site), "KILNFLOW_HOME": str(cwd / ".home")}
    return subprocess.run(
        [sys.executable, "-m", "demo", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alias_bomb_in_params_is_a_usage_error(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()

    result = run_cli("run", "--params", f"min_valid={LAUGHS}", cwd=project, check=False)

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Invalid value for '--params': --params min_valid, line 1: aliases expand "
        "this document to more than 1,000,000 values (an alias bomb?); write the values out "
        "or use fewer nested aliases."
    )


def test_alias_bomb_in_catalog_is_one_line_naming_the_file(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    (project / "conf" / "base" / "catalog_bomb.yml").write_text(f"bomb: {LAUGHS}\n")

    result = run_cli("run", cwd=project, check=False)

    assert one_error_line(result).startswith(
        f"Error: {project / 'conf' / 'base' / 'catalog_bomb.yml'}, line 1: aliases expand"
    )


@pytest.mark.parametrize("name", ["conf", "conf.tar.gz"])
def test_fifo_given_as_conf_source_is_one_line(make_project, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    fifo = tmp_path / name
    os.mkfifo(fifo)

    result = run_cli("run", "--conf-source", str(fifo), cwd=project, check=False)

    assert one_error_line(result) == (
        f"Error: Configuration source '{fifo}' is not a regular file or folder (a FIFO, "
        "device or socket); pass a conf folder or a .tar.gz, .tgz or .zip archive of one."
    )


def test_link_loop_in_conf_is_one_line(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    base = project / "conf" / "base"
    (base / "again").symlink_to(".")
    (base / "more").symlink_to(".")

    result = run_cli("run", cwd=project, check=False)

    assert one_error_line(result) == (
        f"Error: {base / 'more'} is a link to a folder that contains it (a link loop); "
        "remove the link."
    )


def test_duplicate_key_is_one_line_naming_file_line_and_key(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    parameters = project / "conf" / "base" / "parameters.yml"
    lines = parameters.read_text().splitlines()
    first = next(n for n, text in enumerate(lines, 1) if text.startswith("min_valid:"))
    parameters.write_text("\n".join([*lines, "min_valid: 99", ""]))

    result = run_cli("run", cwd=project, check=False)

    assert one_error_line(result) == (
        f"Error: {parameters}, line {len(lines) + 1}: key 'min_valid' is already defined on "
        f"line {first} of the same mapping; keep one definition."
    )


def test_broken_pipeline_module_fails_the_run(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    add_pipeline(project, "broken", BROKEN_MODULE)

    for args in (["run"], ["run", "--pipeline", "readings"]):
        result = run_cli(*args, cwd=project, check=False)

        assert one_error_line(result) == (
            "Error: Pipeline module demo.pipelines.broken cannot be loaded "
            "(ModuleNotFoundError: No module named 'kilnflow_no_such_module'); fix it, or "
            "call find_pipelines(raise_errors=False) in pipeline_registry.py to skip broken "
            "modules."
        )
    assert not (project / "data" / "reporting" / "report.txt").exists()


def test_pipeline_module_building_no_pipeline_fails_the_run(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    add_pipeline(project, "empty", "def create_pipeline():\n    return None\n")

    result = run_cli("run", cwd=project, check=False)

    assert one_error_line(result) == (
        "Error: Pipeline module demo.pipelines.empty cannot be loaded (create_pipeline() "
        "returned NoneType, not a Pipeline); fix it, or call "
        "find_pipelines(raise_errors=False) in pipeline_registry.py to skip broken modules."
    )


def test_skipping_broken_pipelines_is_an_explicit_choice(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    add_pipeline(project, "broken", BROKEN_MODULE)
    registry = project / "src" / "demo" / "pipeline_registry.py"
    registry.write_text(
        registry.read_text().replace("find_pipelines()", "find_pipelines(raise_errors=False)")
    )

    result = run_cli("run", cwd=project)

    assert "demo.pipelines.broken was skipped: ModuleNotFoundError" in result.stderr
    assert (project / "data" / "reporting" / "report.txt").exists()


@pytest.mark.slow
def test_broken_pipeline_module_fails_the_packaged_command(make_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    add_pipeline(project, "broken", BROKEN_MODULE)
    site = packaged(project, tmp_path / "site")

    result = run_packaged_demo(site, tmp_path)

    assert one_error_line(result).startswith(
        "Error: Pipeline module demo.pipelines.broken cannot be loaded (ModuleNotFoundError"
    )


@pytest.mark.parametrize(
    ("value", "kind"), [("('demo.hooks.Timing',)", "str"), ("(object(),)", "object")]
)
def test_hooks_that_are_not_hooks_objects_name_the_setting(
    make_project, value: str, kind: str
) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text().replace("HOOKS = ()", f"HOOKS = {value}"))

    result = run_cli("run", cwd=project, check=False)

    assert one_error_line(result) == (
        f"Error: settings.HOOKS[0] is a {kind}, not a hooks object: it has no method marked "
        "@hook_impl. Put instances of classes with @hook_impl methods in HOOKS."
    )


def test_params_values_are_yaml_within_bounds_or_text() -> None:
    from kilnflow._pairs import parse_pairs

    assert parse_pairs(["a=[1, 2", "b={c: [1, 2]}", "d="], "--params") == {
        "a": "[1, 2",
        "b": {"c": [1, 2]},
        "d": "",
    }
    with pytest.raises(ValueError, match=r"^--params x, line 1: aliases expand"):
        parse_pairs([f"x={LAUGHS}"], "--params")
