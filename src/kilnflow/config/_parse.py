"""Configuration files parsed with bounds: YAML through the bounded reader, and JSON.

A configuration source may come from anywhere (``--conf-source`` takes an
archive), so both formats refuse what would hang a run or silently pick one
of two values: alias bombs, deep nesting and duplicate keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kilnflow._parsed import parse_with_cache
from kilnflow.errors import ConfigError

__all__ = ["load_json", "load_yaml"]


def load_yaml(data: bytes, where: str, cache: Path | None = None) -> Any:
    """Parse one YAML document; every refusal is a ``ConfigError`` naming ``where``.

    With a ``cache`` folder, a document parsed before is read back from its
    JSON copy there while the file's bytes stay exactly the same, so a run
    whose configuration did not change never imports PyYAML.
    """

    def parse(text: bytes) -> Any:
        # The bounded reader is imported only for a file not parsed before.
        from kilnflow._yaml import load_yaml as _load_yaml

        try:
            return _load_yaml(text, where)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    return parse_with_cache(data, where, cache, parse)


def load_json(data: bytes, where: str) -> Any:
    """Parse JSON, refusing duplicate keys and nesting deeper than the YAML limit."""
    from kilnflow._yaml import MAX_DEPTH, nesting_depth, too_deep

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
