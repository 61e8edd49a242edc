"""The DataCatalog: configuration, credentials, factories, parameters, undeclared data."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from kilnflow.errors import DatasetError, DatasetNotFoundError
from kilnflow.io import (
    AbstractDataset,
    DataCatalog,
    JSONDataset,
    MemoryDataset,
    dataset_from_config,
)
from kilnflow.io.pandas import CSVDataset


class ListDataset(AbstractDataset):
    """A custom dataset, as a user would write one."""

    def __init__(self, items: list[Any], prefix: str = "") -> None:
        self.items = items
        self.prefix = prefix

    def _load(self) -> Any:
        return [f"{self.prefix}{item}" for item in self.items]

    def _save(self, data: Any) -> None:
        self.items = list(data)

    def _exists(self) -> bool:
        return bool(self.items)

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self.prefix}


class BrokenDataset(ListDataset):
    def _load(self) -> Any:
        raise KeyError("row 7")


def test_from_config_builds_named_datasets_and_skips_anchors(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "_csv": {"type": "pandas.CSVDataset"},
            "cars": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "cars.csv")},
            "notes": {"type": "TextDataset", "filepath": str(tmp_path / "notes.txt")},
            "scratch": {"type": "MemoryDataset", "data": [1, 2]},
        }
    )

    assert catalog.list() == ["cars", "notes", "scratch"]
    assert catalog.list("^c") == ["cars"]
    assert isinstance(catalog.get("cars"), CSVDataset)
    assert catalog.load("scratch") == [1, 2]
    assert "_csv" not in catalog
    assert catalog.get("cars").name == "cars"  # type: ignore[union-attr]


def test_empty_config() -> None:
    catalog = DataCatalog.from_config(None)
    assert catalog.list() == []
    assert catalog.save_version is not None


def test_list_with_an_invalid_regex() -> None:
    with pytest.raises(DatasetError, match=r"'\(' is not a valid regular expression"):
        DataCatalog().list("(")


def test_builtin_types_can_be_written_as_dotted_paths(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"n": {"type": "kilnflow.io.JSONDataset", "filepath": str(tmp_path / "n.json")}}
    )
    assert isinstance(catalog.get("n"), JSONDataset)


# Bad entries


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"type": "pandas.CVSDataset", "filepath": "x.csv"},
            "Dataset 'cars': unknown type 'pandas.CVSDataset'. Did you mean 'pandas.CSVDataset'?",
        ),
        (
            {"type": "PikleDataset", "filepath": "x"},
            "Dataset 'cars': unknown type 'PikleDataset'. Did you mean 'PickleDataset'?",
        ),
        (
            {"type": "no_such_module_kf.Thing"},
            "Dataset 'cars': unknown type 'no_such_module_kf.Thing'. Use a type from the "
            "datasets table in README or the dotted path of a dataset class.",
        ),
        ({"type": "os.sep"}, "Dataset 'cars': type 'os.sep' is a str, not a class"),
        (
            {"type": "collections.OrderedDict"},
            "Dataset 'cars': type 'collections.OrderedDict' is not a dataset; subclass",
        ),
        ({"type": 3}, "Dataset 'cars': 'type' must be a string"),
        ({"filepath": "x.csv"}, "Dataset 'cars' has no 'type'; add one"),
        (
            {"type": "pandas.CSVDataset", "filpath": "x.csv"},
            "Dataset 'cars': type 'pandas.CSVDataset' has no argument 'filpath'. "
            "Did you mean 'filepath'?",
        ),
        (
            {"type": "MemoryDataset", "zzz": 1},
            "Dataset 'cars': type 'MemoryDataset' has no argument 'zzz'. "
            "Valid arguments: copy_mode, data.",
        ),
        (
            {"type": "pandas.CSVDataset"},
            "Dataset 'cars': type 'pandas.CSVDataset' needs argument 'filepath'; add it",
        ),
        (
            {"type": "MemoryDataset", "copy_mode": "shallow"},
            "Dataset 'cars': could not create a MemoryDataset: "
            "MemoryDataset: unknown copy_mode 'shallow'. Use one of assign, copy, deepcopy.",
        ),
        (
            {"type": "MemoryDataset", "versioned": True},
            "Dataset 'cars': type 'MemoryDataset' has no argument 'versioned'.",
        ),
    ],
)
def test_bad_entries_name_the_dataset(config: Any, message: str) -> None:
    """Each fails when the catalog is built, or (imports, construction) when first used."""
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config({"cars": config}).get("cars")
    assert str(info.value).startswith(message)


def test_entry_that_is_not_a_mapping() -> None:
    with pytest.raises(DatasetError, match=r"Dataset 'cars': its catalog entry must be a mapping"):
        DataCatalog.from_config({"cars": "data/cars.csv"})


def test_module_that_fails_to_import_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kf_broken_datasets.py").write_text("import kf_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kf_broken_datasets", raising=False)

    with pytest.raises(
        DatasetError, match=r"importing module 'kf_broken_datasets'.*kf_missing_dep"
    ):
        DataCatalog.from_config({"cars": {"type": "kf_broken_datasets.CarsDataset"}}).get("cars")


# Custom datasets


def test_dotted_path_custom_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kf_custom_datasets.py").write_text(
        textwrap.dedent(
            """
            from kilnflow.io import AbstractDataset

            class Upper(AbstractDataset):
                def __init__(self, text):
                    self.text = text
                def _load(self):
                    return self.text.upper()
                def _save(self, data):
                    self.text = data
                def _exists(self):
                    return True
                def _describe(self):
                    return {"length": len(self.text)}

            class Foreign:
                def __init__(self):
                    self.data = None
                def load(self):
                    return self.data
                def save(self, data):
                    self.data = data
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kf_custom_datasets", raising=False)

    catalog = DataCatalog.from_config(
        {
            "shout": {"type": "kf_custom_datasets.Upper", "text": "hi"},
            "other": {"type": "kf_custom_datasets.Foreign"},
        }
    )

    assert catalog.load("shout") == "HI"
    assert repr(catalog.get("shout")) == "Upper(length=2)"
    catalog.save("other", {"a": 1})
    assert catalog.load("other") == {"a": 1}
    assert catalog.exists("other")
    assert not catalog.is_memory("other")
    assert catalog.get("other").describe() == {"wraps": "kf_custom_datasets.Foreign"}  # type: ignore[union-attr]


