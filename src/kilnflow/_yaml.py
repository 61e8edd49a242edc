"""YAML parsing with bounds, so hostile text fails fast with one clear line.

A configuration source may come from anywhere (``--conf-source`` takes an
archive), and a few hundred bytes of YAML can expand to a billion values
through nested aliases, nest deep enough to crash libyaml's recursive
composer, or hide a second definition of a key that silently wins. Before
PyYAML builds anything, one pass over the event stream (iterative, so it
cannot overflow a stack) measures depth and alias expansion and finds
duplicate keys; only a document that passes is composed and constructed.

A leaf module: configuration files and ``--params`` values are both read
here. Errors are ``ValueError``s whose message names ``where`` the text came
from; callers wrap them in their own error type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "BoundError",
    "NotYAMLError",
    "load_yaml",
    "nesting_depth",
    "parse_scalar",
    "too_deep",
]

#: Deepest nesting of mappings and lists accepted in one document.
MAX_DEPTH = 50
#: Most values that aliases may add to one document once expanded.
MAX_ALIAS_VALUES = 1_000_000

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class BoundError(ValueError):
    """The text is YAML but breaks a bound: too deep, too many aliases, a key twice."""


class NotYAMLError(ValueError):
    """The text is not YAML at all."""


@dataclass
class _Collection:
    """A mapping or list whose end event has not been seen yet."""

    anchor: str | None
    #: Expanded values counted when the collection started.
    start: int
    is_mapping: bool
    #: For mappings: key identity -> line it was first defined on.
    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    #: For mappings: whether the next complete child is a key.
    expecting_key: bool = True


def load_yaml(data: bytes | str, where: str) -> Any:
    """Parse one YAML document, refusing alias bombs, deep nesting and duplicate keys.

    ``where`` names the file (or option) in every message.
    """
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(loader_class(data), where)
        return yaml.load(data, Loader=loader_class)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "syntax error"
        raise NotYAMLError(f"{where}{line}: invalid YAML ({problem}); fix the syntax.") from exc
    except yaml.YAMLError as exc:
        raise NotYAMLError(f"{where} is not valid YAML ({exc}); fix or re-save the file.") from exc


def parse_scalar(raw: str, where: str) -> Any:
    """Read a command-line value as YAML, or keep it as text when it is not YAML.

    ``n=3`` gives an int and ``path=a:b`` a string, but a value that breaks a
    bound (an alias bomb, deep nesting) raises ``BoundError``, never becomes a
    silent string.
    """
    if not raw:
        return ""
    try:
        return load_yaml(raw, where)
    except NotYAMLError:
        return raw


def too_deep(where: str, line: int | None) -> BoundError:
    at = f", line {line}" if line is not None else ""
    return BoundError(
        f"{where}{at}: nesting is deeper than {MAX_DEPTH} levels; flatten the structure."
    )


def nesting_depth(value: Any) -> int:
    """Nesting depth of lists and dicts, measured without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, level = pending.pop()
        children: Iterable[Any] = ()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
        pending.extend((child, level + 1) for child in children)
    return deepest


def _check_events(loader: Any, where: str) -> None:
    """Walk the event stream once, raising on the first bound a document breaks."""
    import yaml

    open_: list[_Collection] = []
    anchored: dict[str, int] = {}
    expanded = 0
    from_aliases = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if len(open_) >= MAX_DEPTH:
                    raise too_deep(where, line)
                expanded += 1
                is_mapping = isinstance(event, yaml.MappingStartEvent)
                open_.append(_Collection(event.anchor, expanded, is_mapping))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = open_.pop()
                if done.anchor is not None:
                    anchored[done.anchor] = expanded - done.start + 1
                _child_done(open_, None, line, where)
            elif isinstance(event, yaml.ScalarEvent):
                expanded += 1
                if event.anchor is not None:
                    anchored[event.anchor] = 1
                _child_done(open_, _key_identity(loader, event), line, where)
            elif isinstance(event, yaml.AliasEvent):
                if any(c.anchor == event.anchor for c in open_):
                    raise BoundError(
                        f"{where}, line {line}: alias *{event.anchor} refers to a collection "
                        "that contains it; configuration cannot be recursive."
                    )
                size = anchored.get(event.anchor or "", 1)
                expanded += size
                from_aliases += size
                if from_aliases > MAX_ALIAS_VALUES:
                    raise BoundError(
                        f"{where}, line {line}: aliases expand this document to more than "
                        f"{MAX_ALIAS_VALUES:,} values (an alias bomb?); write the values out "
                        "or use fewer nested aliases."
                    )
                _child_done(open_, None, line, where)
    finally:
        loader.dispose()


def _key_identity(loader: Any, event: Any) -> tuple[str, str]:
    """The tag and text that decide whether two scalar keys are the same key."""
    import yaml

    if event.tag not in (None, "!"):
        return event.tag, event.value
    if event.implicit[0]:
        return loader.resolve(yaml.ScalarNode, event.value, (True, False)), event.value
    return _STR_TAG, event.value


def _child_done(
    open_: list[_Collection], key: tuple[str, str] | None, line: int, where: str
) -> None:
    """Account for a complete child of the innermost collection: a key or a value."""
    if not open_ or not open_[-1].is_mapping:
        return
    parent = open_[-1]
    if parent.expecting_key and key is not None and key[0] != _MERGE_TAG:
        if key in parent.keys:
            raise BoundError(
                f"{where}, line {line}: key '{key[1]}' is already defined on line "
                f"{parent.keys[key]} of the same mapping; keep one definition."
            )
        parent.keys[key] = line
    parent.expecting_key = not parent.expecting_key
