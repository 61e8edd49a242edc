"""Sessions: the lifecycle of one run and the record it leaves behind."""

from __future__ import annotations

from kilnflow._pairs import split_pairs
from kilnflow._redact import redact, redact_arguments, redact_pairs, redact_values
from kilnflow.session._context import DATA_DIR_ENV, Context
from kilnflow.session._runtime import git_info, new_session_id
from kilnflow.session._session import Session, history_store, make_store
from kilnflow.session._store import (
    BaseSessionStore,
    DatabaseStore,
    MemoryStore,
    SQLiteStore,
    default_store_dir,
)

__all__ = [
    "DATA_DIR_ENV",
    "BaseSessionStore",
    "Context",
    "DatabaseStore",
    "MemoryStore",
    "SQLiteStore",
    "Session",
    "default_store_dir",
    "git_info",
    "history_store",
    "make_store",
    "new_session_id",
    "redact",
    "redact_arguments",
    "redact_pairs",
    "redact_values",
    "split_pairs",
]


def __dir__() -> list[str]:
    return __all__
