"""Session stores: where each run's record is kept.

A store is the record of one session (a dict) plus ``read`` and ``save``.
:class:`MemoryStore` keeps it for the life of the process;
:class:`DatabaseStore` keeps every session in a SQL database named by a URL
(``sqlite:///...`` or ``postgresql://...``) that many processes, and many
machines, may write at once. :class:`SQLiteStore` is the embedded default.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections import UserDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kilnflow.errors import SessionError
from kilnflow.session._database import SUMMARY_COLUMNS, open_database, summary
from kilnflow.session._process import process_is_running
from kilnflow.session._store_url import StoreURL, parse_store_url

__all__ = [
    "BaseSessionStore",
    "DatabaseStore",
    "MemoryStore",
    "SQLiteStore",
    "configured_store_url",
    "default_store_dir",
]

#: The environment variable that chooses the store, over settings.SESSION_STORE_URL.
STORE_VARIABLE = "KILNFLOW_STORE"


_Store = TypeVar("_Store", bound="BaseSessionStore")


class BaseSessionStore(UserDict[str, Any]):
    """The record of one session; subclasses decide where it persists."""

    def __init__(self, path: str | Path | None, session_id: str) -> None:
        super().__init__()
        #: Where the store keeps its records, if anywhere.
        self.path = Path(path) if path is not None else None
        #: The session this record belongs to.
        self.session_id = session_id
        self.data.update(self.read())

    @property
    def location(self) -> str:
        """Where the history is, safe to show (no password)."""
        return f"{type(self).__name__} (this process only)"

    def read(self) -> dict[str, Any]:
        """Return what was persisted for this session id (empty when new)."""
        return {}

    def save(self) -> None:
        """Persist the record; the in-memory store keeps it in the process only."""

    def close(self) -> None:
        """Release what the store holds open; it reopens if used again."""

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent session records, newest first (none for the in-memory store)."""
        del limit
        return []

    def summaries(
        self,
        limit: int = 20,
        *,
        pipeline: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        dag_run: str | None = None,
    ) -> list[dict[str, Any]]:
        """One row per recent session, newest first, filtered as asked.

        Rows hold ``session_id`` and :data:`SUMMARY_COLUMNS`, not whole records,
        so a page of a long history reads little.
        """
        del limit, pipeline, outcome, since, dag_run
        return []

    def find(self, session_id: str) -> dict[str, Any]:
        """The record of ``session_id`` (or a unique prefix of it)."""
        raise SessionError(
            f"Session {session_id!r} cannot be looked up: {type(self).__name__} keeps no "
            "history; set KILNFLOW_STORE or settings.SESSION_STORE_URL to a store URL."
        )


class MemoryStore(BaseSessionStore):
    """Keeps the record in this process only."""


# Saving an outcome is retried after these pauses (seconds) before giving up.
_RETRY_PAUSES = (0.2, 1.0)
_COLUMNS = ("session_id", "record", *SUMMARY_COLUMNS)
_UPSERT = (
    f"INSERT INTO sessions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (session_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS[1:])
)
_LISTED = ", ".join(("session_id", *SUMMARY_COLUMNS))