def test_class_object_as_type_and_errors_name_the_dataset() -> None:
    catalog = DataCatalog.from_config(
        {
            "letters": {"type": ListDataset, "items": ["a"], "prefix": "-"},
            "broken": {"type": BrokenDataset, "items": []},
        }
    )

    assert catalog.load("letters") == ["-a"]
    with pytest.raises(
        DatasetError, match=r"Could not load dataset 'broken' \(BrokenDataset\(prefix=''\)\): "
    ) as info:
        catalog.load("broken")
    assert isinstance(info.value.__cause__, KeyError)


def test_dataset_from_config_refuses_load_version_for_unversioned() -> None:
    with pytest.raises(DatasetError, match=r"dataset 'x', which is not versioned"):
        dataset_from_config("x", {"type": "MemoryDataset"}, load_version="v1")


# Credentials


class RecordingFileSystem(MemoryFileSystem):
    """An in-memory file system that remembers the options it was created with."""

    protocol = "kfrecording"
    created: list[dict[str, Any]] = []

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        RecordingFileSystem.created.append(options)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        return super()._strip_protocol(str(path).replace("kfrecording://", "memory://", 1))


@pytest.fixture
def recording_fs() -> type[RecordingFileSystem]:
    fsspec.register_implementation("kfrecording", RecordingFileSystem, clobber=True)
    RecordingFileSystem.created.clear()
    return RecordingFileSystem


def test_credentials_key_is_resolved_and_passed_to_fsspec(
    recording_fs: type[RecordingFileSystem], tmp_path: Path
) -> None:
    catalog = DataCatalog.from_config(
        {
            "cars": {
                "type": "PickleDataset",
                "filepath": f"kfrecording://bucket/{tmp_path.name}/cars.pkl",
                "credentials": "bucket_creds",
                "fs_args": {"region": "eu"},
            }
        },
        credentials={"bucket_creds": {"token": "abc"}, "unused": {"token": "zzz"}},
    )

    catalog.save("cars", [1])

    assert catalog.load("cars") == [1]
    assert recording_fs.created == [{"region": "eu", "token": "abc"}]


