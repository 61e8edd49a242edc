"""The ``key=value,other.key=value`` grammar shared by option parsing and redaction.

A leaf module: the CLI parses ``--params`` with it and the redaction rules
read recorded command lines with it, so neither has to know the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["parse_pairs", "split_pairs"]

# A new key=value pair starts after a comma followed by a key and "=".
_NEXT_PAIR = re.compile(r",(?=\s*[\w.\-]+\s*=)")


def split_pairs(text: str) -> list[str]:
    """Split ``a=1,b.c=[1,2],d=x`` into its ``key=value`` items.

    Only a comma followed by a key and ``=`` starts a new item, so commas
    inside values such as ``[1,2]`` survive.
    """
    return _NEXT_PAIR.split(text)


def parse_pairs(values: Iterable[str], option: str) -> dict[str, Any]:
    """Parse ``key=value,other.key=value`` texts into one dict of parameters.

    Values are read as YAML scalars, so ``n=3`` is an int and ``on=true`` a
    bool; dotted keys are kept dotted for the config loader to nest. A
    malformed item, or a value that breaks a bound of the YAML reader (an
    alias bomb), raises ValueError naming ``option``, the option or argument
    the texts came from.
    """
    params: dict[str, Any] = {}
    for value in values:
        for item in split_pairs(value):
            key, sep, raw = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ValueError(
                    f"{item!r} is not key=value; write {option} key=value,other.key=value."
                )
            # Imported at the first value: most runs give no --params at all.
            from kilnflow._yaml import parse_scalar

            params[key] = parse_scalar(raw.strip(), f"{option} {key}")
    return params
