"""Headless Chromium driven over the DevTools protocol, for tests of the viewer.

The browser is Debian's ``chromium``, started by PID and stopped by PID; the
protocol runs over one websocket (``websocket-client``). Only the handful
of DevTools calls the tests need are wrapped here.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import websocket

#: Headless, offline, quiet: no first-run pages, updates, sync or QUIC probes.
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
]
FLAGS = [*HEADLESS, "--remote-debugging-port=0", "--remote-allow-origins=*"]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One browser tab: navigate, evaluate script, click, screenshot."""

    def __init__(self, socket: websocket.WebSocket) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result, skipping events."""
        number = next(self._ids)
        self._socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """Poll ``expression`` until it is truthy; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except AssertionError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression!r} stayed false for {timeout} s")
            time.sleep(0.1)

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the viewer has drawn its graph."""
        self.call("Page.navigate", url=url)
        self.wait_for(
            "document.readyState === 'complete' && document.body"
            " && document.body.getAttribute('data-rendered-ms')"
        )

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching ``selector``, as a mouse does."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def chromium(profile: Path) -> Iterator[Page]:
    """A headless Chromium with one tab; skips the test, saying why, if it cannot start."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    profile.mkdir(parents=True, exist_ok=True)
    log = profile.parent / f"{profile.name}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        endpoint = _devtools_endpoint(process, log)
        with urllib.request.urlopen(f"{endpoint}/json/list", timeout=10) as response:
            targets = json.load(response)
        page = next(target for target in targets if target["type"] == "page")
        socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        try:
            tab = Page(socket)
            tab.call("Page.enable")
            tab.call(
                "Emulation.setDeviceMetricsOverride",
                width=1400,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield tab
        finally:
            socket.close()
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process this test started, by its PID: politely, then for sure."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _devtools_endpoint(process: subprocess.Popen[bytes], log: Path) -> str:
    """``http://127.0.0.1:PORT`` from Chromium's "DevTools listening on" line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("DevTools listening on ws://"):
                address = line.split("ws://", 1)[1].split("/", 1)[0]
                return f"http://{address}"
        if process.poll() is not None:
            break
        time.sleep(0.05)
    pytest.skip(f"chromium did not start DevTools: {log.read_text(errors='replace')[-2000:]}")
