"""Project mode and packaged mode: metadata, configure_project, settings, registries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kilnflow import __version__
from kilnflow.errors import (
    KilnflowError,
    KilnflowWarning,
    PackageNameNotFoundError,
    PipelineError,
    ProjectError,
)
from kilnflow.project import (
    bootstrap_project,
    conf_source,
    configure_project,
    find_pipelines,
    get_pipeline,
    package_name,
    pipelines,
    project_path,
    read_metadata,
    settings,
)


def write_pyproject(root: Path, body: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(body))
    return root


def write_package(root: Path, name: str, files: dict[str, str]) -> Path:
    """A minimal importable package under ``root`` with the given module sources."""
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for relative, source in files.items():
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(source))
    return package


VALID = f"""
[tool.kilnflow]
package_name = "demo"
project_name = "Demo"
kilnflow_version = "{__version__}"
"""


def test_bootstrap_returns_metadata_and_puts_source_on_paths_once(make_project):
    root = make_project()
    metadata = bootstrap_project(root)
    bootstrap_project(root)

    assert metadata.package_name == "demo"
    assert metadata.project_name == "demo"
    assert metadata.project_path == root
    assert metadata.config_file == root / "pyproject.toml"
    assert metadata.source_dir == root / "src"
    assert sys.path.count(str(root / "src")) == 1
    assert os.environ["PYTHONPATH"].split(os.pathsep).count(str(root / "src")) == 1
    assert package_name() == "demo"
    assert project_path() == root


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[tool.kilnflow\n", "is not valid TOML"),
        ("[project]\nname = 'x'\n", "has no [tool.kilnflow] table"),
        ("[tool.kilnflow]\npackage_name = 'demo'\n", "lacks 'project_name', 'kilnflow_version'"),
        (VALID + "pakage = 'x'\n", "unknown key 'pakage' in [tool.kilnflow]. Did you mean"),
        (VALID + "source_dir = '../elsewhere'\n", "points outside the project"),
        (VALID.replace(f'"{__version__}"', '"99.0.0"'), "written for Kilnflow 99.0.0"),
        (VALID.replace('"demo"', "3"), "package_name must be a non-empty string"),
    ],
)
def test_bad_metadata_gets_its_own_clear_error(tmp_path, body, message):
    root = write_pyproject(tmp_path / "project", body)
    with pytest.raises(ProjectError) as caught:
        bootstrap_project(root)
    assert message in str(caught.value)
    assert str(root / "pyproject.toml") in str(caught.value)


def test_missing_pyproject_says_how_to_get_a_project(tmp_path):
    with pytest.raises(ProjectError, match=r"is not a Kilnflow project.*kilnflow new"):
        read_metadata(tmp_path)


def test_unknown_package_is_named(tmp_path):
    with pytest.raises(ProjectError, match="Package 'no_such_package_xyz' cannot be imported"):
        configure_project("no_such_package_xyz")


def test_unconfigured_process_gets_package_name_not_found():
    for ask in (package_name, lambda: settings.HOOKS, lambda: list(pipelines), conf_source):
        with pytest.raises(PackageNameNotFoundError) as caught:
            ask()
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value, KilnflowError)
        assert str(caught.value).startswith("Package name not found.")
        assert "configure_project(" in str(caught.value)
        assert "bootstrap_project(" in str(caught.value)


def test_fresh_subprocess_gets_package_name_not_found():
    code = (
        "from kilnflow.session import Session\n"
        "try:\n"
        "    Session.create()\n"
        "except ValueError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("PackageNameNotFoundError Package name not found.")


def test_settings_defaults_without_a_settings_module(tmp_path, monkeypatch):
    write_package(tmp_path, "bare_pkg", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("bare_pkg")

    from kilnflow.config import ConfigLoader
    from kilnflow.io import DataCatalog

    assert settings.HOOKS == ()
    assert settings.CONF_SOURCE == "conf"
    assert settings.CONFIG_LOADER_CLASS is ConfigLoader
    assert settings.DATA_CATALOG_CLASS is DataCatalog
    assert settings.CONTEXT_CLASS is None
    assert settings.SESSION_STORE_ARGS == {}
    assert set(settings.as_dict()) >= {"HOOKS", "DISABLE_HOOKS_FOR_PLUGINS", "CONFIG_LOADER_ARGS"}


def test_wrong_setting_type_names_the_setting(tmp_path, monkeypatch):
    write_package(tmp_path, "typo_pkg", {"settings.py": "HOOKS = 'not a tuple'\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("typo_pkg")
    with pytest.raises(ProjectError, match=r"typo_pkg.settings: setting HOOKS must be a tuple"):
        _ = settings.HOOKS


def test_unknown_setting_warns_with_close_match(tmp_path, monkeypatch):
    write_package(tmp_path, "warn_pkg", {"settings.py": "CONF_SOURCES = 'conf'\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("warn_pkg")
    with pytest.warns(KilnflowWarning, match="unknown setting 'CONF_SOURCES'.*'CONF_SOURCE'"):
        _ = settings.HOOKS


def test_broken_pipeline_module_does_not_break_settings(tmp_path, monkeypatch):
    write_package(
        tmp_path,
        "broken_pkg",
        {"pipeline_registry.py": "raise RuntimeError('boom')\n", "settings.py": "HOOKS = ()\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("broken_pkg")
    assert settings.HOOKS == ()
    with pytest.raises(ProjectError, match=r"Importing broken_pkg.pipeline_registry failed"):
        list(pipelines)


def test_registry_must_return_pipelines(tmp_path, monkeypatch):
    write_package(
        tmp_path,
        "bad_registry",
        {"pipeline_registry.py": "def register_pipelines():\n    return {'x': 1}\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("bad_registry")
    assert list(pipelines) == ["x"]
    with pytest.raises(ProjectError, match="maps 'x' to int; every value must be a Pipeline"):
        get_pipeline("x")


def test_lazy_registry_builds_only_the_pipeline_looked_up(tmp_path, monkeypatch):
    registry = """
        from collections.abc import Mapping
        from kilnflow.pipeline import Pipeline, node

        BUILT = []

        class Lazy(Mapping):
            def __getitem__(self, name):
                BUILT.append(name)
                return Pipeline([node(str, "a", name, name=name)])
            def __iter__(self):
                return iter(["small", "huge"])
            def __len__(self):
                return 2

        def register_pipelines():
            return Lazy()
    """
    write_package(tmp_path, "lazy_registry", {"pipeline_registry.py": registry})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("lazy_registry")
    assert sorted(pipelines) == ["huge", "small"]
    assert get_pipeline("small").outputs() == {"small"}
    from lazy_registry.pipeline_registry import BUILT

    assert BUILT == ["small"]


def test_missing_registry_says_what_to_add(tmp_path, monkeypatch):
    write_package(tmp_path, "no_registry", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("no_registry")
    with pytest.raises(ProjectError, match=r"no_registry.pipeline_registry does not exist"):
        list(pipelines)


def test_unknown_pipeline_lists_registered_ones(make_project):
    bootstrap_project(make_project())
    with pytest.raises(
        PipelineError, match=r"'reading' is not registered\. Did you mean 'readings'"
    ):
        get_pipeline("reading")


def test_find_pipelines_reports_broken_modules_by_name(make_project):
    root = make_project()
    broken = root / "src" / "demo" / "pipelines" / "broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("import not_a_module_anywhere\n")
    bootstrap_project(root)
    with pytest.warns(KilnflowWarning, match=r"demo\.pipelines\.broken was skipped"):
        found = find_pipelines(raise_errors=False)
    assert sorted(found) == ["__default__", "readings"]
    assert len(found["__default__"].nodes) == 3


def test_configure_switches_projects_cleanly(tmp_path, monkeypatch):
    registry = (
        "from kilnflow.pipeline import Pipeline, node\n"
        "def register_pipelines():\n"
        "    return {'__default__': Pipeline([node(str, 'a', '{name}', name='{name}')])}\n"
    )
    for name in ("first_pkg", "second_pkg"):
        write_package(tmp_path, name, {"pipeline_registry.py": registry.replace("{name}", name)})
    monkeypatch.syspath_prepend(str(tmp_path))

    configure_project("first_pkg")
    assert pipelines["__default__"].outputs() == {"first_pkg"}
    configure_project("second_pkg")
    assert pipelines["__default__"].outputs() == {"second_pkg"}
    assert package_name() == "second_pkg"


def test_conf_source_project_mode_packaged_mode_and_override(make_project, tmp_path, monkeypatch):
    root = make_project()
    bootstrap_project(root)
    assert conf_source() == root / "conf"
    assert conf_source("elsewhere.tar.gz") == "elsewhere.tar.gz"

    packaged = write_package(tmp_path / "site", "packaged_pkg", {"conf/base/catalog.yml": "{}\n"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    configure_project("packaged_pkg")
    source = conf_source()
    assert not isinstance(source, (str, Path)) or Path(str(source)) == packaged / "conf"
    assert (source / "base" / "catalog.yml").read_text() == "{}\n"


def test_packaged_mode_without_conf_is_a_clear_error(tmp_path, monkeypatch):
    write_package(tmp_path, "no_conf_pkg", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    configure_project("no_conf_pkg")
    with pytest.raises(ProjectError, match=r"no packaged configuration.*--conf-source"):
        conf_source()
