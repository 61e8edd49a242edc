"""``kilnflow viz --serve``: the viewer on 127.0.0.1, live while you edit and run.

The page asks ``/_version`` every second; the answer changes when the
project's code or configuration changes or a run is recorded, and the page
then reloads, so the picture follows the code and the latest run. Errors in
the project's code show on the page instead of stopping the server.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kilnflow.viz._page import render_page
from kilnflow.viz._view import ViewSource

__all__ = ["serve"]

#: Sessions listed in the page's run switcher.
SESSIONS_LISTED = 50
#: How often the page asks whether it should reload.
POLL_MS = 1000


class _Viewer:
    """Builds pages and versions; one lock, since the project is per-process state."""

    def __init__(self, source: ViewSource) -> None:
        self.source = source
        self.lock = threading.Lock()

    def version(self) -> str:
        with self.lock:
            fingerprint = self.source.fingerprint()
            try:
                newest = self.source.sessions(1)
            except Exception as exc:  # the project's own code may be broken right now
                return f"{fingerprint}:{type(exc).__name__}"
        latest = f"{newest[0]['session_id']}:{newest[0].get('outcome')}" if newest else "-"
        return f"{fingerprint}:{latest}"

    def page(self, pipeline: str | None, session_id: str | None) -> str:
        version = self.version()
        with self.lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model = self.source.view(pipeline, session_id)
                sessions = self.source.sessions(SESSIONS_LISTED)
                pipelines = self.source.pipeline_names()
            except Exception as exc:  # shown on the page; the server keeps watching
                model = _error_model(self.source, pipeline, exc)
                sessions, pipelines = [], []
        # A pipeline module that fails to import is skipped with a warning: show it.
        model["warnings"] = list(dict.fromkeys(str(warning.message) for warning in caught))
        model["serve"] = {
            "version": version,
            "poll_ms": POLL_MS,
            "pipelines": pipelines,
            "sessions": [
                {
                    "session_id": record["session_id"],
                    "outcome": record.get("outcome"),
                    "pipeline": record["run"].get("pipeline_name"),
                }
                for record in sessions
            ],
        }
        return render_page(model)


def _error_model(source: ViewSource, pipeline: str | None, exc: Exception) -> dict[str, Any]:
    from kilnflow.errors import KilnflowError

    message = str(exc) if isinstance(exc, KilnflowError) else f"{type(exc).__name__}: {exc}"
    return {
        "pipeline": pipeline or "__default__",
        "project": {
            "package": source.name,
            "mode": "project" if source.project_path else "packaged",
        },
        "nodes": [],
        "datasets": [],
        "edges": [],
        "namespaces": [],
        "tags": [],
        "run": None,
        "error": f"{message} (the page reloads when the project changes)",
    }


def _handler(viewer: _Viewer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/_version":
                self._send(viewer.version(), "text/plain; charset=utf-8")
            elif url.path == "/":
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                self._send(
                    viewer.page(query.get("pipeline"), query.get("session")),
                    "text/html; charset=utf-8",
                )
            else:
                self._send("Not found", "text/plain; charset=utf-8", HTTPStatus.NOT_FOUND)

        def _send(self, text: str, kind: str, status: HTTPStatus = HTTPStatus.OK) -> None:
            body = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: the page polls every second."""

    return Handler


def serve(source: ViewSource, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve the viewer of ``source`` on 127.0.0.1:``port`` (0: any free port) until stopped."""
    from kilnflow.errors import KilnflowError

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(_Viewer(source)))
    except OSError as exc:
        raise KilnflowError(
            f"Cannot serve on 127.0.0.1:{port} ({exc.strerror}); pick another with --port."
        ) from None
    with server:
        announce(
            f"Serving the viewer at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)"
        )
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
