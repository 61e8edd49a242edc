"""Datasets on their own: round trips, atomic saves, versions, memory copies."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import kilnflow.io
from kilnflow.errors import DatasetError, VersionNotFoundError
from kilnflow.io import (
    DataCatalog,
    JSONDataset,
    MemoryDataset,
    PickleDataset,
    TextDataset,
    YAMLDataset,
)
from kilnflow.io.pandas import CSVDataset, ParquetDataset

FRAME = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "é"], "score": [0.5, 1.5, 2.5]})

CASES: list[tuple[type[Any], str, Any]] = [
    (PickleDataset, "data.pkl", {"rows": [1, 2], "pair": (3, 4), "blob": b"\x00\xff"}),
    (JSONDataset, "data.json", {"rows": [1, 2], "name": "é", "nested": {"ok": True}}),
    (YAMLDataset, "data.yml", {"rows": [1, 2], "name": "é", "nested": {"ok": None}}),
    (TextDataset, "data.txt", "first line\nsecond é\r\nno newline at end"),
    (CSVDataset, "data.csv", FRAME),
    (ParquetDataset, "data.parquet", FRAME),
]


def assert_same(expected: Any, actual: Any) -> None:
    if isinstance(expected, pd.DataFrame):
        assert_frame_equal(actual, expected)
    else:
        assert actual == expected


@pytest.fixture(params=["local", "memory"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A directory URL unique to the test: on local disk, or in fsspec's memory store."""
    if request.param == "local":
        return str(tmp_path / "store")
    return f"memory://kilnflow-tests/{tmp_path.name}/store"


def test_public_names() -> None:
    assert sorted(kilnflow.io.__all__) == [
        "AbstractDataset",
        "DataCatalog",
        "FileDataset",
        "JSONDataset",
        "MemoryDataset",
        "PathDataset",
        "PickleDataset",
        "TextDataset",
        "Version",
        "YAMLDataset",
        "atomic_directory",
        "atomic_write",
        "dataset_from_config",
        "discard_unfinished_writes",
        "require",
        "text_io",
        "write_file",
    ]
    assert kilnflow.io.pandas.__all__ == [
        "CSVDataset",
        "ExcelDataset",
        "FeatherDataset",
        "JSONDataset",
        "ParquetDataset",
        "SQLQueryDataset",
        "SQLTableDataset",
    ]


@pytest.mark.parametrize(
    ("cls", "filename", "data"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
def test_round_trip(location: str, cls: type[Any], filename: str, data: Any) -> None:
    dataset = cls(filepath=f"{location}/nested/dir/{filename}")
    assert not dataset.exists()

    dataset.save(data)

    assert dataset.exists()
    assert_same(data, dataset.load())
    assert_same(data, cls(filepath=f"{location}/nested/dir/{filename}").load())


def test_load_and_save_args_are_passed_through(tmp_path: Path) -> None:
    dataset = CSVDataset(
        filepath=tmp_path / "frame.csv",
        save_args={"sep": ";", "index": True},
        load_args={"sep": ";", "index_col": 0},
    )
    dataset.save(FRAME)

    assert (tmp_path / "frame.csv").read_text(encoding="utf-8").startswith(";id;name;score")
    assert_frame_equal(dataset.load(), FRAME)


def test_json_is_written_indented_utf8(tmp_path: Path) -> None:
    JSONDataset(filepath=str(tmp_path / "x.json"), save_args={"ensure_ascii": False}).save(
        {"name": "é"}
    )
    assert (tmp_path / "x.json").read_text(encoding="utf-8") == '{\n  "name": "é"\n}'


def test_relative_path_is_fixed_when_the_dataset_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dataset = TextDataset(filepath="out/result.txt")
    monkeypatch.chdir(tmp_path.parent)

    dataset.save("done")

    assert (tmp_path / "out" / "result.txt").read_text(encoding="utf-8") == "done"


class _ExplodesWhenPickled:
    def __reduce__(self) -> Any:
        raise RuntimeError("serializer gave up halfway")


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (PickleDataset, ["x" * 100_000, _ExplodesWhenPickled()]),
        (JSONDataset, {"fine": "x" * 100_000, "broken": object()}),
        (TextDataset, 42),
    ],
    ids=["pickle", "json", "text"],
)
def test_failed_local_save_keeps_previous_file_and_leaves_nothing_behind(
    tmp_path: Path, cls: type[Any], bad: Any
) -> None:
    path = tmp_path / "out" / "data.bin"
    dataset = cls(filepath=str(path))
    good = "previous contents" if cls is TextDataset else {"previous": "contents"}
    dataset.save(good)
    before = path.read_bytes()

    with pytest.raises(DatasetError, match=r"(Cannot|Could not) save dataset"):
        dataset.save(bad)

    assert path.read_bytes() == before
    assert dataset.load() == good
    assert os.listdir(path.parent) == ["data.bin"]


