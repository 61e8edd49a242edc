"""Every built-in dataset, the way a catalog uses it: through catalog YAML.

One parametrised round trip covers each file and folder dataset on local
disk and in fsspec's memory file system, versioned and not. SQL tables and
HTTP endpoints, which have no file, round-trip against SQLite and a local
HTTP server that each test starts and stops.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import plotly.graph_objects as go
import polars as pl
import pytest
import yaml
from matplotlib.figure import Figure
from pandas.testing import assert_frame_equal

from kilnflow.errors import DatasetError
from kilnflow.io import DataCatalog

FRAME = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "é"], "score": [0.5, 1.5, 2.5]})
OTHER = pd.DataFrame({"id": [4, 5], "name": ["d", "e"], "score": [4.5, 5.5]})
POLARS = pl.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "é"]})


def figure(width: float = 2.0) -> Figure:
    made = Figure(figsize=(width, 1.5), dpi=50)
    made.add_subplot().plot([1, 2, 3], [3, 1, 2])
    return made


def same_image(expected: Figure, loaded: Any) -> None:
    assert isinstance(loaded, Figure)
    assert tuple(loaded.get_size_inches() * loaded.dpi) == tuple(
        expected.get_size_inches() * expected.dpi
    )


BAR = go.Figure(go.Bar(x=["a", "b"], y=[3, 4]), layout={"title": {"text": "bars"}})


def _equal(saved: Any, loaded: Any) -> None:
    if isinstance(saved, pd.DataFrame):
        assert_frame_equal(loaded, saved)
    elif isinstance(saved, dict) and all(isinstance(v, pd.DataFrame) for v in saved.values()):
        assert list(loaded) == list(saved)
        for key, frame in saved.items():
            assert_frame_equal(loaded[key], frame)
    else:
        assert loaded == saved


@dataclass
class Case:
    """One catalog entry (without filepath), what to save, and how to check a load."""

    id: str
    entry: dict[str, Any]
    filename: str
    data: Callable[[], Any]
    check: Callable[[Any, Any], None] = _equal
    versionable: bool = True
    path_key: str = "filepath"
    extras: dict[str, Any] = field(default_factory=dict)


def _polars(saved: Any, loaded: Any) -> None:
    frame = loaded.collect() if isinstance(loaded, pl.LazyFrame) else loaded
    assert isinstance(frame, pl.DataFrame)
    assert frame.equals(saved.collect() if isinstance(saved, pl.LazyFrame) else saved)


def _lazy(saved: Any, loaded: Any) -> None:
    assert isinstance(loaded, pl.LazyFrame)
    _polars(saved, loaded)


def _partitions(saved: Any, loaded: Any) -> None:
    assert sorted(loaded) == sorted(saved)
    for pid, value in saved.items():
        assert callable(loaded[pid])
        assert_frame_equal(loaded[pid](), value() if callable(value) else value)


def _incremental(saved: Any, loaded: Any) -> None:
    assert sorted(loaded) == sorted(saved)
    for pid, value in saved.items():
        assert loaded[pid] == value


def _figures(saved: Any, loaded: Any) -> None:
    if isinstance(saved, list):
        assert isinstance(loaded, list)
        assert len(loaded) == len(saved)
        pairs = list(zip(saved, loaded, strict=True))
    elif isinstance(saved, dict):
        assert sorted(loaded) == sorted(saved)
        pairs = [(saved[key], loaded[key]) for key in saved]
    else:
        pairs = [(saved, loaded)]
    for expected, got in pairs:
        same_image(expected, got)


def _plotly(saved: Any, loaded: Any) -> None:
    assert isinstance(loaded, go.Figure)
    assert loaded == saved


def _html(saved: Any, loaded: Any) -> None:
    assert isinstance(loaded, str)
    assert "<html>" in loaded
    assert loaded.rstrip().endswith("</html>")
    assert '"bars"' in loaded


def _express(saved: Any, loaded: Any) -> None:
    assert isinstance(loaded, go.Figure)
    assert loaded.data[0].type == "bar"
    assert list(loaded.data[0].x) == list(saved["name"])
    assert loaded.layout.title.text == "scores"


CASES = [
    Case("PickleDataset", {"type": "PickleDataset"}, "data.pkl", lambda: {"a": (1, 2)}),
    Case(
        "pickle.PickleDataset-joblib",
        {"type": "pickle.PickleDataset", "backend": "joblib"},
        "model.joblib",
        lambda: {"weights": [0.5, 1.5], "frame": FRAME},
        lambda saved, loaded: assert_frame_equal(loaded["frame"], saved["frame"]),
    ),
    Case(
        "pickle.PickleDataset-cloudpickle",
        {"type": "pickle.PickleDataset", "backend": "cloudpickle"},
        "function.pkl",
        lambda: lambda x: x + 1,
        lambda saved, loaded: _equal(saved(1), loaded(1)),
    ),
    Case("JSONDataset", {"type": "JSONDataset"}, "data.json", lambda: {"é": [1, None]}),
    Case("YAMLDataset", {"type": "YAMLDataset"}, "data.yml", lambda: {"rows": [1, 2]}),
    Case("TextDataset", {"type": "TextDataset"}, "data.txt", lambda: "two\r\nlines é"),
    Case("pandas.CSVDataset", {"type": "pandas.CSVDataset"}, "data.csv", lambda: FRAME),
    Case("pandas.ParquetDataset", {"type": "pandas.ParquetDataset"}, "data.pq", lambda: FRAME),
    Case("pandas.FeatherDataset", {"type": "pandas.FeatherDataset"}, "data.ftr", lambda: FRAME),
    Case(
        "pandas.JSONDataset",
        {"type": "pandas.JSONDataset", "save_args": {"orient": "records"}},
        "data.json",
        lambda: FRAME,
        lambda saved, loaded: assert_frame_equal(loaded, saved),
        extras={"load_args": {"orient": "records"}},
    ),
    Case("pandas.ExcelDataset", {"type": "pandas.ExcelDataset"}, "book.xlsx", lambda: FRAME),
    Case(
        "pandas.ExcelDataset-sheets",
        {"type": "pandas.ExcelDataset", "load_args": {"sheet_name": None}},
        "sheets.xlsx",
        lambda: {"first": FRAME, "second": OTHER},
    ),
    Case("polars.CSVDataset", {"type": "polars.CSVDataset"}, "data.csv", lambda: POLARS, _polars),
    Case(
        "polars.ParquetDataset",
        {"type": "polars.ParquetDataset"},
        "data.parquet",
        lambda: POLARS,
        _polars,
    ),
    Case(
        "polars.LazyPolarsDataset-parquet",
        {"type": "polars.LazyPolarsDataset", "file_format": "parquet"},
        "lazy.parquet",
        POLARS.lazy,
        _lazy,
    ),
    Case(
        "polars.LazyPolarsDataset-csv",
        {"type": "polars.LazyPolarsDataset", "file_format": "csv"},
        "lazy.csv",
        lambda: POLARS,
        _lazy,
    ),
    Case(
        "polars.EagerPolarsDataset-ipc",
        {"type": "polars.EagerPolarsDataset", "file_format": "ipc"},
        "eager.arrow",
        lambda: POLARS,
        _polars,
    ),
    Case(
        "partitions.PartitionedDataset",
        {
            "type": "partitions.PartitionedDataset",
            "dataset": {"type": "pandas.CSVDataset", "save_args": {"sep": ";"}},
            "filename_suffix": ".csv",
        },
        "parts",
        lambda: {"2024-01": FRAME, "2024-02/late": lambda: OTHER},
        _partitions,
        path_key="path",
        extras={"dataset": {"type": "pandas.CSVDataset", "load_args": {"sep": ";"}}},
    ),
    Case(
        "partitions.IncrementalDataset",
        {"type": "partitions.IncrementalDataset", "dataset": "JSONDataset"},
        "increments",
        lambda: {"001": [1], "002": {"x": 2}},
        _incremental,
        versionable=False,
        path_key="path",
    ),
    Case(
        "matplotlib.MatplotlibDataset",
        {"type": "matplotlib.MatplotlibDataset"},
        "plot.png",
        figure,
        _figures,
    ),
    Case(
        "matplotlib.MatplotlibDataset-list",
        {"type": "matplotlib.MatplotlibDataset"},
        "plots",
        lambda: [figure(1.0), figure(2.0), figure(3.0)],
        _figures,
    ),
    Case(
        "matplotlib.MatplotlibDataset-dict",
        {"type": "matplotlib.MatplotlibDataset", "save_args": {"format": "png"}},
        "named",
        lambda: {"wide": figure(4.0), "narrow": figure(1.0)},
        _figures,
    ),
    Case("plotly.JSONDataset", {"type": "plotly.JSONDataset"}, "bar.json", lambda: BAR, _plotly),
    Case("plotly.HTMLDataset", {"type": "plotly.HTMLDataset"}, "bar.html", lambda: BAR, _html),
    Case(
        "plotly.PlotlyDataset",
        {
            "type": "plotly.PlotlyDataset",
            "plotly_args": {
                "type": "bar",
                "fig": {"x": "name", "y": "score"},
                "layout": {"title": {"text": "scores"}},
            },
        },
        "express.json",
        lambda: FRAME,
        _express,
    ),
]

PARAMS = [
    pytest.param(case, versioned, id=f"{case.id}{'-versioned' if versioned else ''}")
    for case in CASES
    for versioned in (False, True)
    if case.versionable or not versioned
]


@pytest.fixture(params=["local", "memory"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A folder URL unique to the test: on local disk, or in fsspec's memory store."""
    if request.param == "local":
        yield str(tmp_path / "store")
        return
    url = f"memory://kilnflow-datasets/{tmp_path.name}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def catalog_yaml(tmp_path: Path, entries: dict[str, Any]) -> Path:
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    return path


