"""Configuration files parsed with bounds: YAML through the bounded reader, and JSON.

A configuration source may come from anywhere (``--conf-source`` takes an
archive), so both formats refuse what would hang a run or silently pick one
of two values: alias bombs, deep nesting and duplicate keys.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

from kilnflow._yaml import MAX_DEPTH, nesting_depth, too_deep
from kilnflow._yaml import load_yaml as _load_yaml
from kilnflow.errors import ConfigError

__all__ = ["load_json", "load_yaml"]


def load_yaml(data: bytes, where: str, cache: Path | None = None) -> Any:
    """Parse one YAML document; every refusal is a ``ConfigError`` naming ``where``.

    With a ``cache`` folder, a document parsed before is read back from its
    JSON copy there, as long as the file's bytes are exactly those it was
    parsed from. Importing PyYAML costs a short run more than everything
    else it does, and configuration rarely changes between runs. A document
    holding a secret (a URL password, a value under a secret-looking key) is
    never copied: the cache sits beside the session store, where secrets
    must not land.
    """
    entry = cache / f"{zlib.crc32(where.encode('utf-8')):08x}.json" if cache else None
    source = data.decode("latin-1")  # every byte kept, so equal text means equal bytes
    if entry is not None:
        try:
            cached = json.loads(entry.read_bytes())
        except (OSError, ValueError):
            cached = None
        if isinstance(cached, dict) and cached.get("source") == source:
            return cached.get("value")
    try:
        loaded = _load_yaml(data, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if entry is not None and _is_plain_json(loaded) and not _holds_secrets(source, loaded):
        _write_entry(entry, {"where": where, "source": source, "value": loaded})
    return loaded


def _holds_secrets(source: str, loaded: Any) -> bool:
    from kilnflow._redact import redact_url, redact_values

    hidden = redact_values(loaded) if isinstance(loaded, dict) else loaded
    return redact_url(source) != source or hidden != loaded


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
    """Replace ``entry`` whole; a cache that cannot be written is only slower."""
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Readable by its owner only, like the session store beside it.
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(json.dumps(record))
        os.replace(temporary, entry)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def load_json(data: bytes, where: str) -> Any:
    """Parse JSON, refusing duplicate keys and nesting deeper than the YAML limit."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ConfigError(
                    f"{where}: key '{key}' is defined twice in one object; keep one definition."
                )
            result[key] = value
        return result

    try:
        loaded = json.loads(data, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}, line {exc.lineno}: invalid JSON ({exc.msg}); fix the syntax."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where} is not UTF-8 text ({exc}); re-save it as UTF-8.") from exc
    except RecursionError:
        raise ConfigError(str(too_deep(where, None))) from None
    if nesting_depth(loaded) > MAX_DEPTH:
        raise ConfigError(str(too_deep(where, None)))
    return loaded
