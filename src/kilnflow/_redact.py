"""Every rule that hides secrets before anything is recorded, in one place.

Session stores, logs and hooks receive values only after they pass through
here. The rules know names and URLs, never a command's flags: a command line
is read as words, and any ``key=value`` list in it has its secret-looking
values hidden, whichever option it follows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from kilnflow._pairs import split_pairs

__all__ = [
    "REDACTED",
    "is_secret_name",
    "redact",
    "redact_arguments",
    "redact_pairs",
    "redact_url",
    "redact_values",
]

#: What a secret's value is replaced with.
REDACTED = "***"

# Names that usually carry secrets; matched anywhere in an upper-cased name.
_SECRET_NAMES = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PWD|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|SIGNATURE|CERT"
)
# user:password@ inside URLs, whatever the variable is called.
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^/:@\s]*:)[^/@\s]+(?=@)")


def is_secret_name(name: str) -> bool:
    """Whether a variable, key or parameter called ``name`` usually holds a secret."""
    return _SECRET_NAMES.search(name.upper()) is not None


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` hidden."""
    return _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", text)


def redact(name: str, value: str) -> str:
    """Hide a variable's value if its name looks secret, and any URL password."""
    return REDACTED if is_secret_name(name) else redact_url(value)


def redact_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with secret-looking keys (at any depth) and URL passwords hidden.

    Runtime parameters are recorded this way: a ``--params db_password=...``
    must not reach the session store, a hook's log or ``session show``.
    """
    return {key: _redact_any(str(key), value) for key, value in values.items()}


def _redact_any(name: str, value: Any) -> Any:
    if is_secret_name(name):
        return REDACTED
    if isinstance(value, Mapping):
        return redact_values(value)
    if isinstance(value, (list, tuple)):
        return [_redact_any(name, item) for item in value]
    if isinstance(value, str):
        return redact_url(value)
    return value


def redact_pairs(text: str) -> str:
    """``key=value,...`` text with the values of secret-looking keys and URL passwords hidden."""
    redacted = []
    for item in split_pairs(text):
        key, sep, value = item.partition("=")
        redacted.append(f"{key}{sep}{redact(key.strip(), value)}" if sep else item)
    return redact_url(",".join(redacted))


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """A command line with secret ``key=value`` values and URL passwords hidden.

    ``--params db_password=x`` and ``--params=db_password=x`` are both caught:
    an option's own name is kept, what follows its ``=`` is read as pairs.
    """
    redacted: list[str] = []
    for argument in arguments:
        if argument.startswith("-"):
            flag, equals, value = argument.partition("=")
            redacted.append(f"{flag}={redact_pairs(value)}" if equals else redact_url(argument))
        else:
            redacted.append(redact_pairs(argument))
    return redacted
