"""Parsed files kept as JSON, reused while the file's bytes stay exactly the same.

Importing a parser (PyYAML, tomllib) costs a short run more than everything
else it does, and configuration and ``pyproject.toml`` rarely change between
runs. A leaf module: the config loader and the project metadata both keep
their parsed files here. Only values JSON gives back exactly are kept (no
dates, sets or non-text keys); an entry is readable by its owner only; a
cache that cannot be read or written only costs time, and a file holding a
secret is never copied.
"""

from __future__ import annotations

import contextlib
import json
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kilnflow._atomic import atomic_write
from kilnflow._version import __version__

__all__ = ["parse_with_cache"]


def parse_with_cache(
    data: bytes, where: str, cache: Path | None, parse: Callable[[bytes], Any]
) -> Any:
    """``parse(data)``, or its value kept in ``cache`` for the same ``where`` and bytes.

    One entry per ``where`` (a file's path), replaced when the file changes,
    so the folder never grows beyond one entry per file. Errors are never kept.
    """
    if cache is None:
        return parse(data)
    entry = cache / f"{zlib.crc32(where.encode('utf-8')):08x}.json"
    source = data.decode("latin-1")  # every byte kept, so equal text means equal bytes
    try:
        cached = json.loads(entry.read_bytes())
    except (OSError, ValueError):
        cached = None
    # The Kilnflow version too: another release may parse the same bytes differently.
    key = {"where": where, "kilnflow": __version__, "source": source}
    if isinstance(cached, dict) and all(cached.get(name) == part for name, part in key.items()):
        return cached.get("value")
    value = parse(data)
    if _is_plain_json(value) and not _holds_secrets(source, value):
        _write_entry(entry, {**key, "value": value})
    return value


def _holds_secrets(source: str, value: Any) -> bool:
    """Whether the file holds a URL password or a value under a secret-looking key.

    Such a file is never copied: the cache sits beside the session store,
    where secrets must not land.
    """
    from kilnflow._redact import redact_url, redact_values

    hidden = redact_values(value) if isinstance(value, dict) else value
    return redact_url(source) != source or hidden != value


def _is_plain_json(value: Any) -> bool:
    """Whether ``value`` comes back from JSON exactly: no dates, sets or non-text keys."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and not isinstance(item, (str, int)):
            return False
    return True


def _write_entry(entry: Path, record: dict[str, Any]) -> None:
    """Replace ``entry`` whole, readable by its owner only, like the session store."""
    with contextlib.suppress(OSError):
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_write(entry, "w", private=True) as file:
            file.write(json.dumps(record))
