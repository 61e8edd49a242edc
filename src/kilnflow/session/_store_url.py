"""Store URLs: which database keeps the run history, said in one string.

``sqlite:///relative/sessions.db`` and ``sqlite:////absolute/sessions.db``
follow SQLAlchemy's spelling, which users of the SQL datasets already know;
``postgresql://user:password@host:port/db`` is handed to libpq as it is. The
password is part of the URL, so nothing shows the URL itself: everything
that prints or records one uses :attr:`StoreURL.display`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kilnflow.errors import SessionError

__all__ = ["StoreURL", "parse_store_url"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_EXAMPLES = "sqlite:///PATH/sessions.db or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL; ``repr`` and ``display`` never include the password."""

    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: str
    #: The SQLite file (``None`` for PostgreSQL).
    path: Path | None
    #: The URL handed to the database driver, password included.
    secret_url: str
    #: What the URL's password is, to scrub it from drivers' messages.
    password: str | None

    @property
    def display(self) -> str:
        """The URL as shown to people and recorded: the password is ``***``."""
        if self.path is not None:
            return f"sqlite:///{self.path}"
        return hide_password(self.secret_url, self.password)

    def scrub(self, text: str) -> str:
        """``text`` (a driver's error message, say) with this URL's password hidden."""
        text = text.replace(self.secret_url, self.display)
        if self.password:
            for secret in {self.password, unquote(self.password)}:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return f"StoreURL({self.display!r})"


def hide_password(url: str, password: str | None) -> str:
    """``url`` with the password of its user-info part replaced by ``***``."""
    if not password:
        return url
    scheme, rest = url.split("://", 1)
    userinfo, at, location = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***{at}{location}"


def parse_store_url(url: str, *, source: str, base: Path) -> StoreURL:
    """Parse ``url`` as given by ``source`` (a variable or setting, for errors).

    Relative SQLite paths resolve against ``base``: the project folder in
    project mode, so every command of a project finds the same file.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite" and separator:
        if not rest.startswith("/") or rest == "/":
            raise SessionError(f"{source}: {url!r} names no file; write {_EXAMPLES}.")
        path = Path(rest[1:]).expanduser()
        return StoreURL("sqlite", path if path.is_absolute() else base / path, url, None)
    if scheme in _POSTGRES_SCHEMES and separator:
        try:
            parts = urlsplit(url)
            password = parts.password
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError as exc:
            shown = hide_password(url, _raw_password(rest))
            raise SessionError(
                f"{source}: {shown!r} is not a valid URL ({exc}); write {_EXAMPLES}."
            ) from None
        if not parts.hostname and not parts.path.strip("/"):
            raise SessionError(
                f"{source}: {hide_password(url, password)!r} names no server or database; "
                f"write {_EXAMPLES}."
            )
        return StoreURL("postgresql", None, url, _raw_password(rest))
    shown = hide_password(url, _raw_password(rest)) if separator else url
    raise SessionError(f"{source}: unsupported session store URL {shown!r}; write {_EXAMPLES}.")


def _raw_password(rest: str) -> str | None:
    """The password as written in ``user:password@host...`` (still percent-encoded)."""
    if "@" not in rest:
        return None
    _, colon, password = rest.rpartition("@")[0].partition(":")
    return password if colon else None
