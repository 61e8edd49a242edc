"""Every rule that hides secrets before anything is recorded or shown, in one place.

Session stores, logs, hooks and error messages receive values only after
they pass through here. The rules know names and URLs, never a command's
flags: a command line is read as words, and any ``key=value`` list in it has
its secret-looking values hidden, whichever option it follows.

Names are matched against glob patterns (:data:`SECRET_NAMES`); a project
adds its own through ``SECRET_NAMES`` in its settings, and a
:class:`Redactor` built with them applies both. Nothing removes a pattern:
a project can widen the rule, never narrow it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kilnflow._pairs import split_pairs

__all__ = [
    "REDACTED",
    "SECRET_NAMES",
    "RedactingFormatter",
    "Redactor",
    "is_secret_name",
    "redact",
    "redact_arguments",
    "redact_handler_output",
    "redact_pairs",
    "redact_text",
    "redact_url",
    "redact_values",
]

#: What a secret's value is replaced with.
REDACTED = "***"

#: Glob patterns of names whose values are secrets, matched against the
#: upper-cased name with ``-``, ``.`` and spaces read as ``_``.
SECRET_NAMES: tuple[str, ...] = (
    "*TOKEN*",
    "*SECRET*",
    "*PASS*",
    "*PWD*",
    "*KEY*",
    "*CREDENTIAL*",
    "*AUTH*",
    "*PRIVATE*",
    "*COOKIE*",
    "*SESSION*",
    "*SIGNATURE*",
    "*CERT*",
    "*DSN*",
    "PW",
    "PW_*",
    "*_PW",
    "*_PW_*",
    "SIG",
    "*_SIG",
)

# Characters of a host (and port) after the "@" that ends a URL's credentials.
_HOST = r"\w.\-:\[\]%~"
# scheme://user:password@host: the password runs to the first "@" that is
# followed by a whole host, so passwords holding "@" or "/" are hidden whole.
_URL_PASSWORD = re.compile(
    rf"(?P<head>\b[a-zA-Z][\w+.\-]*://[^/:\s'\"]*:)[^\s'\"]+?(?=@[{_HOST}]*(?![{_HOST}@]))"
)
# ?name=value or &name=value inside URLs: signed URLs carry secrets there.
_QUERY_VALUE = re.compile(r"(?P<head>[?&;](?P<name>[^=&#\s'\"]+)=)[^&#\s'\"]+")
# Shorter secret values are not searched for in free text: too many false hits.
_MIN_SCRUBBED = 4


class Redactor:
    """The secret rule of one project: Kilnflow's name patterns plus its own."""

    def __init__(self, extra_names: Iterable[str] = ()) -> None:
        patterns = (*SECRET_NAMES, *(_normal(name) for name in extra_names))
        self._names = re.compile("|".join(fnmatch.translate(p) for p in patterns))

    def is_secret_name(self, name: str) -> bool:
        """Whether a variable, key or parameter called ``name`` usually holds a secret."""
        return self._names.match(_normal(name)) is not None

    def url(self, text: str) -> str:
        """``text`` with URL passwords and secret-looking query values hidden."""
        text = _URL_PASSWORD.sub(rf"\g<head>{REDACTED}", text)
        if "=" not in text:
            return text
        return _QUERY_VALUE.sub(
            lambda m: f"{m['head']}{REDACTED}" if self.is_secret_name(m["name"]) else m[0], text
        )

    def redact(self, name: str, value: str) -> str:
        """Hide a variable's value if its name looks secret, and any URL password."""
        return REDACTED if self.is_secret_name(name) else self.url(value)

    def values(self, values: Mapping[Any, Any]) -> dict[Any, Any]:
        """A copy of ``values`` with secret-looking keys (at any depth) and URL passwords hidden.

        Runtime parameters are recorded this way: a ``--params db_password=...``
        must not reach the session store, a hook's log or ``session show``.
        """
        return {key: self._any(str(key), value) for key, value in values.items()}

    def pairs(self, text: str) -> str:
        """``key=value,...`` text with secret values hidden, also inside nested values.

        ``db={password: x}`` is read as YAML, the way ``--params`` reads it, so
        a secret one level down is hidden too; the pair is written back as
        YAML only when something in it was hidden.
        """
        redacted = []
        for item in split_pairs(text):
            key, sep, value = item.partition("=")
            redacted.append(f"{key}{sep}{self._pair_value(key.strip(), value)}" if sep else item)
        return self.url(",".join(redacted))

    def arguments(self, arguments: Sequence[str]) -> list[str]:
        """A command line with secret ``key=value`` values and URL passwords hidden.

        ``--params db_password=x`` and ``--params=db_password=x`` are both caught:
        an option's own name is kept, what follows its ``=`` is read as pairs.
        """
        redacted: list[str] = []
        for argument in arguments:
            if argument.startswith("-"):
                flag, equals, value = argument.partition("=")
                redacted.append(f"{flag}={self.pairs(value)}" if equals else self.url(argument))
            else:
                redacted.append(self.pairs(argument))
        return redacted

    def secret_values(self, values: Mapping[Any, Any]) -> list[str]:
        """The text of every value under a secret-looking key, at any depth, longest first."""
        found: set[str] = set()
        pending: list[tuple[str, Any, bool]] = [(str(k), v, False) for k, v in values.items()]
        while pending:
            name, value, secret = pending.pop()
            secret = secret or self.is_secret_name(name)
            if isinstance(value, Mapping):
                pending.extend((str(k), v, secret) for k, v in value.items())
            elif isinstance(value, (list, tuple)):
                pending.extend((name, item, secret) for item in value)
            elif secret and value is not None and len(str(value)) >= _MIN_SCRUBBED:
                found.add(str(value))
        return sorted(found, key=len, reverse=True)

    def argument_secrets(self, arguments: Sequence[str]) -> list[str]:
        """The values :meth:`arguments` would hide, to find them again in free text."""
        given: list[dict[str, Any]] = []
        for argument in arguments:
            text = argument.partition("=")[2] if argument.startswith("-") else argument
            for item in split_pairs(text):
                key, sep, value = item.partition("=")
                if sep:
                    with contextlib.suppress(ValueError):
                        given.append({key.strip(): self._parsed(key.strip(), value)})
        found = {secret for values in given for secret in self.secret_values(values)}
        return sorted(found, key=len, reverse=True)

    def text(self, text: str, secrets: Iterable[str] = ()) -> str:
        """Free text (a message, a traceback) with URL passwords and known secrets hidden."""
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return self.url(text)

    def _any(self, name: str, value: Any) -> Any:
        if self.is_secret_name(name):
            return REDACTED
        if isinstance(value, Mapping):
            return self.values(value)
        if isinstance(value, (list, tuple)):
            return [self._any(name, item) for item in value]
        if isinstance(value, str):
            return self.url(value)
        return value

    def _parsed(self, key: str, value: str) -> Any:
        """A pair's value as ``--params`` reads it when it may nest, else the text.

        Raises ValueError for a value the YAML reader refuses (an alias bomb).
        """
        if not value.lstrip().startswith(("{", "[")):
            return value
        from kilnflow._yaml import parse_scalar

        return parse_scalar(value.strip(), key)

    def _pair_value(self, key: str, value: str) -> str:
        if self.is_secret_name(key):
            return REDACTED
        try:
            parsed = self._parsed(key, value)
        except ValueError:
            return REDACTED
        hidden = self._any(key, parsed)
        if parsed is value or hidden == parsed:
            return value
        import yaml

        return str(yaml.safe_dump(hidden, default_flow_style=True, width=2**31)).strip()


