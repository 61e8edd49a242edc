"""Sessions: the lifecycle of one run and the record it leaves behind.

The public names are imported on first use. A ParallelRunner or Dask worker
imports ``kilnflow.session._worker`` to set itself up, and that alone runs
this file: the session, its stores and sqlite3 are for the parent, and every
worker start would otherwise import them for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kilnflow._lazy import lazy_names

if TYPE_CHECKING:
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

_LAZY = {
    "split_pairs": "kilnflow._pairs",
    "redact": "kilnflow._redact",
    "redact_arguments": "kilnflow._redact",
    "redact_pairs": "kilnflow._redact",
    "redact_values": "kilnflow._redact",
    "DATA_DIR_ENV": "kilnflow.session._context",
    "Context": "kilnflow.session._context",
    "git_info": "kilnflow.session._runtime",
    "new_session_id": "kilnflow.session._runtime",
    "Session": "kilnflow.session._session",
    "history_store": "kilnflow.session._session",
    "make_store": "kilnflow.session._session",
    "BaseSessionStore": "kilnflow.session._store",
    "DatabaseStore": "kilnflow.session._store",
    "MemoryStore": "kilnflow.session._store",
    "SQLiteStore": "kilnflow.session._store",
    "default_store_dir": "kilnflow.session._store",
}

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


__getattr__ = lazy_names(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