def test_inline_credentials_mapping_is_passed_as_is(
    recording_fs: type[RecordingFileSystem], tmp_path: Path
) -> None:
    catalog = DataCatalog.from_config(
        {
            "cars": {
                "type": "PickleDataset",
                "filepath": f"kfrecording://bucket/{tmp_path.name}/cars.pkl",
                "credentials": {"token": "inline"},
            }
        }
    )
    catalog.save("cars", [1])
    assert recording_fs.created == [{"token": "inline"}]


def test_missing_credentials_key() -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config(
            {"cars": {"type": "PickleDataset", "filepath": "x.pkl", "credentials": "db_cred"}},
            credentials={"db_creds": {"user": "u"}},
        )
    assert str(info.value) == (
        "Dataset 'cars' uses credentials 'db_cred', which are not defined; add a 'db_cred' "
        "entry to conf/<env>/credentials.yml. Did you mean 'db_creds'?"
    )


def test_credentials_that_are_not_a_mapping() -> None:
    with pytest.raises(DatasetError, match=r"Credentials 'db' used by dataset 'cars' must be a"):
        DataCatalog.from_config(
            {"cars": {"type": "PickleDataset", "filepath": "x.pkl", "credentials": "db"}},
            credentials={"db": "password"},
        )


# Factories


def factory_catalog(tmp_path: Path) -> DataCatalog:
    def entry(pattern: str) -> dict[str, Any]:
        return {"type": "TextDataset", "filepath": str(tmp_path / pattern / "x.txt")}

    return DataCatalog.from_config(
        {
            "{a}_{b}": entry("a_b"),
            "{name}_csv": entry("name_csv"),
            "raw_{name}_csv": entry("raw_name_csv"),
            "{default}": entry("default"),
            "{a}-{b}": entry("a-b"),
            "{a}-": entry("a-"),
            "{name}#": entry("name#"),
            "#{name}": entry("#name"),
            "declared_csv": {"type": "MemoryDataset"},
        }
    )


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("raw_cars_csv", "raw_name_csv"),  # most literal characters
        ("cars_csv", "name_csv"),
        ("x_y", "a_b"),
        ("plain", "default"),  # the catch-all comes last
        ("p-q-", "a-"),  # same literals: fewer placeholders wins
        ("#x#", "#name"),  # all equal: alphabetical
    ],
)
def test_factories_best_match(tmp_path: Path, name: str, pattern: str) -> None:
    catalog = factory_catalog(tmp_path)
    assert name in catalog

    catalog.save(name, "hello")

    assert (tmp_path / pattern / "x.txt").read_text(encoding="utf-8") == "hello"


def test_declared_names_win_over_factories(tmp_path: Path) -> None:
    catalog = factory_catalog(tmp_path)
    assert isinstance(catalog.get("declared_csv"), MemoryDataset)


def test_placeholders_are_substituted_recursively(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "{layer}.{name}": {
                "type": ListDataset,
                "items": ["{name}", {"nested": "{layer}/{name}"}, 3, "{not a placeholder}"],
                "prefix": "{layer}:",
            },
            "{x}_twice_{x}": {"type": ListDataset, "items": ["{x}"]},
        }
    )

    assert catalog.load("raw.cars") == [
        "raw:cars",
        "raw:{'nested': 'raw/cars'}",
        "raw:3",
        "raw:{not a placeholder}",
    ]
    assert catalog.load("a_twice_a") == ["a"]
    assert "a_twice_b" not in catalog


def test_factory_datasets_are_built_once_and_then_listed(tmp_path: Path) -> None:
    catalog = factory_catalog(tmp_path)
    assert "cars_csv" in catalog
    assert "cars_csv" not in catalog.list()

    first = catalog.get("cars_csv")

    assert first is catalog.get("cars_csv")
    assert first is not None
    assert first.name == "cars_csv"
    assert "cars_csv" in catalog.list()