def catalog_from(path: Path, save_version: str) -> DataCatalog:
    return DataCatalog.from_config(
        yaml.safe_load(path.read_text(encoding="utf-8")), save_version=save_version
    )


@pytest.mark.parametrize(("case", "versioned"), PARAMS)
def test_round_trip_through_catalog_yaml(
    tmp_path: Path, location: str, case: Case, versioned: bool
) -> None:
    target = f"{location}/{case.filename}"
    entry = {**case.entry, case.path_key: target, "metadata": {"layer": "raw"}}
    if versioned:
        entry["versioned"] = True
    writer = catalog_yaml(tmp_path, {"data": entry})
    data = case.data()

    saving = catalog_from(writer, "2026-01-01T00.00.00.000000Z")
    assert not saving.exists("data")
    saving.save("data", data)
    assert saving.exists("data")

    reader = catalog_yaml(tmp_path, {"data": {**entry, **case.extras}})
    loading = catalog_from(reader, "2026-01-02T00.00.00.000000Z")
    case.check(data, loading.load("data"))
    assert loading.metadata("data") == {"layer": "raw"}

    fs, path = fsspec.core.url_to_fs(target)
    basename = path.rstrip("/").rsplit("/", 1)[-1]
    if versioned:
        assert fs.exists(f"{path}/2026-01-01T00.00.00.000000Z/{basename}")
    else:
        assert fs.exists(path)
    leftovers = [found for found in fs.find(path) if "/." in found]
    assert leftovers == []


