"""Session stores: where each run's runtime parameters are kept.

A store is the record of one session (a dict) plus ``read`` and ``save``.
:class:`MemoryStore` keeps it for the life of the process; :class:`SQLiteStore`
keeps every session of a project in one SQLite file that many processes may
write at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections import UserDict
from pathlib import Path
from typing import Any

from kilnflow.errors import SessionError

__all__ = ["BaseSessionStore", "MemoryStore", "SQLiteStore", "default_store_dir"]


class BaseSessionStore(UserDict[str, Any]):
    """The record of one session; subclasses decide where it persists."""

    def __init__(self, path: str | Path | None, session_id: str) -> None:
        super().__init__()
        #: Where the store keeps its records, if anywhere.
        self.path = Path(path) if path is not None else None
        #: The session this record belongs to.
        self.session_id = session_id
        self.data.update(self.read())

    def read(self) -> dict[str, Any]:
        """Return what was persisted for this session id (empty when new)."""
        return {}

    def save(self) -> None:
        """Persist the record; the in-memory store keeps it in the process only."""

    def sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent session records, newest first (none for the in-memory store)."""
        del limit
        return []

    def find(self, session_id: str) -> dict[str, Any]:
        """The record of ``session_id`` (or a unique prefix of it)."""
        raise SessionError(
            f"Session {session_id!r} cannot be looked up: {type(self).__name__} keeps no "
            "history; configure SESSION_STORE_CLASS = SQLiteStore in settings.py."
        )


class MemoryStore(BaseSessionStore):
    """Keeps the record in this process only."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    package_name TEXT,
    started_at TEXT,
    outcome TEXT,
    record TEXT NOT NULL
)
"""


class SQLiteStore(BaseSessionStore):
    """Every session of a project in one SQLite database.

    Write-ahead logging and one short transaction per save let concurrent
    runs record themselves; the record is written when the session starts
    (outcome ``running``) and again when it closes, so a crash mid-run leaves
    a readable ``running`` row rather than nothing.
    """

    def __init__(self, path: str | Path, session_id: str) -> None:
        super().__init__(path, session_id)

    @property
    def database(self) -> Path:
        """The SQLite file: ``path`` itself, or ``sessions.db`` inside a folder."""
        assert self.path is not None
        return self.path if self.path.suffix == ".db" else self.path / "sessions.db"

    def _connect(self) -> sqlite3.Connection:
        self.database.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(self.database, timeout=30, isolation_level=None)
            _enable_wal(connection)
            # With write-ahead logging this cannot corrupt the file; it only skips
            # an fsync per save, which is most of a save's time.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise SessionError(
                f"Session store {self.database} cannot be opened ({exc}); check the file's "
                "permissions, or set KILNFLOW_HOME to a writable folder."
            ) from exc
        return connection

    def read(self) -> dict[str, Any]:
        if self.path is None or not self.database.exists():
            return {}
        connection = self._connect()
        try:
            row = connection.execute(
                "SELECT record FROM sessions WHERE session_id = ?", (self.session_id,)
            ).fetchone()
        finally:
            connection.close()
        return dict(json.loads(row[0])) if row else {}

    def save(self) -> None:
        record = json.dumps(self.data, default=repr, sort_keys=True)
        connection = self._connect()
        try:
            with connection:
                connection.execute(
                    "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
                    (
                        self.session_id,
                        self.data.get("package_name"),
                        self.data.get("started_at"),
                        self.data.get("outcome"),
                        record,
                    ),
                )
        except sqlite3.Error as exc:
            raise SessionError(
                f"Session {self.session_id} could not be saved to {self.database}: {exc}."
            ) from exc
        finally:
            connection.close()

    def sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        if not self.database.exists():
            return []
        connection = self._connect()
        try:
            rows = connection.execute(
                "SELECT record FROM sessions ORDER BY session_id DESC LIMIT ?", (limit,)
            ).fetchall()
        finally:
            connection.close()
        return [json.loads(row[0]) for row in rows]

    def find(self, session_id: str) -> dict[str, Any]:
        rows: list[tuple[str]] = []
        if self.database.exists():
            connection = self._connect()
            try:
                rows = connection.execute(
                    "SELECT record FROM sessions WHERE session_id LIKE ? ESCAPE '\\' "
                    "ORDER BY session_id LIMIT 2",
                    (
                        session_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                        + "%",
                    ),
                ).fetchall()
            finally:
                connection.close()
        if not rows:
            raise SessionError(
                f"No session {session_id!r} in {self.database}; 'kilnflow session list' "
                "shows the recorded ones."
            )
        if len(rows) > 1:
            raise SessionError(
                f"{session_id!r} matches several sessions in {self.database}; give more of the id."
            )
        return dict(json.loads(rows[0][0]))


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


def default_store_dir(project_path: Path | None) -> Path:
    """Where sessions are recorded when settings do not say.

    Project mode keeps them beside the project (``.kilnflow/``); an installed
    package has no project folder, so it uses ``$KILNFLOW_HOME`` or else the
    user's data directory.
    """
    if project_path is not None:
        return project_path / ".kilnflow"
    home = os.environ.get("KILNFLOW_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "kilnflow"