def test_factory_with_credentials(recording_fs: type[RecordingFileSystem], tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "{name}_remote": {
                "type": "PickleDataset",
                "filepath": f"kfrecording://bucket/{tmp_path.name}/{{name}}.pkl",
                "credentials": "remote",
            }
        },
        credentials={"remote": {"token": "t"}},
    )
    catalog.save("cars_remote", 1)
    assert catalog.load("cars_remote") == 1
    assert recording_fs.created == [{"token": "t"}]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {"{name}_csv": {"type": "TextDataset", "filepath": "data/{nmae}.csv"}},
            "Dataset factory '{name}_csv': its entry uses {nmae}, which is not in the pattern; "
            "use only {name}.",
        ),
        (
            {"{name:d}_csv": {"type": "TextDataset", "filepath": "x"}},
            "Dataset factory '{name:d}_csv': placeholders must be plain names",
        ),
        (
            {"{name}_csv": {"type": "pandas.CVSDataset", "filepath": "{name}"}},
            "Dataset '{name}_csv': unknown type 'pandas.CVSDataset'. Did you mean",
        ),
        ({"{name}_csv": ["not", "a", "mapping"]}, "Dataset factory '{name}_csv': its catalog"),
    ],
)
def test_bad_factories_fail_when_the_catalog_is_built(entries: Any, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config(entries)
    assert str(info.value).startswith(message)


def test_factory_entry_errors_name_the_matched_dataset() -> None:
    catalog = DataCatalog.from_config({"{name}_txt": {"type": "TextDataset", "filpath": "{name}"}})
    with pytest.raises(DatasetError, match=r"Dataset 'cars_txt': type 'TextDataset' has no arg"):
        catalog.save("cars_txt", "x")


# Parameters


def test_add_parameters() -> None:
    catalog = DataCatalog()
    params = {"model": {"lr": 0.1, "layers": {"n": 2}}, "seed": 1}

    catalog.add_parameters(params)

    assert catalog.load("parameters") == params
    assert catalog.load("params:model") == {"lr": 0.1, "layers": {"n": 2}}
    assert catalog.load("params:model.lr") == 0.1
    assert catalog.load("params:model.layers") == {"n": 2}
    assert catalog.load("params:model.layers.n") == 2
    assert catalog.load("params:seed") == 1
    catalog.load("params:model")["lr"] = 5
    params["seed"] = 99
    assert catalog.load("params:model.lr") == 0.1
    assert catalog.load("parameters")["seed"] == 1

    catalog.add_parameters({"seed": 2})

    assert catalog.load("params:seed") == 2
    assert catalog.load("parameters") == {"seed": 2}


# Undeclared datasets


def test_undeclared_names_become_memory_datasets(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"cars": {"type": "PickleDataset", "filepath": str(tmp_path / "cars.pkl")}}
    )

    assert catalog.is_memory("intermediate")
    assert not catalog.exists("intermediate")
    assert "intermediate" not in catalog

    catalog.save("intermediate", {"x": [1]})

    assert "intermediate" in catalog
    assert catalog.exists("intermediate")
    assert catalog.is_memory("intermediate")
    assert isinstance(catalog.get("intermediate"), MemoryDataset)
    assert catalog.load("intermediate") == {"x": [1]}
    assert not catalog.is_memory("cars")
    catalog.release("intermediate")
    with pytest.raises(DatasetError, match=r"dataset 'intermediate'.*holds no data"):
        catalog.load("intermediate")
    catalog.release("never_seen")


def test_loading_an_unknown_name_suggests_close_ones() -> None:
    catalog = DataCatalog({"model_input": MemoryDataset(1)})

    with pytest.raises(DatasetNotFoundError) as info:
        catalog.load("model_inputs")
    assert str(info.value) == (
        "Dataset 'model_inputs' is not in the catalog and nothing has saved it. "
        "Did you mean 'model_input'?"
    )
    with pytest.raises(DatasetNotFoundError, match=r"declare it in conf/<env>/catalog\.yml"):
        catalog.load("zzz")
    assert catalog.get("zzz") is None


def test_factory_matches_are_not_memory(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"{name}_pkl": {"type": "PickleDataset", "filepath": str(tmp_path / "{name}.pkl")}}
    )
    assert not catalog.is_memory("cars_pkl")
    assert catalog.is_memory("cars_csv")