def test_every_built_in_type_is_round_tripped() -> None:
    from kilnflow.io._registry import BUILTIN_TYPES

    tested = {case.entry["type"] for case in CASES}
    without_files = {
        "MemoryDataset",  # holds data in memory: tests/test_datasets.py
        "pandas.SQLTableDataset",  # tested below against SQLite
        "pandas.SQLQueryDataset",
        "api.APIDataset",  # tested below against a local HTTP server
    }
    aliases = {"json.JSONDataset", "yaml.YAMLDataset", "text.TextDataset"}
    aliases |= {"matplotlib.MatplotlibWriter"}
    assert set(BUILTIN_TYPES) - tested - without_files - aliases == set()


# --- Partitions and increments --------------------------------------------------


def test_partitions_load_lazily_and_overwrite_removes_old_ones(tmp_path: Path) -> None:
    entry = {
        "type": "partitions.PartitionedDataset",
        "path": str(tmp_path / "parts"),
        "dataset": "JSONDataset",
        "filename_suffix": ".json",
        "overwrite": True,
    }
    catalog = DataCatalog.from_config({"parts": entry})
    catalog.save("parts", {"a": 1, "b": 2})
    (tmp_path / "parts" / "notes.txt").write_text("not a partition", encoding="utf-8")

    loaded = catalog.load("parts")
    (tmp_path / "parts" / "b.json").unlink()
    assert loaded["a"]() == 1
    with pytest.raises(DatasetError, match=r"Could not load dataset 'parts\[b\]'"):
        loaded["b"]()

    catalog.save("parts", {"c": 3})
    assert sorted(os.listdir(tmp_path / "parts")) == ["c.json"]

    def broken() -> Any:
        raise RuntimeError("upstream failed")

    with pytest.raises(DatasetError, match="RuntimeError: upstream failed"):
        catalog.save("parts", {"d": 4, "e": broken})
    assert sorted(os.listdir(tmp_path / "parts")) == ["c.json"]
    assert sorted(os.listdir(tmp_path)) == ["parts"]