def _normal(name: str) -> str:
    return re.sub(r"[-. ]", "_", name.upper())


_DEFAULT = Redactor()


def is_secret_name(name: str) -> bool:
    """Whether ``name`` looks secret by Kilnflow's own patterns."""
    return _DEFAULT.is_secret_name(name)


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` hidden."""
    return _DEFAULT.url(text)


def redact(name: str, value: str) -> str:
    """Hide a variable's value if its name looks secret, and any URL password."""
    return _DEFAULT.redact(name, value)


def redact_values(values: Mapping[Any, Any]) -> dict[Any, Any]:
    """``Redactor().values``: secret keys at any depth and URL passwords hidden."""
    return _DEFAULT.values(values)


def redact_pairs(text: str) -> str:
    """``Redactor().pairs``: secret values of ``key=value`` text hidden."""
    return _DEFAULT.pairs(text)


def redact_arguments(arguments: Sequence[str]) -> list[str]:
    """``Redactor().arguments``: a command line with secrets hidden."""
    return _DEFAULT.arguments(arguments)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``Redactor().text``: URL passwords and the given secret values hidden."""
    return _DEFAULT.text(text, secrets)


class RedactingFormatter(logging.Formatter):
    """A log formatter that hides URL passwords in the message and its traceback.

    Datasets name their paths in log records and exceptions; a path such as
    ``s3://key:secret@bucket/x`` must not reach a terminal or a log file.
    ``wrapping`` keeps another formatter's layout (one a user configured, a
    JSON formatter say) and hides the passwords in what it writes.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        *,
        wrapping: logging.Formatter | None = None,
    ) -> None:
        super().__init__(fmt, datefmt)
        self.wrapping = wrapping

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record) if self.wrapping is None else self.wrapping.format(record)
        return redact_url(text)


def redact_handler_output(handler: logging.Handler) -> None:
    """Have ``handler`` hide URL passwords in everything it formats, in its own layout."""
    if not isinstance(handler.formatter, RedactingFormatter):
        handler.setFormatter(RedactingFormatter(wrapping=handler.formatter or logging.Formatter()))