def test_add_and_replace() -> None:
    catalog = DataCatalog({"a": MemoryDataset(1)})
    catalog.add("b", MemoryDataset(2))

    with pytest.raises(DatasetError, match=r"Dataset 'a' is already in the catalog; pass replace="):
        catalog.add("a", MemoryDataset(3))
    catalog.add("a", MemoryDataset(3), replace=True)

    assert catalog.load("a") == 3
    assert catalog.load("b") == 2
    assert catalog.get("b").name == "b"  # type: ignore[union-attr]


def test_many_memory_datasets() -> None:
    catalog = DataCatalog()
    for index in range(5000):
        catalog.save(f"ds_{index}", index)
    assert len(catalog.list()) == 5000
    assert catalog.load("ds_4999") == 4999
    assert catalog.list(r"^ds_499\d$") == [f"ds_499{d}" for d in range(10)]


def test_shallow_copy_isolates_memory_data_and_shares_the_rest(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {"cars": {"type": "PickleDataset", "filepath": str(tmp_path / "cars.pkl")}},
        save_version="v1",
    )
    catalog.add_parameters({"seed": 1})
    catalog.save("intermediate", 1)

    cars = catalog.get("cars")
    copy = catalog.shallow_copy()
    copy.release("params:seed")
    copy.save("intermediate", 2)
    copy.save("only_in_copy", 3)

    assert catalog.load("params:seed") == 1
    assert catalog.load("intermediate") == 1
    assert "only_in_copy" not in catalog
    assert copy.get("cars") is cars
    assert copy.save_version == "v1"


# Versions


def test_one_save_version_for_all_versioned_datasets(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "a": {"type": "PickleDataset", "filepath": str(tmp_path / "a.pkl"), "versioned": True},
            "b": {"type": "JSONDataset", "filepath": str(tmp_path / "b.json"), "versioned": True},
            "c": {"type": "PickleDataset", "filepath": str(tmp_path / "c.pkl")},
        },
        save_version="2024-05-01T10.00.00.000000Z",
    )
    for name in "abc":
        catalog.save(name, [name])

    assert os.listdir(tmp_path / "a.pkl") == ["2024-05-01T10.00.00.000000Z"]
    assert os.listdir(tmp_path / "b.json") == ["2024-05-01T10.00.00.000000Z"]
    assert (tmp_path / "c.pkl").is_file()
    assert catalog.load("b") == ["b"]


def test_default_save_version_sorts_by_creation() -> None:
    first = DataCatalog.from_config({})
    second = DataCatalog.from_config({})
    assert first.save_version is not None
    assert second.save_version is not None
    assert first.save_version <= second.save_version


def test_load_versions_pin_a_version(tmp_path: Path) -> None:
    config = {
        "model": {"type": "PickleDataset", "filepath": str(tmp_path / "m.pkl"), "versioned": True}
    }
    DataCatalog.from_config(config, save_version="v1").save("model", "one")
    DataCatalog.from_config(config, save_version="v2").save("model", "two")

    pinned = DataCatalog.from_config(config, load_versions={"model": "v1"})

    assert pinned.load("model") == "one"
    assert pinned.load_versions == {"model": "v1"}
    assert DataCatalog.from_config(config).load("model") == "two"


def test_load_version_for_a_factory_dataset(tmp_path: Path) -> None:
    config = {
        "{name}_model": {
            "type": "TextDataset",
            "filepath": str(tmp_path / "{name}.txt"),
            "versioned": True,
        }
    }
    DataCatalog.from_config(config, save_version="v1").save("big_model", "one")
    DataCatalog.from_config(config, save_version="v2").save("big_model", "two")

    catalog = DataCatalog.from_config(config, load_versions={"big_model": "v1"})

    assert catalog.load("big_model") == "one"


def test_load_version_for_an_unversioned_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config(
            {"cars": {"type": "PickleDataset", "filepath": str(tmp_path / "c.pkl")}},
            load_versions={"cars": "v1"},
        )
    assert str(info.value) == (
        "Load version 'v1' was given for dataset 'cars', which is not versioned; set "
        "`versioned: true` on it in the catalog or drop the load version."
    )