class DatabaseStore(BaseSessionStore):
    """Every session in one SQL database, SQLite or PostgreSQL, named by a URL.

    The record is written when the session starts (outcome ``running``) and
    again when it closes, so a crash mid-run leaves a readable row; a
    ``running`` row whose process is gone from this host is marked ``lost``
    when sessions are listed or started. Each save is one short transaction,
    so concurrent runs record themselves side by side.
    """

    def __init__(
        self,
        url: str | StoreURL,
        session_id: str,
        *,
        source: str = "the session store URL",
        base: Path | None = None,
    ) -> None:
        if isinstance(url, str):
            url = parse_store_url(url, source=source, base=base or Path.cwd())
        #: The store's URL; ``url.display`` hides the password.
        self.url = url
        self._database = open_database(url)
        self._lost_checked = False
        super().__init__(url.path, session_id)

    @property
    def location(self) -> str:
        return self.url.display

    def read(self) -> dict[str, Any]:
        if not self.session_id or not self._database.exists():
            return {}
        with self._database.transaction(f"read session {self.session_id}") as transaction:
            rows = transaction.rows(
                "SELECT record FROM sessions WHERE session_id = ?", (self.session_id,)
            )
        return dict(json.loads(rows[0][0])) if rows else {}

    def save(self) -> None:
        """Write the record; retried, since losing a run's outcome loses the run's history."""
        outcome = self.data.get("outcome")
        if outcome == "running" and not self._lost_checked:
            self.mark_lost()
            self._lost_checked = True
        # Not sorted: node durations keep the order nodes ran in.
        record = json.dumps(self.data, default=repr)
        values = (self.session_id, record, *summary(self.data).values())
        for pause in (*_RETRY_PAUSES, None):
            try:
                with self._database.transaction(
                    f"record session {self.session_id}", write=True
                ) as transaction:
                    transaction.run(_UPSERT, values)
                return
            except SessionError as exc:
                if pause is not None:
                    time.sleep(pause)
                    continue
                if outcome == "running":
                    raise
                # When the run failed too, its own error must not be lost with the record.
                failure = (self.data.get("exception") or {}).get("message")
                if failure:
                    outcome = f"{outcome}: {failure}"
                raise SessionError(
                    f"The outcome of session {self.session_id} ({outcome}) could not be "
                    f"recorded after {len(_RETRY_PAUSES) + 1} attempts; the history recorded "
                    f"before it is intact. {exc}"
                ) from None

    def close(self) -> None:
        self._database.close()

    def mark_lost(self) -> list[str]:
        """Mark ``running`` sessions of this host whose process is gone as ``lost``.

        Reads only the indexed running rows of this host; a session whose
        process is alive, or that runs elsewhere, is left as it is.
        """
        if not self._database.exists():
            return []
        host = platform.node()
        with self._database.transaction("look for lost sessions") as transaction:
            running = transaction.rows(
                "SELECT session_id, pid, process_start FROM sessions "
                "WHERE outcome = 'running' AND host = ?",
                (host,),
            )
        gone = [
            session_id
            for session_id, pid, started in running
            if pid is not None and not process_is_running(int(pid), started)
        ]
        if not gone:
            return []
        noticed = datetime.now(UTC).isoformat(timespec="microseconds")
        with self._database.transaction("mark lost sessions", write=True) as transaction:
            for session_id in gone:
                rows = transaction.rows(
                    "SELECT record FROM sessions WHERE session_id = ? AND outcome = 'running'",
                    (session_id,),
                )
                if not rows:
                    continue
                record = json.loads(rows[0][0])
                record.update(outcome="lost", lost_noticed_at=noticed)
                transaction.run(
                    "UPDATE sessions SET outcome = 'lost', record = ? "
                    "WHERE session_id = ? AND outcome = 'running'",
                    (json.dumps(record), session_id),
                )
        return gone

    def sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        if not self._database.exists():
            return []
        self.mark_lost()
        with self._database.transaction("list sessions") as transaction:
            rows = transaction.rows(
                "SELECT record FROM sessions ORDER BY session_id DESC LIMIT ?", (limit,)
            )
        return [json.loads(row[0]) for row in rows]

    def summaries(
        self,
        limit: int = 20,
        *,
        pipeline: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        dag_run: str | None = None,
    ) -> list[dict[str, Any]]:
        if not self._database.exists():
            return []
        self.mark_lost()
        conditions: list[str] = []
        params: list[Any] = []
        for column, value in (("pipeline_name", pipeline), ("outcome", outcome)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        if dag_run is not None:
            conditions.append("dag_run = ?")
            params.append(dag_run)
        if since is not None:
            # Ids start with their UTC start time, so this is a range on the primary key.
            conditions.append("session_id >= ?")
            params.append(f"{since.astimezone(UTC):%Y%m%dT%H%M%S}")
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        with self._database.transaction("list sessions") as transaction:
            rows = transaction.rows(
                f"SELECT {_LISTED} FROM sessions {where}ORDER BY session_id DESC LIMIT ?",
                (*params, limit),
            )
        return [dict(zip(("session_id", *SUMMARY_COLUMNS), row, strict=True)) for row in rows]

    def find(self, session_id: str) -> dict[str, Any]:
        rows: list[tuple[Any, ...]] = []
        if self._database.exists():
            self.mark_lost()
            with self._database.transaction(f"read session {session_id}") as transaction:
                # A prefix as a range on the primary key: no LIKE, no scan.
                rows = transaction.rows(
                    "SELECT record FROM sessions WHERE session_id >= ? AND session_id < ? "
                    "ORDER BY session_id LIMIT 2",
                    (session_id, session_id + "\U0010ffff"),
                )
        if not rows:
            raise SessionError(
                f"No session {session_id!r} in {self.location}; 'kilnflow session list' "
                "shows the recorded ones."
            )
        if len(rows) > 1:
            raise SessionError(
                f"{session_id!r} matches several sessions in {self.location}; give more of the id."
            )
        return dict(json.loads(rows[0][0]))


class SQLiteStore(DatabaseStore):
    """Every session of a project in one SQLite file: ``path``, or ``sessions.db`` in it.

    Write-ahead logging lets concurrent runs record at once; the file is
    created readable by its owner only.
    """

    def __init__(self, path: str | Path, session_id: str) -> None:
        path = Path(path).expanduser().absolute()
        database = path if path.suffix == ".db" else path / "sessions.db"
        super().__init__(StoreURL("sqlite", database, f"sqlite:///{database}", None), session_id)


def configured_store_url(setting: str | None) -> tuple[str, str] | None:
    """The store URL and where it came from: ``$KILNFLOW_STORE``, else the setting."""
    from_environment = os.environ.get(STORE_VARIABLE)
    if from_environment:
        return from_environment, STORE_VARIABLE
    if setting:
        return setting, "settings.SESSION_STORE_URL"
    return None


def default_store_dir(project_path: Path | None) -> Path:
    """Where sessions are recorded when neither KILNFLOW_STORE nor settings say.

    Project mode keeps them beside the project (``.kilnflow/``); an installed
    package has no project folder, so it uses ``$KILNFLOW_HOME`` or else the
    user's data directory. A user who cannot write there (a container run
    with ``--user`` for a uid with no home) records to a temporary folder
    rather than failing the run, and is told how to keep the records.
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
    folder = base / "kilnflow"
    if _creatable(folder):
        return folder
    user = os.getuid() if hasattr(os, "getuid") else os.getpid()
    import tempfile  # only here: it imports shutil and random, which a run never needs

    fallback = Path(tempfile.gettempdir()) / f"kilnflow-{user}"
    logging.getLogger("kilnflow").warning(
        "Cannot write %s: recording sessions in %s instead; set KILNFLOW_HOME to a writable "
        "folder (a mounted volume in a container) to keep them.",
        folder,
        fallback,
    )
    return fallback


def _creatable(folder: Path) -> bool:
    """Whether ``folder`` is a writable folder or could be made: its nearest existing parent is."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False
