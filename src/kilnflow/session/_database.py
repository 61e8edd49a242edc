"""The one place that opens the session store's database, for SQLite and PostgreSQL.

Stores speak SQL through :meth:`Database.transaction` and never see a
driver: each dialect opens its connection, wraps its driver's errors in a
:class:`~kilnflow.errors.SessionError` that names the store (password hidden)
and brings the schema up to date once per :class:`Database` object.

Migrations are numbered; ``schema_version`` holds one row per applied
migration. A store written by an older Kilnflow (which had no
``schema_version`` table) counts as version 0 and upgrades in place.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kilnflow.errors import SessionError
from kilnflow.session._store_url import StoreURL

__all__ = ["SUMMARY_COLUMNS", "Database", "Transaction", "open_database", "summary"]

#: Columns kept beside each JSON record, so listing and filtering read no JSON.
SUMMARY_COLUMNS = (
    "package_name",
    "started_at",
    "outcome",
    "pipeline_name",
    "env",
    "host",
    "pid",
    "process_start",
    "run_seconds",
    "failed_node",
    "dag_run",
    "task_id",
)


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """The summary columns of one session record."""
    run = record.get("run") or {}
    airflow = record.get("airflow") or {}
    exception = record.get("exception") or {}
    seconds = record.get("run_seconds")
    pid = record.get("pid")
    return {
        "package_name": record.get("package_name"),
        "started_at": record.get("started_at"),
        "outcome": record.get("outcome"),
        "pipeline_name": run.get("pipeline_name"),
        "env": record.get("env"),
        "host": record.get("host"),
        "pid": pid if isinstance(pid, int) else None,
        "process_start": record.get("process_start"),
        "run_seconds": float(seconds) if isinstance(seconds, (int, float)) else None,
        "failed_node": exception.get("node"),
        "dag_run": airflow.get("run_id"),
        "task_id": airflow.get("task_id"),
    }


class Transaction:
    """SQL statements inside one transaction, written with ``?`` placeholders."""

    def __init__(self, execute: Callable[[str, Sequence[Any]], Any], placeholder: str) -> None:
        self._execute = execute
        self._placeholder = placeholder

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all its rows."""
        return list(self._execute(sql.replace("?", self._placeholder), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; return how many rows it changed."""
        count: int = self._execute(sql.replace("?", self._placeholder), params).rowcount
        return count


class Database(ABC):
    """A store's database: connections, transactions, error wrapping and schema."""

    def __init__(self, url: StoreURL) -> None:
        #: Where the database is; ``url.display`` is safe to show.
        self.url = url
        self._schema_ready = False

    @property
    @abstractmethod
    def hint(self) -> str:
        """What to check when the database cannot be used."""

    @abstractmethod
    def exists(self) -> bool:
        """False only when the database certainly holds nothing yet (no file)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the database keeps open between transactions."""

    @abstractmethod
    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        """One transaction, committed when the block ends and rolled back when it raises."""

    @abstractmethod
    def _has_table(self, transaction: Transaction, name: str) -> bool:
        """Whether ``name`` exists, without failing the transaction when it does not."""

    @abstractmethod
    def _lock_schema(self, transaction: Transaction) -> None:
        """Keep other processes out of the schema until this transaction ends."""

    @abstractmethod
    def _is_driver_error(self, error: Exception) -> bool:
        """Whether ``error`` comes from the database driver (and is to be wrapped)."""

    @contextmanager
    def transaction(self, action: str, *, write: bool = False) -> Iterator[Transaction]:
        """A transaction on an up-to-date schema; driver errors become one SessionError.

        ``action`` completes "Session store URL could not ...", naming what failed.
        """
        try:
            if not self._schema_ready:
                self._migrate()
                self._schema_ready = True
            with self._transaction(write) as transaction:
                yield transaction
        except Exception as exc:
            if not self._is_driver_error(exc):
                raise
            reason = self.url.scrub(" ".join(str(exc).split())) or type(exc).__name__
            stop = "" if reason.endswith((".", "?", "!")) else "."
            raise SessionError(
                f"Session store {self.url.display} could not {action}: {reason}{stop} {self.hint}"
            ) from None

    def _migrate(self) -> None:
        with self._transaction(write=False) as transaction:
            current = self._version(transaction)
        if current == len(_MIGRATIONS):
            return
        with self._transaction(write=True) as transaction:
            self._lock_schema(transaction)
            transaction.run(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            current = self._version(transaction)
            if current > len(_MIGRATIONS):
                raise SessionError(
                    f"Session store {self.url.display} has schema version {current}, newer than "
                    f"this Kilnflow knows ({len(_MIGRATIONS)}); upgrade Kilnflow to read it."
                )
            for version in range(current + 1, len(_MIGRATIONS) + 1):
                _MIGRATIONS[version - 1](transaction, self.url.dialect)
                transaction.run(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, datetime.now(UTC).isoformat()),
                )

    def _version(self, transaction: Transaction) -> int:
        if not self._has_table(transaction, "schema_version"):
            return 0
        (version,) = transaction.rows("SELECT MAX(version) FROM schema_version")[0]
        return int(version or 0)


class SQLiteDatabase(Database):
    """A SQLite file in write-ahead-log mode, readable by its owner only.

    One connection serves every transaction of this object until :meth:`close`:
    opening one costs more than a session's writes, and closing the last one
    checkpoints the log with an fsync. A lock keeps threads' transactions one
    at a time on it. SQLite connections must not cross ``fork``, so every open
    one is closed before a fork (see :func:`_watch_forks`).
    """

    def __init__(self, url: StoreURL) -> None:
        super().__init__(url)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The database file."""
        assert self.url.path is not None
        return self.url.path

    @property
    def hint(self) -> str:
        return (
            "Check the file's permissions and the free disk space, or set KILNFLOW_STORE "
            "(or KILNFLOW_HOME) to a writable place."
        )

    def exists(self) -> bool:
        return self.path.exists()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def forget_after_fork(self) -> None:
        """Start a forked child clean, should a thread have reopened since the fork began."""
        self._lock = threading.Lock()
        if self._connection is not None:
            _INHERITED.append(self._connection)  # never used, and never closed, here
            self._connection = None

    def _is_driver_error(self, error: Exception) -> bool:
        return isinstance(error, (sqlite3.Error, OSError))

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        with self._lock:
            connection = self._connect()
            finished = False
            try:
                # IMMEDIATE takes the write lock up front: two writers never deadlock
                # upgrading read locks, they queue on the busy timeout instead.
                connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield Transaction(connection.execute, "?")
                connection.execute("COMMIT")
                finished = True
            finally:
                if not finished:
                    # An error or a stop signal mid-transaction: closing rolls it back,
                    # and a retry starts on a fresh connection, not one in an unknown state.
                    self._connection = None
                    connection.close()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        _watch_forks(self)
        _create_private_file(self.path)
        connection = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        try:
            _enable_wal(connection)
            # With write-ahead logging this cannot corrupt the file; it only skips
            # an fsync per commit, which is most of a save's time.
            connection.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _has_table(self, transaction: Transaction, name: str) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(transaction.rows(query, (name,)))

    def _lock_schema(self, transaction: Transaction) -> None:
        """BEGIN IMMEDIATE already holds the only write lock."""


class PostgresDatabase(Database):
    """A PostgreSQL database through psycopg 3, shared by every machine that runs.

    Each transaction has a connection of its own: a run holds none while it
    works, so many concurrent runs never exhaust the server's connections.
    """

    #: Key of the advisory lock that serialises schema changes across processes.
    _SCHEMA_LOCK = 0x6B696C6E

    @property
    def hint(self) -> str:
        return (
            "Check that the server is running and reachable, and the user, password and "
            "database in KILNFLOW_STORE (or settings.SESSION_STORE_URL)."
        )

    def exists(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release: no connection outlives its transaction."""

    def _is_driver_error(self, error: Exception) -> bool:
        import psycopg

        return isinstance(error, psycopg.Error)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        del write  # every PostgreSQL transaction may write; row locks do the rest
        try:
            import psycopg
        except ImportError:
            raise SessionError(
                f"Session store {self.url.display} is a PostgreSQL database, which needs "
                "psycopg: pip install 'kilnflow[postgres]'."
            ) from None
        options: dict[str, Any] = {"autocommit": True, "application_name": "kilnflow"}
        if "connect_timeout" not in self.url.secret_url:
            options["connect_timeout"] = 10
        connection = psycopg.connect(self.url.secret_url, **options)
        with connection, connection.transaction():
            yield Transaction(connection.execute, "%s")

    def _has_table(self, transaction: Transaction, name: str) -> bool:
        return transaction.rows("SELECT to_regclass(?)", (name,))[0][0] is not None

    def _lock_schema(self, transaction: Transaction) -> None:
        transaction.rows("SELECT pg_advisory_xact_lock(?)", (self._SCHEMA_LOCK,))


def open_database(url: StoreURL) -> Database:
    """The database a store URL names."""
    return SQLiteDatabase(url) if url.dialect == "sqlite" else PostgresDatabase(url)


#: SQLite databases that may hold a connection, closed before this process forks.
_WATCHED: weakref.WeakSet[SQLiteDatabase] = weakref.WeakSet()
#: Connections a forked child found open and must neither use nor close.
_INHERITED: list[sqlite3.Connection] = []


def _watch_forks(database: SQLiteDatabase) -> None:
    """Close ``database``'s connection before any fork of this process.

    A child using or even closing a connection its parent opened can corrupt
    the file (SQLite's own warning), and a child must not inherit a lock that
    another thread held. The parent reopens on its next transaction.
    """
    _register_fork_handlers()
    _WATCHED.add(database)


@functools.cache
def _register_fork_handlers() -> None:
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_close_watched, after_in_child=_forget_in_child)


def _close_watched() -> None:
    for database in list(_WATCHED):
        database.close()


def _forget_in_child() -> None:
    for database in list(_WATCHED):
        database.forget_after_fork()


def _create_private_file(path: Path) -> None:
    """Create the store file 0600 in a 0700 folder: run records name hosts, users, paths.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
    An existing file or folder keeps the mode its owner chose.
    """
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _enable_wal(connection: sqlite3.Connection) -> None:
    """Switch a new database to write-ahead logging, however many processes race to.

    The mode persists in the file, so only the first opener changes it; the
    switch needs a moment alone with the file and ignores the busy timeout,
    hence the short bounded retry while another process creates the schema.
    """
    deadline = time.monotonic() + 30
    while connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# --- migrations: version N is _MIGRATIONS[N - 1]; never edit one that shipped ---


def _create_sessions(transaction: Transaction, dialect: str) -> None:
    """Version 1: the table of Kilnflow 0.1 (already there in stores it wrote)."""
    # Session ids sort by time as bytes; PostgreSQL's default collation would not.
    id_type = 'TEXT COLLATE "C"' if dialect == "postgresql" else "TEXT"
    transaction.run(
        f"CREATE TABLE IF NOT EXISTS sessions (session_id {id_type} PRIMARY KEY, "
        "package_name TEXT, started_at TEXT, outcome TEXT, record TEXT NOT NULL)"
    )


def _add_summary_columns(transaction: Transaction, dialect: str) -> None:
    """Version 2: summary columns and indexes, so history scales to many sessions.

    Listing, filtering and the lost-process check read indexed columns only;
    existing rows get their columns from their JSON records.
    """
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    types = {"pid": "INTEGER", "run_seconds": real}
    for column in SUMMARY_COLUMNS[3:]:
        transaction.run(f"ALTER TABLE sessions ADD COLUMN {column} {types.get(column, 'TEXT')}")
    assignments = ", ".join(f"{column} = ?" for column in SUMMARY_COLUMNS)
    for session_id, record in transaction.rows("SELECT session_id, record FROM sessions"):
        values = summary(json.loads(record))
        transaction.run(
            f"UPDATE sessions SET {assignments} WHERE session_id = ?",
            (*values.values(), session_id),
        )
    transaction.run(
        "CREATE INDEX sessions_running ON sessions (host, session_id) WHERE outcome = 'running'"
    )
    for column in ("pipeline_name", "outcome", "dag_run"):
        transaction.run(f"CREATE INDEX sessions_{column} ON sessions ({column}, session_id)")


_MIGRATIONS: tuple[Callable[[Transaction, str], None], ...] = (
    _create_sessions,
    _add_summary_columns,
)
