"""Packaged mode: the build hook, ``kilnflow package`` and wheels in fresh venvs."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import data_folder, fresh_venv, outside_environment, run_cli, run_installed
from kilnflow.errors import PackagingError
from kilnflow.packaging import package_project

EXPECTED_WHEEL = [
    "demo-0.1.0.dist-info/METADATA",
    "demo-0.1.0.dist-info/RECORD",
    "demo-0.1.0.dist-info/WHEEL",
    "demo-0.1.0.dist-info/entry_points.txt",
    "demo/__init__.py",
    "demo/__main__.py",
    "demo/conf/base/catalog.yml",
    "demo/conf/base/parameters.yml",
    "demo/conf/logging.yml",
    "demo/kilnflow_build.json",
    "demo/pipeline_registry.py",
    "demo/pipelines/__init__.py",
    "demo/pipelines/readings/__init__.py",
    "demo/pipelines/readings/nodes.py",
    "demo/settings.py",
]


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return sorted(archive.namelist())


def test_wheel_holds_exactly_code_conf_manifest_and_entry_points(make_project, tmp_path):
    root = make_project()
    (root / "conf" / "local" / "credentials.yml").write_text("db: {password: hunter2}\n")
    (root / "conf" / "base" / "credentials.yml").write_text("api: {token: s3cr3t}\n")
    (root / "conf" / "base" / "credentials_extra.yml").write_text("x: {token: s3cr3t}\n")

    wheel = package_project(root, tmp_path / "dist")

    assert wheel.name == "demo-0.1.0-py3-none-any.whl"
    assert wheel_names(wheel) == EXPECTED_WHEEL
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            assert b"hunter2" not in archive.read(name)
            assert b"s3cr3t" not in archive.read(name)
        entry_points = archive.read("demo-0.1.0.dist-info/entry_points.txt").decode()
        manifest = json.loads(archive.read("demo/kilnflow_build.json"))
        main_source = archive.read("demo/__main__.py").decode()
    assert "[console_scripts]\ndemo = demo.__main__:main" in entry_points
    assert "[kilnflow.projects]\ndemo = demo" in entry_points
    assert manifest["project_version"] == "0.1.0"
    assert manifest["conf_files"] == ["base/catalog.yml", "base/parameters.yml", "logging.yml"]
    assert len(manifest["conf_sha256"]) == 64

    tree = ast.parse(main_source)
    calls = [
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]
    assert "configure_project" in calls
    assert "bootstrap_project" not in main_source
    configure = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "configure_project"
    )
    assert isinstance(configure.args[0], ast.Name)
    assert 'PACKAGE_NAME = "demo"' in main_source
    guard = [n for n in tree.body if isinstance(n, ast.If)]
    assert ast.unparse(guard[0].test) == "__name__ == '__main__'"


def test_two_builds_are_byte_identical(make_project, tmp_path, monkeypatch):
    root = make_project()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = package_project(root, tmp_path / "one").read_bytes()
    (root / "conf" / "base" / "parameters.yml").touch()
    second = package_project(root, tmp_path / "two").read_bytes()
    assert first == second


def test_project_main_is_kept(make_project, tmp_path):
    root = make_project()
    (root / "src" / "demo" / "__main__.py").write_text("def main(argv=None):\n    return 42\n")
    wheel = package_project(root, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("demo/__main__.py") == b"def main(argv=None):\n    return 42\n"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("settings", r"src/demo/settings.py is missing"),
        ("registry", r"src/demo/pipeline_registry.py is missing"),
        ("conf", r"configuration folder .*conf does not exist"),
    ],
)
def test_build_fails_clearly_on_incomplete_projects(make_project, tmp_path, breakage, message):
    root = make_project()
    if breakage == "settings":
        (root / "src" / "demo" / "settings.py").unlink()
    elif breakage == "registry":
        (root / "src" / "demo" / "pipeline_registry.py").unlink()
    else:
        shutil.rmtree(root / "conf")
    with pytest.raises(PackagingError, match=message):
        package_project(root, tmp_path / "dist")
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())


def test_package_cli_outside_a_project_and_without_kilnflow_table(tmp_path):
    result = run_cli("package", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "No Kilnflow project" in result.stderr
    assert "Traceback" not in result.stderr


def test_package_cli_prints_wheel_and_how_to_run_it(make_project):
    root = make_project()
    result = run_cli("package", cwd=root)
    wheel = root / "dist" / "demo-0.1.0-py3-none-any.whl"
    assert f"Built {wheel}" in result.stdout
    assert "python -m demo" in result.stdout
    assert wheel.is_file()


def test_wheelhouse_without_its_dependencies_fails_whole(make_project, tmp_path):
    root = make_project()
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(empty)}
    failed = run_cli("package", "--wheelhouse", cwd=root, env=offline, check=False)
    assert failed.returncode == 1
    first_line = failed.stderr.splitlines()[0]
    assert first_line == (
        f"Error: pip could not collect the dependencies of demo-0.1.0-py3-none-any.whl into "
        f"{root / 'dist' / 'wheelhouse'}; point PIP_INDEX_URL or PIP_FIND_LINKS at where they are:"
    )
    assert "kilnflow" in failed.stderr
    assert sorted(path.name for path in (root / "dist").iterdir()) == [
        "demo-0.1.0-py3-none-any.whl"
    ]


@pytest.mark.slow
def test_wheelhouse_installs_the_project_offline(make_project, tmp_path, wheelhouse):
    root = make_project()
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    run_cli("package", "--wheelhouse", cwd=root, env=offline)
    house = root / "dist" / "wheelhouse"
    names = sorted(path.name.split("-")[0].lower() for path in house.glob("*.whl"))
    assert "demo" in names
    assert "kilnflow" in names
    assert not {"hatchling", "jinja2", "build"} & set(names)
    bindir = fresh_venv(tmp_path / "venv", house, "-r", str(house / "requirements.txt"))
    cwd = data_folder(tmp_path / "work", root / "data" / "raw" / "readings.json")
    result = run_installed(bindir, ["python", "-m", "demo"], cwd)
    assert result.returncode == 0, result.stderr
    assert (cwd / "data" / "reporting" / "report.txt").is_file()


@pytest.fixture(scope="module")
def installed_demo(tmp_path_factory, wheelhouse):  # type: ignore[no-untyped-def]
    """The example project built by ``kilnflow package`` into a fresh, offline venv."""
    from kilnflow.project import create_project

    base = tmp_path_factory.mktemp("installed")
    root = create_project("demo", base / "demo")
    wheel = package_project(root, base / "dist")
    bindir = fresh_venv(base / "venv", wheelhouse, str(wheel))
    data = root / "data" / "raw" / "readings.json"
    return bindir, data, wheel


@pytest.mark.slow
def test_python_m_runs_the_packaged_project_from_an_empty_folder(installed_demo, tmp_path):
    bindir, data, _ = installed_demo
    cwd = data_folder(tmp_path, data)
    result = run_installed(bindir, ["python", "-m", "demo"], cwd)
    assert result.returncode == 0, result.stderr
    report = (cwd / "data" / "reporting" / "report.txt").read_text()
    assert report.startswith("Station report")
    assert "east" in report
    assert not (cwd / "conf").exists()
    assert not (cwd / "pyproject.toml").exists()


@pytest.mark.slow
def test_kilnflow_data_dir_anchors_relative_catalog_paths(installed_demo, tmp_path):
    bindir, data, _ = installed_demo
    folder = data_folder(tmp_path / "data-home", data)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    result = run_installed(bindir, ["demo"], cwd, KILNFLOW_DATA_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    assert (folder / "data" / "reporting" / "report.txt").read_text().startswith("Station report")
    assert sorted(path.name for path in cwd.iterdir()) == [".home"]


@pytest.mark.slow
def test_console_script_with_params_env_and_conf_source(installed_demo, tmp_path):
    bindir, data, _ = installed_demo
    cwd = data_folder(tmp_path, data)
    result = run_installed(bindir, ["demo", "--params", "min_valid=11"], cwd)
    assert result.returncode == 0, result.stderr
    assert "east" not in (cwd / "data" / "reporting" / "report.txt").read_text()

    missing_env = run_installed(bindir, ["demo", "--env", "prod"], cwd)
    assert missing_env.returncode == 1
    assert "prod" in missing_env.stderr
    assert "base" in missing_env.stderr

    conf = tmp_path / "conf_override"
    (conf / "base").mkdir(parents=True)
    (conf / "base" / "catalog.yml").write_text(
        "readings: {type: JSONDataset, filepath: data/raw/readings.json}\n"
        "report: {type: TextDataset, filepath: out/alt_report.txt}\n"
    )
    (conf / "base" / "parameters.yml").write_text(
        "min_valid: 15\nreport: {title: Override, decimals: 0}\n"
    )
    archive = tmp_path / "conf.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(conf, arcname="conf")
    for source in (str(conf), str(archive)):
        shutil.rmtree(cwd / "out", ignore_errors=True)
        result = run_installed(bindir, ["python", "-m", "demo", "--conf-source", source], cwd)
        assert result.returncode == 0, result.stderr
        report = (cwd / "out" / "alt_report.txt").read_text()
        assert report.startswith("Override")
        assert "north" not in report  # below min_valid 15


@pytest.mark.slow
def test_missing_pipeline_fails_with_one_line(installed_demo, tmp_path):
    bindir = installed_demo[0]
    result = run_installed(bindir, ["python", "-m", "demo", "--pipeline", "nope"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: Pipeline 'nope' is not registered. Registered pipelines: __default__, readings."
    ]


@pytest.mark.slow
def test_main_from_python_returns_outputs_and_session_is_recorded(installed_demo, tmp_path):
    bindir, data, _ = installed_demo
    cwd = data_folder(tmp_path, data)
    code = (
        "from demo.__main__ import main\n"
        "out = main(['--to-nodes', 'clean'])\n"
        "print(len(out['clean_readings']))\n"
    )
    result = run_installed(bindir, ["python", "-c", code], cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "7"
    listing = run_installed(bindir, ["kilnflow", "session", "list"], cwd)
    assert "success  demo" in listing.stdout
    installed = run_installed(bindir, ["kilnflow", "info", "--installed"], cwd)
    assert "demo 0.1.0" in installed.stdout


@pytest.mark.slow
def test_pipx_runs_the_wheel(installed_demo, tmp_path, wheelhouse):
    _, data, wheel = installed_demo
    cwd = data_folder(tmp_path, data)
    environment = outside_environment(
        PIPX_HOME=str(tmp_path / "pipx"),
        PIPX_BIN_DIR=str(tmp_path / "pipx-bin"),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheelhouse),
        KILNFLOW_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipx"), "run", "--spec", str(wheel), "demo"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (cwd / "data" / "reporting" / "report.txt").read_text().startswith("Station report")


@pytest.mark.slow
def test_standard_frontends_build_the_same_wheel(make_project, tmp_path, wheelhouse):
    root = make_project()
    environment = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "pip"), "."],
        cwd=root,
        env=environment,
        check=True,
        capture_output=True,
    )
    (pip_wheel,) = (tmp_path / "pip").glob("demo-*.whl")
    assert wheel_names(pip_wheel) == EXPECTED_WHEEL

    result = run_cli(
        "package",
        "--isolated",
        "--output-dir",
        str(tmp_path / "b"),
        cwd=root,
        env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)},
    )
    (isolated,) = (tmp_path / "b").glob("demo-*.whl")
    assert f"Built {isolated}" in result.stdout
    assert wheel_names(isolated) == EXPECTED_WHEEL


def test_templates_are_read_from_the_checkout(tmp_path):
    from kilnflow._resources import templates

    assert Path(str(templates())) == Path(__file__).resolve().parents[1] / "templates"
    assert "configure_project" in (templates() / "package" / "__main__.py.jinja").read_text()


@pytest.mark.slow
def test_templates_are_read_from_an_installed_kilnflow_wheel(installed_demo, tmp_path):
    bindir = installed_demo[0]
    code = (
        "from kilnflow._resources import templates\n"
        "print(templates())\n"
        "print((templates() / 'project' / 'pyproject.toml.jinja').read_text()[:14])\n"
    )
    shown = run_installed(bindir, ["python", "-c", code], tmp_path)
    assert shown.returncode == 0, shown.stderr
    location, first_line = shown.stdout.splitlines()
    assert "site-packages" in location
    assert first_line == "[build-system]"


@pytest.mark.slow
def test_runtime_venv_holds_only_what_running_needs(installed_demo, tmp_path, wheelhouse):
    """Building tools are an extra: the commands that need them say how to get them."""
    bindir = installed_demo[0]
    listed = subprocess.run(
        [str(bindir / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert not installed & {"hatchling", "build", "jinja2", "pathspec", "trove-classifiers"}
    assert len(installed - {"pip", "setuptools"}) <= 12, sorted(installed)

    refused = run_installed(bindir, ["kilnflow", "new", "fromwheel"], tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "Error: kilnflow new needs jinja2, which running a project does not: "
        "pip install 'kilnflow[build]'"
    )
    assert not (tmp_path / "fromwheel").exists()

    venv_dir = tmp_path / "builder"
    builder = fresh_venv(venv_dir, wheelhouse, "kilnflow[build]")
    created = run_installed(builder, ["kilnflow", "new", "fromwheel"], tmp_path)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "fromwheel" / "src" / "fromwheel" / "pipeline_registry.py").is_file()
