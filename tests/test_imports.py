"""Start-up cost and the public API: what ``import kilnflow`` and ``kilnflow --help`` load."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import kilnflow
import kilnflow.errors

#: Modules that must not load before a command needs them: each costs start-up time.
HEAVY = (
    "pandas",
    "omegaconf",
    "fsspec",
    "rich",
    "jinja2",
    "dask",
    "yaml",
    "pyarrow",
    "IPython",
    "sqlite3",
)


def modules_loaded_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return the heavy top-level modules it loaded."""
    report = (
        "import json, sys\n"
        f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({HEAVY!r}))))\n"
    )
    script = textwrap.dedent(code) + "\n" + report
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_probe_detects_a_heavy_import() -> None:
    assert modules_loaded_by("import yaml, sqlite3") == ["sqlite3", "yaml"]


def test_import_kilnflow_loads_no_heavy_module() -> None:
    assert modules_loaded_by("import kilnflow") == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["new", "--help"],
        ["info", "--help"],
        ["pipeline", "--help"],
        ["catalog", "--help"],
        ["session", "--help"],
        ["package", "--help"],
    ],
    ids=" ".join,
)
def test_cli_help_loads_no_heavy_module(argv: list[str]) -> None:
    code = f"""
        import kilnflow.cli
        try:
            code = kilnflow.cli.main({argv!r})
        except SystemExit as exc:
            code = exc.code
        assert code in (0, None), code
    """
    assert modules_loaded_by(code) == []


def test_a_repeated_run_of_the_starter_project_loads_no_yaml_nor_fsspec(make_project: Any) -> None:
    project = make_project("demo")
    code = f"""
        import os
        os.chdir({str(project)!r})
        import kilnflow.cli
        kilnflow.cli.main(["run"])
    """
    assert "yaml" in modules_loaded_by(code)
    # The first run kept the parsed configuration: the same files need no parser,
    # and local files need no fsspec. sqlite3 records the session.
    assert modules_loaded_by(code) == ["sqlite3"]


def test_a_worker_sets_up_its_project_without_the_session_store(make_project: Any) -> None:
    # What a ParallelRunner or Dask worker of a session runs first: every worker
    # start would otherwise import the session, its stores and sqlite3 for nothing.
    project = make_project("demo")
    code = f"""
        import sys
        from kilnflow.session._worker import set_up_worker
        hooks = set_up_worker("demo", {str(project)!r}, 20, False)
        assert hooks is not None
        assert "kilnflow.session._session" not in sys.modules
    """
    assert modules_loaded_by(code) == []


def test_public_api_is_exactly_this() -> None:
    assert sorted(kilnflow.__all__) == [
        "ConfigLoader",
        "DataCatalog",
        "KilnflowError",
        "Node",
        "Pipeline",
        "SequentialRunner",
        "__version__",
        "hook_impl",
        "node",
    ]
    for name in kilnflow.__all__:
        assert getattr(kilnflow, name) is not None, name
    assert set(kilnflow.__all__) <= set(dir(kilnflow))


#: Every module a user may import: no part of its dotted name starts with "_".
PUBLIC_MODULES = sorted(
    {"kilnflow"}
    | {
        found.name
        for found in pkgutil.walk_packages(kilnflow.__path__, "kilnflow.")
        if not any(part.startswith("_") for part in found.name.split("."))
    }
)


def test_public_modules_are_found() -> None:
    assert {
        "kilnflow.cli",
        "kilnflow.config",
        "kilnflow.deploy.airflow",
        "kilnflow.errors",
        "kilnflow.hooks",
        "kilnflow.io",
        "kilnflow.ipython",
        "kilnflow.project",
        "kilnflow.runner",
        "kilnflow.session",
        "kilnflow.viz",
    } <= set(PUBLIC_MODULES)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_dir_of_a_public_module_is_exactly_its_all(name: str) -> None:
    module = importlib.import_module(name)
    assert dir(module) == sorted(module.__all__)
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.{public}"


def test_public_names_are_the_objects_of_their_subpackages() -> None:
    from kilnflow.config import ConfigLoader
    from kilnflow.hooks import hook_impl
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline, node
    from kilnflow.runner import SequentialRunner

    assert kilnflow.ConfigLoader is ConfigLoader
    assert kilnflow.DataCatalog is DataCatalog
    assert kilnflow.KilnflowError is kilnflow.errors.KilnflowError
    assert kilnflow.Node is Node
    assert kilnflow.Pipeline is Pipeline
    assert kilnflow.SequentialRunner is SequentialRunner
    assert kilnflow.hook_impl is hook_impl
    assert kilnflow.node is node


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Pipelin'"):
        _ = kilnflow.Pipelin


def test_error_tree_is_exactly_this() -> None:
    assert sorted(kilnflow.errors.__all__) == [
        "CircularDependencyError",
        "ConfigError",
        "DatasetError",
        "DatasetNotFoundError",
        "HookError",
        "Interrupted",
        "KilnflowError",
        "KilnflowWarning",
        "MissingConfigError",
        "MissingInputsError",
        "NodeFailedError",
        "OutputNotUniqueError",
        "PackageNameNotFoundError",
        "PackagingError",
        "PipelineError",
        "ProjectError",
        "RunnerError",
        "SessionError",
        "VersionNotFoundError",
        "WorkersLostError",
        "did_you_mean",
    ]
    for name in kilnflow.errors.__all__:
        value = getattr(kilnflow.errors, name)
        if name == "did_you_mean":
            assert callable(value)
        elif name == "KilnflowWarning":
            assert issubclass(value, UserWarning)
        elif name == "Interrupted":
            # A stop signal, not an error: ``except Exception`` must not swallow it.
            assert issubclass(value, KeyboardInterrupt)
            assert not issubclass(value, Exception)
        else:
            assert issubclass(value, kilnflow.errors.KilnflowError), name
    assert issubclass(kilnflow.errors.PackageNameNotFoundError, ValueError)