def test_empty_partition_folder_says_what_to_check(tmp_path: Path) -> None:
    entry = {"type": "partitions.PartitionedDataset", "path": str(tmp_path), "dataset": "X"}
    with pytest.raises(DatasetError, match=r"unknown type 'X'"):
        DataCatalog.from_config({"parts": entry}).get("parts")
    entry["dataset"] = "JSONDataset"
    catalog = DataCatalog.from_config({"parts": entry})
    with pytest.raises(DatasetError, match=r"no partition found under .*check path and filename"):
        catalog.load("parts")
    with pytest.raises(DatasetError, match=r"saves a dict of partition id to data, not a list"):
        catalog.save("parts", [1])


def test_partitioned_dataset_refuses_versioned_partitions(tmp_path: Path) -> None:
    entry = {
        "type": "partitions.PartitionedDataset",
        "path": str(tmp_path),
        "dataset": {"type": "JSONDataset", "versioned": True},
    }
    with pytest.raises(DatasetError, match=r"must not set 'versioned'; version the Partitioned"):
        DataCatalog.from_config({"parts": entry}).get("parts")


def test_incremental_dataset_loads_only_what_is_new_once_confirmed(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    entry = {"type": "partitions.IncrementalDataset", "path": str(folder), "dataset": "TextDataset"}
    catalog = DataCatalog.from_config({"inbox": entry})
    catalog.save("inbox", {"001": "one", "002": "two"})

    assert catalog.load("inbox") == {"001": "one", "002": "two"}
    assert catalog.load("inbox") == {"001": "one", "002": "two"}  # not confirmed yet
    catalog.confirm("inbox")
    assert (folder / "CHECKPOINT").read_text(encoding="utf-8") == "002"
    assert catalog.load("inbox") == {}

    catalog.save("inbox", {"003": "three"})
    fresh = DataCatalog.from_config({"inbox": entry})
    assert fresh.load("inbox") == {"003": "three"}
    with pytest.raises(DatasetError, match=r"'other' has no checkpoint to confirm"):
        fresh.confirm("other")


# --- Pickle backends, Excel, polars: arguments and errors ----------------------


def test_unknown_pickle_backend(tmp_path: Path) -> None:
    entry = {"type": "PickleDataset", "filepath": str(tmp_path / "x"), "backend": "jobib"}
    with pytest.raises(DatasetError) as info:
        DataCatalog.from_config({"model": entry}).get("model")
    assert str(info.value).endswith("unknown backend 'jobib'. Did you mean 'joblib'?")


def test_lazy_polars_unknown_file_format(tmp_path: Path) -> None:
    entry = {"type": "polars.LazyPolarsDataset", "filepath": "x", "file_format": "parket"}
    with pytest.raises(DatasetError, match=r"unknown file_format 'parket'. Did you mean"):
        DataCatalog.from_config({"x": entry}).get("x")


def test_excel_save_args_name_the_sheet(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    entry = {
        "type": "pandas.ExcelDataset",
        "filepath": str(path),
        "save_args": {"sheet_name": "cars"},
        "load_args": {"sheet_name": "cars"},
    }
    catalog = DataCatalog.from_config({"book": entry})
    catalog.save("book", FRAME)
    with pd.ExcelFile(path) as book:
        assert book.sheet_names == ["cars"]
    assert_frame_equal(catalog.load("book"), FRAME)


def test_plotly_dataset_needs_an_express_type(tmp_path: Path) -> None:
    entry = {"type": "plotly.PlotlyDataset", "filepath": "x.json", "plotly_args": {"fig": {}}}
    with pytest.raises(DatasetError, match=r"plotly_args needs a 'type' naming a plotly express"):
        DataCatalog.from_config({"fig": entry}).get("fig")
    entry["plotly_args"] = {"type": "barr"}
    entry["filepath"] = str(tmp_path / "x.json")
    with pytest.raises(DatasetError, match=r"plotly express has no function 'barr'"):
        DataCatalog.from_config({"fig": entry}).save("fig", FRAME)
    assert not (tmp_path / "x.json").exists()


# --- SQL through SQLAlchemy and SQLite -------------------------------------------


def test_sql_table_and_query_round_trip_through_catalog_yaml(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shop.db'}"
    query = tmp_path / "cheap.sql"
    query.write_text("SELECT name, score FROM items WHERE score < 2 ORDER BY id", "utf-8")
    writer = catalog_yaml(
        tmp_path,
        {
            "items": {
                "type": "pandas.SQLTableDataset",
                "table_name": "items",
                "credentials": "shop_db",
            },
            "cheap": {
                "type": "pandas.SQLQueryDataset",
                "filepath": str(query),
                "credentials": "shop_db",
            },
            "count": {
                "type": "pandas.SQLQueryDataset",
                "sql": "SELECT count(*) AS n FROM items",
                "credentials": {"con": database},
            },
        },
    )
    credentials = {"shop_db": {"con": database}}

    def catalog() -> DataCatalog:
        conf = yaml.safe_load(writer.read_text("utf-8"))
        return DataCatalog.from_config(conf, credentials=credentials)

    first = catalog()
    assert not first.exists("items")
    assert first.can_load("items")  # declared is enough for a free input
    first.save("items", FRAME)
    first.save("items", FRAME)  # a save replaces the table
    assert first.exists("items")

    second = catalog()
    assert_frame_equal(second.load("items"), FRAME)
    assert_frame_equal(second.load("cheap"), FRAME.loc[FRAME.score < 2, ["name", "score"]])
    assert second.load("count")["n"].tolist() == [3]
    with pytest.raises(DatasetError, match=r"a SQLQueryDataset only reads"):
        second.save("count", FRAME)
    assert "shop.db" not in repr(second.get("items"))
    # A run releases each dataset after its last use; used directly, the catalog is
    # released here, so the engines' pooled connections close now and not in the GC.
    for used in (first, second):
        for name in ("items", "cheap", "count"):
            used.release(name)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {},
            "pandas.SQLQueryDataset needs a query: give 'sql' (the query itself) or "
            "'filepath' (a file holding it).",
        ),
        (
            {"sql": "SELECT 1", "filepath": "q.sql"},
            "pandas.SQLQueryDataset for 'q.sql' has both 'sql' and 'filepath'; "
            "keep only one of them.",
        ),
    ],
    ids=["neither", "both"],
)
def test_sql_query_dataset_takes_its_query_one_way(config: dict[str, str], message: str) -> None:
    entry = {"type": "pandas.SQLQueryDataset", "credentials": {"con": "sqlite://"}, **config}
    with pytest.raises(DatasetError) as raised:
        DataCatalog.from_config({"q": entry}).get("q")
    assert message in str(raised.value)


