"""Datasets backed by pandas: ``type: pandas.CSVDataset`` and friends in a catalog.

pandas is imported only when data is read or written, so this module imports
without pandas installed and a catalog naming these types builds quickly;
constructing one of them without its libraries says which extra to install.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO, ClassVar

from kilnflow.errors import DatasetError

from ._core import AbstractDataset, require
from ._file import FileDataset, absolute, text_io

__all__ = [
    "CSVDataset",
    "ExcelDataset",
    "FeatherDataset",
    "JSONDataset",
    "ParquetDataset",
    "SQLQueryDataset",
    "SQLTableDataset",
]


class _PandasDataset(FileDataset):
    _extra = "pandas"
    _requires: ClassVar[tuple[str | tuple[str, ...], ...]] = ("pandas",)


class CSVDataset(_PandasDataset):
    """A DataFrame as CSV; ``load_args``/``save_args`` go to ``read_csv``/``to_csv``.

    The index is not written unless ``save_args`` say ``index: true``.
    """

    default_save_args = {"index": False}

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_csv(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.to_csv(file, **self._save_args)


class ParquetDataset(_PandasDataset):
    """A DataFrame as Parquet; ``load_args``/``save_args`` go to ``read_parquet``/``to_parquet``."""

    _requires = ("pandas", ("pyarrow", "fastparquet"))

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_parquet(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.to_parquet(file, **self._save_args)


class FeatherDataset(_PandasDataset):
    """A DataFrame as Feather (Arrow IPC); args go to ``read_feather``/``to_feather``."""

    _requires = ("pandas", "pyarrow")

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_feather(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        data.to_feather(file, **self._save_args)


class JSONDataset(_PandasDataset):
    """A DataFrame as JSON; ``load_args``/``save_args`` go to ``read_json``/``to_json``."""

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        with text_io(file) as text:
            return pd.read_json(text, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        with text_io(file) as text:
            data.to_json(text, **self._save_args)


class ExcelDataset(_PandasDataset):
    """One DataFrame per sheet of an .xlsx workbook, through openpyxl.

    ``load_args`` go to ``read_excel``: ``sheet_name: null`` loads every
    sheet as a dict of DataFrames. Saving a DataFrame writes one sheet
    (``save_args.sheet_name``); saving a dict writes one sheet per key.
    ``save_args`` go to ``to_excel``; the index is not written by default.
    """

    _extra = "excel"
    _requires = ("pandas", "openpyxl")
    default_load_args = {"engine": "openpyxl"}
    default_save_args = {"index": False}

    def _load_from(self, file: BinaryIO) -> Any:
        import pandas as pd

        return pd.read_excel(file, **self._load_args)

    def _save_to(self, file: BinaryIO, data: Any) -> None:
        import pandas as pd

        sheets = data if isinstance(data, Mapping) else {None: data}
        with pd.ExcelWriter(file, engine="openpyxl") as writer:
            for sheet, frame in sheets.items():
                args = dict(self._save_args)
                if sheet is not None:
                    args["sheet_name"] = str(sheet)
                frame.to_excel(writer, **args)


class _SQLDataset(AbstractDataset):
    """Holds the SQLAlchemy engine of ``credentials: {con: <url>}``, made on first use."""

    def __init__(self, owner: str, credentials: Mapping[str, Any] | None) -> None:
        require(owner, "sql", "pandas", "sqlalchemy")
        if not isinstance(credentials, Mapping) or not isinstance(credentials.get("con"), str):
            raise DatasetError(
                f"{owner} needs credentials with a 'con' database URL, such as "
                "`credentials: {con: sqlite:///data/app.db}` or the key of such an entry "
                "in conf/<env>/credentials.yml."
            )
        self._connection = dict(credentials)
        self._engine: Any = None

    def _db(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine

            options = {key: value for key, value in self._connection.items() if key != "con"}
            self._engine = create_engine(self._connection["con"], **options)
        return self._engine

    def _release(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __getstate__(self) -> dict[str, Any]:
        # An engine holds connections and locks; a copy makes its own.
        return {**self.__dict__, "_engine": None}


class SQLTableDataset(_SQLDataset):
    """A database table as a DataFrame, through SQLAlchemy.

    ``load_args`` go to ``read_sql_table``, ``save_args`` to ``to_sql``; by
    default a save replaces the table and does not write the index.
    SQL tables are not versioned.
    """

    def __init__(
        self,
        table_name: str,
        *,
        credentials: Mapping[str, Any] | None = None,
        load_args: Mapping[str, Any] | None = None,
        save_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"pandas.SQLTableDataset for table {table_name!r}", credentials)
        self._table = table_name
        self._load_args = dict(load_args or {})
        self._save_args = {"index": False, "if_exists": "replace", **(save_args or {})}

    def _load(self) -> Any:
        import pandas as pd

        return pd.read_sql_table(self._table, self._db(), **self._load_args)

    def _save(self, data: Any) -> None:
        data.to_sql(self._table, self._db(), **self._save_args)

    def _exists(self) -> bool:
        from sqlalchemy import inspect

        schema = self._load_args.get("schema")
        return bool(inspect(self._db()).has_table(self._table, schema=schema))

    def _describe(self) -> dict[str, Any]:
        return {"table_name": self._table, "load_args": self._load_args or None}


class SQLQueryDataset(_SQLDataset):
    """The result of a SQL query as a DataFrame; read-only.

    The query is ``sql``, or the text of the file at ``filepath`` (local or
    an fsspec URL); ``load_args`` go to ``read_sql_query``. There is no
    cheap way to tell whether a query has data, so it always counts as
    existing and a failing query fails its load.
    """

    def __init__(
        self,
        sql: str | None = None,
        *,
        filepath: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        load_args: Mapping[str, Any] | None = None,
        fs_args: Mapping[str, Any] | None = None,
    ) -> None:
        if sql is None and filepath is None:
            raise DatasetError(
                "pandas.SQLQueryDataset needs a query: give 'sql' (the query itself) or "
                "'filepath' (a file holding it)."
            )
        owner = f"pandas.SQLQueryDataset for {filepath or sql!r}"
        if sql is not None and filepath is not None:
            raise DatasetError(f"{owner} has both 'sql' and 'filepath'; keep only one of them.")
        super().__init__(owner, credentials)
        self._sql = sql
        self._filepath = filepath
        self._fs_args = dict(fs_args or {})
        self._load_args = dict(load_args or {})

    def _load(self) -> Any:
        import pandas as pd
        from sqlalchemy import text

        query = self._sql
        if query is None:
            from fsspec.core import url_to_fs

            fs, path = url_to_fs(absolute(str(self._filepath)), **self._fs_args)
            query = fs.cat_file(path).decode("utf-8")
        with self._db().connect() as connection:
            return pd.read_sql_query(text(query), connection, **self._load_args)

    def _save(self, data: Any) -> None:
        raise DatasetError(
            f"Cannot save {self._label()}: a SQLQueryDataset only reads; save to a "
            "pandas.SQLTableDataset instead."
        )

    def _describe(self) -> dict[str, Any]:
        return {"sql": self._sql, "filepath": self._filepath}


def __dir__() -> list[str]:
    return __all__