def test_load_version_for_an_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config(
            {"cars": {"type": "PickleDataset", "filepath": str(tmp_path / "c.pkl")}},
            load_versions={"car": "v1"},
        )
    assert str(info.value) == (
        "Load version 'v1' was given for dataset 'car', which is not in the catalog. "
        "Did you mean 'cars'?"
    )


# Credentials at any depth, metadata, transcoding, copies


def test_credentials_are_resolved_at_any_depth(
    recording_fs: type[RecordingFileSystem], tmp_path: Path
) -> None:
    catalog = DataCatalog.from_config(
        {
            "cars": {
                "type": "PickleDataset",
                "filepath": f"kfrecording://bucket/{tmp_path.name}/cars.pkl",
                "fs_args": {"client_kwargs": {"credentials": "bucket_creds", "region": "eu"}},
            }
        },
        credentials={"bucket_creds": {"token": "abc"}},
    )

    catalog.save("cars", [1])

    assert recording_fs.created == [
        {"client_kwargs": {"credentials": {"token": "abc"}, "region": "eu"}}
    ]


def test_missing_credentials_at_depth_name_the_dataset_and_file() -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config(
            {
                "cars": {
                    "type": "PickleDataset",
                    "filepath": "x.pkl",
                    "fs_args": {"client_kwargs": {"credentials": "nope"}},
                }
            }
        )
    assert str(info.value).startswith(
        "Dataset 'cars' uses credentials 'nope', which are not defined; add a 'nope' entry "
        "to conf/<env>/credentials.yml."
    )


def test_metadata_is_kept_and_never_passed_to_the_class(tmp_path: Path) -> None:
    metadata = {"viz": {"layer": "raw", "preview_args": {"nrows": 5}}, "owner": "data-team"}
    catalog = DataCatalog.from_config(
        {
            "cars": {
                "type": "JSONDataset",
                "filepath": str(tmp_path / "cars.json"),
                "metadata": metadata,
            },
            "{name}_csv": {
                "type": "pandas.CSVDataset",
                "filepath": str(tmp_path / "{name}.csv"),
                "metadata": {"layer": "{name}"},
            },
        }
    )

    assert catalog.metadata("cars") == metadata  # before construction
    dataset = catalog.get("cars")
    assert dataset is not None
    assert dataset.metadata == metadata
    assert catalog.metadata("cars") == metadata  # after
    assert catalog.metadata("trips_csv") == {"layer": "trips"}
    assert catalog.metadata("undeclared") == {}
    catalog.save("cars", {"a": 1})
    assert catalog.load("cars") == {"a": 1}


def test_metadata_that_is_not_a_mapping() -> None:
    with pytest.raises(DatasetError, match=r"Dataset 'cars': 'metadata' must be a mapping"):
        DataCatalog.from_config({"cars": {"type": "MemoryDataset", "metadata": "raw"}})


def test_transcoded_names_resolve_to_the_base_entry(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "table": {"type": "JSONDataset", "filepath": str(tmp_path / "table.json")},
            "other@pandas": {"type": "JSONDataset", "filepath": str(tmp_path / "p.json")},
        }
    )

    catalog.save("table@pandas", [1, 2])

    assert catalog.load("table@spark") == [1, 2]
    assert catalog.get("table@spark") is catalog.get("table")
    assert "table@anything" in catalog
    assert not catalog.is_memory("table@pandas")
    # An entry declared with its suffix is that entry, and the base name is not declared.
    assert catalog.get("other@pandas") is not catalog.get("other@spark")
    assert "other" not in catalog


def test_undeclared_transcoded_names_share_one_memory_dataset() -> None:
    catalog = DataCatalog()
    catalog.save("frame@pandas", [3])
    assert catalog.load("frame@spark") == [3]
    assert catalog.is_memory("frame@spark")
    assert catalog.list() == ["frame"]
    catalog.release("frame@pandas")  # frame@spark may still have readers
    assert catalog.load("frame@spark") == [3]
    catalog.release("frame")
    assert not catalog.exists("frame@spark")


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_catalog_can_be_deep_copied_and_pickled(tmp_path: Path, copier: str) -> None:
    import copy
    import pickle

    catalog = DataCatalog.from_config(
        {
            "cars": {"type": "JSONDataset", "filepath": str(tmp_path / "cars.json")},
            "{name}_txt": {"type": "TextDataset", "filepath": str(tmp_path / "{name}.txt")},
        },
        save_version="v1",
    )
    catalog.save("cars", [1])
    catalog.save("notes_txt", "hello")
    catalog.save("memory", {"x": 1})

    twin = copy.deepcopy(catalog) if copier == "deepcopy" else pickle.loads(pickle.dumps(catalog))

    assert twin.load("cars") == [1]
    assert twin.load("notes_txt") == "hello"
    assert twin.load("memory") == {"x": 1}
    twin.save("memory", 2)  # the copy has a working lock and its own memory data
    twin.save("late_txt", "new")
    assert catalog.load("memory") == {"x": 1}
    assert twin.save_version == "v1"


