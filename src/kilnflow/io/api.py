"""HTTP endpoints as datasets: ``type: api.APIDataset`` in a catalog.

requests is imported only when a request is made; constructing the dataset
without it says to ``pip install "kilnflow[api]"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kilnflow.errors import DatasetError

from ._core import AbstractDataset, require

__all__ = ["APIDataset"]


class APIDataset(AbstractDataset):
    """An HTTP endpoint: a load sends ``method`` (GET by default) and returns the response.

    ``load_args`` and ``save_args`` go to ``requests.request`` (``params``,
    ``headers``, ``timeout``, ``verify``, ...). ``credentials`` become the
    request's authentication: ``{username: ..., password: ...}`` or a
    two-item list for basic auth, or ``{token: ...}`` for a bearer token.
    A save sends the data as JSON with ``save_args.method`` (POST by
    default). A response with an error status fails the load or save with
    the status and the URL. An endpoint has no cheap existence check, so it
    always counts as existing. Responses are not versioned.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        load_args: Mapping[str, Any] | None = None,
        save_args: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | Sequence[str] | None = None,
    ) -> None:
        require(f"api.APIDataset for {url!r}", "api", "requests")
        self._url = url
        self._method = method.upper()
        self._load_args = dict(load_args or {})
        self._save_args = {"method": "POST", **(save_args or {})}
        self._auth = _auth(url, credentials)

    def _load(self) -> Any:
        return self._request("load", self._method, self._load_args)

    def _save(self, data: Any) -> None:
        args = dict(self._save_args)
        method = str(args.pop("method")).upper()
        self._request("save", method, {**args, "json": data})

    def _request(self, action: str, method: str, args: Mapping[str, Any]) -> Any:
        import requests

        options = {"timeout": 60, **args}
        headers = dict(options.pop("headers", None) or {})
        auth = self._auth
        if isinstance(auth, str):
            headers["Authorization"] = f"Bearer {auth}"
            auth = None
        response = requests.request(method, self._url, headers=headers, auth=auth, **options)
        if not response.ok:
            raise DatasetError(
                f"Could not {action} {self._label()}: "
                f"{method} {self._url} answered {response.status_code} {response.reason}."
            )
        return response

    def _describe(self) -> dict[str, Any]:
        return {"url": self._url, "method": self._method}


def _auth(url: str, credentials: Mapping[str, Any] | Sequence[str] | None) -> Any:
    """Return basic-auth ``(user, password)``, a bearer token, or ``None``."""
    if credentials is None:
        return None
    if isinstance(credentials, Mapping):
        if "token" in credentials:
            return str(credentials["token"])
        if "username" in credentials and "password" in credentials:
            return (str(credentials["username"]), str(credentials["password"]))
    elif not isinstance(credentials, str) and len(credentials) == 2:
        return (str(credentials[0]), str(credentials[1]))
    raise DatasetError(
        f"api.APIDataset for {url!r}: credentials must be {{username: ..., password: ...}}, "
        "a two-item list, or {token: ...}."
    )


def __dir__() -> list[str]:
    return __all__