def test_failed_first_save_creates_no_file(tmp_path: Path) -> None:
    dataset = PickleDataset(filepath=str(tmp_path / "data.pkl"))

    with pytest.raises(DatasetError, match=r"serializer gave up halfway") as info:
        dataset.save(["x" * 100_000, _ExplodesWhenPickled()])

    assert isinstance(info.value.__cause__, RuntimeError)
    assert os.listdir(tmp_path) == []
    assert not dataset.exists()


def test_failed_remote_save_keeps_previous_object(tmp_path: Path) -> None:
    dataset = PickleDataset(filepath=f"memory://kilnflow-tests/{tmp_path.name}/data.pkl")
    dataset.save({"previous": 1})

    with pytest.raises(DatasetError, match=r"serializer gave up halfway"):
        dataset.save(["x" * 100_000, _ExplodesWhenPickled()])

    assert dataset.load() == {"previous": 1}


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_saved_file_respects_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        PickleDataset(filepath=str(tmp_path / "data.pkl")).save(1)
    finally:
        os.umask(old)
    assert (tmp_path / "data.pkl").stat().st_mode & 0o777 == 0o644


def test_load_of_missing_file_names_the_dataset_and_chains_the_cause(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"cars": {"type": "PickleDataset", "filepath": str(tmp_path / "cars.pkl")}}
    )

    with pytest.raises(
        DatasetError, match=r"Could not load dataset 'cars' \(PickleDataset"
    ) as info:
        catalog.load("cars")

    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_unknown_protocol_is_reported_with_the_dataset(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"cars": {"type": "PickleDataset", "filepath": "nosuchprotocol://bucket/cars.pkl"}}
    )

    with pytest.raises(DatasetError, match=r"Could not load dataset 'cars'.*nosuchprotocol"):
        catalog.load("cars")


def test_text_dataset_refuses_non_strings_with_advice(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"notes": {"type": "TextDataset", "filepath": str(tmp_path / "notes.txt")}}
    )
    with pytest.raises(DatasetError, match=r"dataset 'notes'.*stores str, not int.*PickleDataset"):
        catalog.save("notes", 3)


def test_file_dataset_rejects_bad_storage_options(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"credentials must be a mapping"):
        PickleDataset(filepath=str(tmp_path / "x.pkl"), credentials="secret")  # type: ignore[arg-type]


def test_credentials_never_show_in_describe_repr_or_errors(tmp_path: Path) -> None:
    dataset = PickleDataset(
        filepath=f"memory://kilnflow-tests/{tmp_path.name}/missing.pkl",
        credentials={"token": "s3cr3t-value"},
        fs_args={"password": "other-s3cr3t"},
    )

    with pytest.raises(DatasetError) as info:
        dataset.load()

    shown = f"{dataset.describe()} {dataset!r} {info.value}"
    assert "s3cr3t" not in shown
    assert dataset.describe() == {
        "filepath": f"memory://kilnflow-tests/{tmp_path.name}/missing.pkl"
    }


# Versioning


def versioned(
    path: str, load_version: str | None = None, save_version: str | None = None
) -> PickleDataset:
    return PickleDataset(
        filepath=path, versioned=True, load_version=load_version, save_version=save_version
    )


def test_versioned_save_layout_and_latest_load(location: str) -> None:
    path = f"{location}/model.pkl"
    versioned(path, save_version="2024-01-01T00.00.00.000000Z").save("old")
    versioned(path, save_version="2024-03-01T00.00.00.000000Z").save("new")
    versioned(path, save_version="2024-02-01T00.00.00.000000Z").save("middle")

    assert versioned(path).load() == "new"
    assert versioned(path, load_version="2024-01-01T00.00.00.000000Z").load() == "old"
    assert versioned(path).exists()
    if location.startswith("memory://"):
        return
    assert sorted(os.listdir(path)) == [
        "2024-01-01T00.00.00.000000Z",
        "2024-02-01T00.00.00.000000Z",
        "2024-03-01T00.00.00.000000Z",
    ]
    assert os.listdir(os.path.join(path, "2024-03-01T00.00.00.000000Z")) == ["model.pkl"]


def test_a_save_version_that_exists_is_what_loads(location: str) -> None:
    """Sessions sharing a save version read their own data, not a newer run's."""
    path = f"{location}/summary.pkl"
    versioned(path, save_version="2024-01-01-dag-run-a").save("run a")
    versioned(path, save_version="2024-02-01-dag-run-b").save("run b")

    assert versioned(path, save_version="2024-01-01-dag-run-a").load() == "run a"
    assert versioned(path, save_version="2024-03-01-not-saved-yet").load() == "run b"
    pinned = versioned(path, "2024-02-01-dag-run-b", "2024-01-01-dag-run-a")
    assert pinned.load() == "run b"