def test_sql_dataset_needs_a_connection_and_is_not_versioned() -> None:
    with pytest.raises(DatasetError, match=r"needs credentials with a 'con' database URL"):
        DataCatalog.from_config({"t": {"type": "pandas.SQLTableDataset", "table_name": "t"}}).get(
            "t"
        )
    with pytest.raises(DatasetError, match=r"has no argument 'versioned'"):
        DataCatalog.from_config(
            {"t": {"type": "pandas.SQLTableDataset", "table_name": "t", "versioned": True}}
        )


# --- HTTP through requests, against a local server -------------------------------


class _Endpoint(BaseHTTPRequestHandler):
    """Keeps the last JSON body POSTed; answers GETs with it; wants basic auth."""

    stored: Any = None

    def do_GET(self) -> None:
        if not self._authorised():
            return
        self._reply(200, json.dumps({"stored": _Endpoint.stored, "query": self.path}))

    def do_POST(self) -> None:
        if not self._authorised():
            return
        length = int(self.headers["Content-Length"])
        _Endpoint.stored = json.loads(self.rfile.read(length))
        self._reply(201, "{}")

    def _authorised(self) -> bool:
        # "user:pass" in base64
        if self.headers.get("Authorization") in ("Basic dXNlcjpwYXNz", "Bearer t0k3n"):
            return True
        self._reply(401, "{}")
        return False

    def _reply(self, status: int, body: str) -> None:
        payload = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/items"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        _Endpoint.stored = None