def test_free_inputs_must_be_declared_not_exist(tmp_path: Path) -> None:
    """A declared dataset is a source even when exists() is false or costly to ask."""
    from kilnflow.errors import MissingInputsError
    from kilnflow.pipeline import Pipeline, node
    from kilnflow.runner import SequentialRunner

    class Remote(AbstractDataset):
        """Like a table or an API: no cheap existence check, so no _exists."""

        def _load(self) -> Any:
            return 20

        def _save(self, data: Any) -> None:
            raise NotImplementedError

        def _describe(self) -> dict[str, Any]:
            return {}

    pipe = Pipeline([node(lambda x, y: x + y, ["remote", "y"], "out", name="add")])
    catalog = DataCatalog.from_config({"remote": {"type": Remote}})
    catalog.save("y", 1)
    assert catalog.exists("remote")
    assert SequentialRunner().run(pipe, catalog) == {"out": 21}

    with pytest.raises(MissingInputsError, match=r"free inputs 'y' are not in the catalog"):
        SequentialRunner().run(pipe, DataCatalog.from_config({"remote": {"type": Remote}}))
    empty = DataCatalog({"remote": Remote(), "y": MemoryDataset()})
    with pytest.raises(MissingInputsError, match=r"'y'"):
        SequentialRunner().run(pipe, empty)


def test_datasets_are_constructed_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset whose library is missing fails only the runs that use it."""
    from kilnflow.pipeline import Pipeline, node
    from kilnflow.runner import SequentialRunner

    monkeypatch.setitem(sys.modules, "openpyxl", None)
    catalog = DataCatalog.from_config(
        {
            "book": {"type": "pandas.ExcelDataset", "filepath": "book.xlsx"},
            "n": {"type": "MemoryDataset", "data": 2},
        }
    )
    assert catalog.list() == ["book", "n"]
    assert catalog.type_of("book") == "pandas.ExcelDataset"
    assert not catalog.is_memory("book")

    doubled = Pipeline([node(lambda n: n * 2, "n", "twice", name="double")])
    assert SequentialRunner().run(doubled, catalog) == {"twice": 4}

    ran: list[int] = []

    def first(n: int) -> int:
        ran.append(n)
        return n

    uses_book = Pipeline([node(first, "n", "side"), node(len, "book", "rows")])
    with pytest.raises(DatasetError) as info:
        SequentialRunner().run(uses_book, catalog)
    assert str(info.value) == (
        "Dataset 'book': could not create a pandas.ExcelDataset: pandas.ExcelDataset for "
        "'book.xlsx' needs openpyxl, which is not installed; install it with "
        'pip install "kilnflow[excel]".'
    )
    assert ran == []


@pytest.mark.parametrize(
    ("type_", "message"),
    [
        (
            "spark.SparkDataset",
            "Dataset 'cars': type 'spark.SparkDataset' is a library dataset that is not built "
            "in; use a dotted class path to it (for example 'kedro_datasets.spark.SparkDataset'",
        ),
        (
            "pandas.GBQTableDataset",
            "Dataset 'cars': type 'pandas.GBQTableDataset' is a library dataset that is not "
            "built in; use a dotted class path",
        ),
        (
            "polars.CVSDataset",
            "Dataset 'cars': unknown type 'polars.CVSDataset'. Did you mean 'polars.CSVDataset'?",
        ),
    ],
)
def test_library_datasets_not_built_in_say_so(type_: str, message: str) -> None:
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config({"cars": {"type": type_}})
    assert str(info.value).startswith(message)