def test_latest_version_ignores_directories_without_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    versioned(str(path), save_version="2024-01-01").save("real")
    (path / "9999-unfinished").mkdir()

    assert versioned(str(path)).load() == "real"


def test_no_version_saved_yet(location: str) -> None:
    catalog = DataCatalog.from_config(
        {"model": {"type": "PickleDataset", "filepath": f"{location}/model.pkl", "versioned": True}}
    )

    assert not catalog.exists("model")
    with pytest.raises(VersionNotFoundError, match=r"dataset 'model'.*no version has been saved"):
        catalog.load("model")


def test_explicit_load_version_that_does_not_exist(tmp_path: Path) -> None:
    path = str(tmp_path / "model.pkl")
    versioned(path, save_version="2024-01-01").save("real")
    catalog = DataCatalog.from_config(
        {"model": {"type": "PickleDataset", "filepath": path, "versioned": True}},
        load_versions={"model": "2023-12-31"},
    )

    assert not catalog.exists("model")
    with pytest.raises(VersionNotFoundError, match=r"dataset 'model'.*version '2023-12-31'"):
        catalog.load("model")


def test_a_version_is_never_overwritten(location: str) -> None:
    path = f"{location}/model.pkl"
    versioned(path, save_version="v1").save("first")

    with pytest.raises(DatasetError, match=r"version 'v1' already exists"):
        versioned(path, save_version="v1").save("second")

    assert versioned(path).load() == "first"