def test_api_dataset_round_trips_through_catalog_yaml(tmp_path: Path, endpoint: str) -> None:
    writer = catalog_yaml(
        tmp_path,
        {
            "items": {
                "type": "api.APIDataset",
                "url": endpoint,
                "credentials": "api_user",
                "load_args": {"params": {"page": 2}},
            },
            "by_token": {"type": "api.APIDataset", "url": endpoint, "credentials": "api_token"},
            "anonymous": {"type": "api.APIDataset", "url": endpoint},
        },
    )
    credentials = {
        "api_user": {"username": "user", "password": "pass"},
        "api_token": {"token": "t0k3n"},
    }
    catalog = DataCatalog.from_config(
        yaml.safe_load(writer.read_text("utf-8")), credentials=credentials
    )

    catalog.save("items", {"rows": [1, 2]})
    response = catalog.load("items")
    assert response.json() == {"stored": {"rows": [1, 2]}, "query": "/items?page=2"}
    assert catalog.load("by_token").json()["stored"] == {"rows": [1, 2]}
    with pytest.raises(DatasetError) as info:
        catalog.load("anonymous")
    assert str(info.value).startswith("Could not load dataset 'anonymous'")
    assert str(info.value).endswith(f"GET {endpoint} answered 401 Unauthorized.")
    assert "pass" not in repr(catalog.get("items"))


def test_api_dataset_bad_credentials() -> None:
    entry = {"type": "api.APIDataset", "url": "http://127.0.0.1:9/", "credentials": ["only"]}
    with pytest.raises(DatasetError, match=r"credentials must be \{username: ..., password"):
        DataCatalog.from_config({"api": entry}).get("api")
