"""The ``key=value,other.key=value`` grammar shared by option parsing and redaction.

A leaf module: the CLI parses ``--params`` with it and the redaction rules
read recorded command lines with it, so neither has to know the other.
"""

from __future__ import annotations

import re

__all__ = ["split_pairs"]

# A new key=value pair starts after a comma followed by a key and "=".
_NEXT_PAIR = re.compile(r",(?=\s*[\w.\-]+\s*=)")


def split_pairs(text: str) -> list[str]:
    """Split ``a=1,b.c=[1,2],d=x`` into its ``key=value`` items.

    Only a comma followed by a key and ``=`` starts a new item, so commas
    inside values such as ``[1,2]`` survive.
    """
    return _NEXT_PAIR.split(text)