def test_unversioned_dataset_refuses_versions(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not versioned; pass versioned=True"):
        PickleDataset(filepath=str(tmp_path / "x.pkl"), load_version="v1")


def test_versioned_dataset_without_save_version_makes_one(tmp_path: Path) -> None:
    dataset = versioned(str(tmp_path / "x.pkl"))
    dataset.save(1)

    (version,) = os.listdir(tmp_path / "x.pkl")
    assert dataset.describe()["save_version"] == version
    assert dataset.load() == 1


# MemoryDataset


def test_memory_dataset_copies_so_nodes_cannot_share_state() -> None:
    data = {"rows": [1, 2]}
    dataset = MemoryDataset(data)
    data["rows"].append(3)

    loaded = dataset.load()
    loaded["rows"].append(4)

    assert dataset.load() == {"rows": [1, 2]}


def test_memory_dataset_assign_shares_the_object() -> None:
    data = {"rows": [1]}
    dataset = MemoryDataset(data, copy_mode="assign")
    assert dataset.load() is data


def test_memory_dataset_copies_dataframes_with_their_own_copy() -> None:
    dataset = MemoryDataset(FRAME)
    loaded = dataset.load()

    assert loaded is not FRAME
    loaded.loc[0, "id"] = 100
    assert_frame_equal(dataset.load(), FRAME)


def test_memory_dataset_uncopyable_data_explains_copy_mode() -> None:
    dataset = MemoryDataset()
    dataset.name = "lock"

    with pytest.raises(DatasetError, match=r"dataset 'lock'.*copy_mode: assign"):
        dataset.save({"lock": threading.Lock()})

    lock = threading.Lock()
    MemoryDataset(copy_mode="assign").save(lock)


def test_memory_dataset_empty_load_names_it() -> None:
    dataset = MemoryDataset()
    dataset.name = "features"

    assert not dataset.exists()
    with pytest.raises(DatasetError, match=r"dataset 'features'.*holds no data"):
        dataset.load()


def test_memory_dataset_release_drops_data() -> None:
    dataset = MemoryDataset([1])
    dataset.release()

    assert not dataset.exists()
    with pytest.raises(DatasetError, match=r"holds no data"):
        dataset.load()


def test_memory_dataset_holds_none_as_data() -> None:
    dataset = MemoryDataset(None)
    assert dataset.exists()
    assert dataset.load() is None


def test_memory_dataset_unknown_copy_mode() -> None:
    with pytest.raises(
        DatasetError, match=r"unknown copy_mode 'deep_copy'. Did you mean 'deepcopy'"
    ):
        MemoryDataset(copy_mode="deep_copy")


def test_memory_dataset_describe() -> None:
    assert MemoryDataset([1], copy_mode="copy").describe() == {"data": "list", "copy_mode": "copy"}
    assert repr(MemoryDataset()) == "MemoryDataset()"


# Imports stay cheap


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_and_building_a_catalog_loads_no_heavy_library(tmp_path: Path) -> None:
    output = run_python(
        "import sys\n"
        "import kilnflow.io, kilnflow.io.pandas\n"
        "catalog = kilnflow.io.DataCatalog.from_config({\n"
        f"    'cars': {{'type': 'pandas.CSVDataset', 'filepath': {str(tmp_path / 'c.csv')!r}}},\n"
        f"    'conf': {{'type': 'YAMLDataset', 'filepath': {str(tmp_path / 'c.yml')!r}}},\n"
        "    '{name}_pq': {'type': 'pandas.ParquetDataset', 'filepath': 'memory://x/{name}.pq'},\n"
        "})\n"
        "catalog.get('a_pq')\n"
        "import kilnflow.io.polars, kilnflow.io.partitions, kilnflow.io.matplotlib\n"
        "import kilnflow.io.plotly, kilnflow.io.api\n"
        "every = {f'd{i}': {'type': t, 'filepath': 'x'} for i, t in enumerate((\n"
        "    'pandas.ExcelDataset', 'polars.LazyPolarsDataset', 'matplotlib.MatplotlibDataset',\n"
        "    'plotly.JSONDataset', 'pickle.PickleDataset'))}\n"
        "every['api'] = {'type': 'api.APIDataset', 'url': 'http://127.0.0.1:9/'}\n"
        "every['sql'] = {'type': 'pandas.SQLTableDataset', 'table_name': 't'}\n"
        "every['parts'] = {'type': 'partitions.PartitionedDataset', 'path': 'p', 'dataset': 'X'}\n"
        "kilnflow.io.DataCatalog.from_config(every)\n"
        "heavy = ('fsspec', 'yaml', 'pandas', 'pyarrow', 'polars', 'matplotlib', 'plotly',\n"
        "         'requests', 'sqlalchemy', 'openpyxl', 'joblib', 'cloudpickle')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    assert output == "[]"


def test_pandas_datasets_without_pandas_say_what_to_install(tmp_path: Path) -> None:
    output = run_python(
        "import sys\n"
        "sys.modules['pandas'] = None\n"
        "import kilnflow.io.pandas\n"
        "from kilnflow.io import DataCatalog\n"
        "try:\n"
        "    entry = {'type': 'pandas.CSVDataset', 'filepath': 'c.csv'}\n"
        "    DataCatalog.from_config({'cars': entry}).get('cars')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    assert output == (
        "DatasetError Dataset 'cars': could not create a pandas.CSVDataset: pandas.CSVDataset "
        "for 'c.csv' needs pandas, which is not installed; install it with "
        'pip install "kilnflow[pandas]".'
    )


def test_pickle_file_is_standard_pickle(tmp_path: Path) -> None:
    PickleDataset(filepath=str(tmp_path / "x.pkl"), save_args={"protocol": 2}).save([1, 2])
    assert pickle.loads((tmp_path / "x.pkl").read_bytes()) == [1, 2]


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    from kilnflow.io import atomic_write

    target = tmp_path / "deep" / "er" / "out.txt"
    with atomic_write(target, "w") as text:
        text.write("first é")

    def write_half() -> None:
        with atomic_write(target) as binary:
            binary.write(b"partial")
            raise RuntimeError("halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        write_half()

    assert target.read_text(encoding="utf-8") == "first é"
    assert os.listdir(target.parent) == ["out.txt"]


def test_atomic_directory_swaps_a_whole_folder(tmp_path: Path) -> None:
    from kilnflow.io import atomic_directory

    target = tmp_path / "figures"
    with atomic_directory(target) as folder:
        Path(folder, "a.png").write_bytes(b"a")
    with atomic_directory(target) as folder:
        Path(folder, "b.png").write_bytes(b"b")
    assert os.listdir(target) == ["b.png"]

    def render_half() -> None:
        with atomic_directory(target) as folder:
            Path(folder, "c.png").write_bytes(b"c")
            raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        render_half()

    assert os.listdir(target) == ["b.png"]
    assert os.listdir(tmp_path) == ["figures"]


def test_atomic_directory_keeps_the_old_folder_when_the_new_one_cannot_take_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kilnflow.io import atomic_directory

    target = tmp_path / "figures"
    with atomic_directory(target) as folder:
        Path(folder, "a.png").write_bytes(b"a")
    real_replace = os.replace

    def failing_swap(source: str, destination: str) -> None:
        if Path(destination) == target and Path(source, "b.png").exists():
            raise OSError("device busy")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", failing_swap)
    with pytest.raises(OSError, match="device busy"), atomic_directory(target) as folder:
        Path(folder, "b.png").write_bytes(b"b")

    assert os.listdir(target) == ["a.png"]
    assert os.listdir(tmp_path) == ["figures"]
