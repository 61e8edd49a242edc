"""Writing your own dataset: README's example, run as written, and foreign classes."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import fsspec
import pytest
import yaml

from kilnflow.errors import DatasetError
from kilnflow.io import AbstractDataset, DataCatalog, atomic_write

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n### {title}\n")
    end = text.find("\n#", start + 1)
    return text[start:end]


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def my_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """README's dataset as ``my_project/datasets.py``; returns README's catalog entries."""
    section = readme_section("Writing your own dataset")
    (python,) = code_blocks(section, "python")
    (catalog,) = code_blocks(section, "yaml")
    assert len(python.strip().splitlines()) <= 15
    package = tmp_path / "code" / "my_project"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "datasets.py").write_text(python, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    for name in ("my_project", "my_project.datasets"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    entries: dict[str, Any] = yaml.safe_load(catalog)
    return entries


@pytest.mark.parametrize("where", ["local", "memory"])
def test_readme_example_dataset_versions_and_saves_atomically(
    tmp_path: Path, my_project: dict[str, Any], where: str
) -> None:
    entry = dict(my_project["names"])
    root = str(tmp_path / "data") if where == "local" else f"memory://kf-ext/{tmp_path.name}"
    entry["filepath"] = entry["filepath"].replace("data", root, 1)

    first = DataCatalog.from_config({"names": entry}, save_version="v1")
    first.save("names", ["ada", "grace"])
    second = DataCatalog.from_config({"names": entry}, save_version="v2")
    second.save("names", ["edsger"])

    fs, path = fsspec.core.url_to_fs(entry["filepath"])
    assert sorted(fs.ls(path, detail=False)) == [f"{path}/v1", f"{path}/v2"]
    assert DataCatalog.from_config({"names": entry}).load("names") == ["edsger"]
    pinned = DataCatalog.from_config({"names": entry}, load_versions={"names": "v1"})
    assert pinned.load("names") == ["ada", "grace"]


def test_readme_example_dataset_failing_save_keeps_the_old_file(
    tmp_path: Path, my_project: dict[str, Any]
) -> None:
    data = tmp_path / "data"
    entry = {**my_project["names"], "filepath": str(data / "names.txt")}
    entry.pop("versioned")
    catalog = DataCatalog.from_config({"names": entry})
    catalog.save("names", ["ada"])

    def lines() -> Any:
        yield "grace"
        raise RuntimeError("the source went away")

    with pytest.raises(DatasetError, match=r"Could not save dataset 'names'.*went away"):
        catalog.save("names", lines())

    assert (data / "names.txt").read_text(encoding="utf-8") == "ada\n"
    assert sorted(p.name for p in data.iterdir()) == ["names.txt"]


class KedroStyleVersion(NamedTuple):
    load: str | None
    save: str | None


class VersionArgument:
    """A foreign class that versions itself, given a ``version`` (as Kedro's do)."""

    def __init__(self, filepath: str, version: Any = None) -> None:
        self.filepath = Path(filepath)
        self.version = version

    def load(self) -> str:
        versions = sorted(self.filepath.iterdir())
        chosen = self.version.load or versions[-1].name
        return (self.filepath / chosen).read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        self.filepath.mkdir(parents=True, exist_ok=True)
        (self.filepath / self.version.save).write_text(data, encoding="utf-8")


class FilepathOnly:
    """A foreign class that knows nothing of versions: it reads and writes one file."""

    def __init__(self, filepath: str, suffix: str = "") -> None:
        self.filepath = filepath
        self.suffix = suffix

    def load(self) -> str:
        return Path(self.filepath).read_text(encoding="utf-8")

    def save(self, data: str) -> None:
        with atomic_write(self.filepath, "w") as file:
            file.write(data + self.suffix)


class NoPath:
    def __init__(self, table: str) -> None:
        self.table = table

    def load(self) -> None:
        return None

    def save(self, data: Any) -> None:
        return None


def test_foreign_class_taking_a_version_gets_the_catalog_versions(tmp_path: Path) -> None:
    entry = {"type": VersionArgument, "filepath": str(tmp_path / "v"), "versioned": True}
    catalog = DataCatalog.from_config({"x": entry}, save_version="v1")
    catalog.save("x", "first")
    DataCatalog.from_config({"x": entry}, save_version="v2").save("x", "second")

    assert (tmp_path / "v" / "v1").read_text(encoding="utf-8") == "first"
    assert DataCatalog.from_config({"x": entry}).load("x") == "second"
    pinned = DataCatalog.from_config({"x": entry}, load_versions={"x": "v1"})
    assert pinned.load("x") == "first"
    version = pinned.get("x")._wrapped.version  # type: ignore[union-attr]
    assert tuple(version) == tuple(KedroStyleVersion("v1", pinned.save_version))


@pytest.mark.parametrize("where", ["local", "memory"])
def test_foreign_class_with_a_filepath_is_versioned_by_kilnflow(tmp_path: Path, where: str) -> None:
    if where == "memory":
        entry = {"type": _MemoryText, "filepath": f"memory://kf-foreign/{tmp_path.name}/t.txt"}
    else:
        entry = {"type": FilepathOnly, "filepath": str(tmp_path / "t.txt"), "suffix": "!"}
    entry["versioned"] = True

    catalog = DataCatalog.from_config({"t": entry}, save_version="v1")
    assert not catalog.exists("t")
    catalog.save("t", "one")
    assert catalog.exists("t")
    DataCatalog.from_config({"t": entry}, save_version="v2").save("t", "two")

    suffix = "!" if where == "local" else ""
    assert DataCatalog.from_config({"t": entry}).load("t") == "two" + suffix
    old = DataCatalog.from_config({"t": entry}, load_versions={"t": "v1"})
    assert old.load("t") == "one" + suffix
    with pytest.raises(DatasetError, match=r"version 'v1' already exists"):
        DataCatalog.from_config({"t": entry}, save_version="v1").save("t", "again")
    assert "versioned=True" in repr(old.get("t"))


class _MemoryText:
    """A foreign class on fsspec URLs."""

    def __init__(self, filepath: str) -> None:
        self.filepath = filepath

    def load(self) -> str:
        with fsspec.open(self.filepath, "r", encoding="utf-8") as file:
            text: str = file.read()
        return text

    def save(self, data: str) -> None:
        with fsspec.open(self.filepath, "w", encoding="utf-8") as file:
            file.write(data)


def test_foreign_class_that_cannot_be_versioned() -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config({"t": {"type": NoPath, "table": "t", "versioned": True}})
    assert str(info.value) == (
        "Dataset 't': type 'NoPath' cannot be versioned: it takes neither a 'filepath' nor "
        "a 'version' argument; drop `versioned: true`."
    )


def test_a_dataset_without_exists_counts_as_existing() -> None:
    class Endpoint(AbstractDataset):
        def _load(self) -> Any:
            return 1

        def _save(self, data: Any) -> None:
            raise ValueError("read-only endpoint")

        def _describe(self) -> dict[str, Any]:
            return {"url": "http://127.0.0.1:9"}

    dataset = Endpoint()
    assert dataset.exists()
    with pytest.raises(DatasetError) as info:
        dataset.save(2)
    assert str(info.value) == (
        "Could not save dataset Endpoint(url='http://127.0.0.1:9'): ValueError: read-only endpoint"
    )


def test_a_missing_library_fails_only_the_pipelines_that_use_it(
    make_project: Any, tmp_path: Path
) -> None:
    """With openpyxl hidden, ``catalog list`` lists the Excel dataset, other pipelines run."""
    from conftest import run_cli

    project = make_project()
    with (project / "conf" / "base" / "catalog.yml").open("a", encoding="utf-8") as catalog:
        catalog.write(
            "\nbook:\n  type: pandas.ExcelDataset\n  filepath: data/raw/book.xlsx\n"
            "  metadata: {layer: raw}\n"
        )
    workbook = project / "src" / "demo" / "pipelines" / "workbook"
    workbook.mkdir()
    (workbook / "__init__.py").write_text(
        "from kilnflow.pipeline import Pipeline, node\n\n\n"
        "def create_pipeline() -> Pipeline:\n"
        '    return Pipeline([node(len, "book", "rows", name="count_rows")])\n',
        encoding="utf-8",
    )
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['openpyxl'] = None\n", encoding="utf-8"
    )
    env = {"PYTHONPATH": str(hide)}

    listed = run_cli("catalog", "list", cwd=project, env=env).stdout.splitlines()
    assert "book: pandas.ExcelDataset" in listed
    run_cli("run", "--pipeline", "readings", cwd=project, env=env)
    assert (project / "data" / "reporting" / "report.txt").exists()

    failed = run_cli("run", "--pipeline", "workbook", cwd=project, env=env, check=False)
    assert failed.returncode != 0
    assert "Traceback" not in failed.stderr
    assert (
        "Dataset 'book': could not create a pandas.ExcelDataset: pandas.ExcelDataset for "
        f"'{(project / 'data' / 'raw' / 'book.xlsx').as_posix()}' needs openpyxl, which is not "
        'installed; install it with pip install "kilnflow[excel]".'
    ) in failed.stderr
