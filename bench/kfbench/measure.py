"""One sample in a fresh process, and cases that alternate the two frameworks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfbench.projects import BENCH, child_env, log

#: Starts each sample, so that its peak RSS is its own (see that module).
LAUNCH = Path(__file__).with_name("launch.py")


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    error: str | None = None
    timed_out: bool = False
    detail: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"seconds": round(self.seconds, 6), "rss_mb": round(self.rss_mb, 1)}
        if self.error:
            data["error"] = self.error
        if self.timed_out:
            data["timed_out"] = True
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass
class Side:
    """How one framework runs one case."""

    command: list[str]
    cwd: Path
    bin_dir: Path
    repeats: int
    warmup: bool = True
    timeout: float | None = None
    inner: str | None = None  # "inprocess" or "importtime": the child reports the time
    skipped: str | None = None


def adopt_orphans() -> None:
    """Become the reaper of every process our samples leave orphaned (Linux; elsewhere nothing).

    A fork server (Python's ``forkserver`` start method) is a child of the
    measured process but outlives it by a moment, and the workers are its
    children, so their memory never reaches the measured process's rusage.
    Adopted, they are reaped here and counted in the sample (:func:`_reap_orphans`).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not hasattr(os, "waitid"):
        return
    pr_set_child_subreaper = 36
    ctypes.CDLL(name, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def _reap_orphans(group: int, deadline: float) -> float:
    """Wait for what is left of the sample's process group; their peak RSS in kB."""
    peak = 0
    while True:
        try:
            pid, _, usage = os.wait4(-group, os.WNOHANG)
        except ChildProcessError:
            return peak
        if pid:
            peak = max(peak, usage.ru_maxrss)
        elif time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            deadline = float("inf")
        else:
            time.sleep(0.01)


def _launched(result: Path) -> tuple[float, int] | None:
    """Wall seconds and peak RSS in kB of a sample, as :data:`LAUNCH` wrote them, if it did."""
    try:
        seconds, peak = result.read_text("utf-8").split()
    except (OSError, ValueError):
        return None
    return float(seconds), int(peak)


def _wait(process: subprocess.Popen[bytes]) -> tuple[str, int]:
    """The sample's stderr and wait status once it has ended.

    The sample has a session of its own, out of reach of the terminal's
    Ctrl-C: a stopped suite ends it rather than leave a minutes-long run behind.
    """
    try:
        stderr = process.stderr.read().decode() if process.stderr else ""
        _, status = os.waitpid(process.pid, 0)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return stderr, status


def spawn(side: Side) -> Sample:
    """Run one sample in a fresh process; wall time, or the time the child measured."""
    result_file = None
    command = list(side.command)
    if side.inner == "inprocess":
        handle, result_file = tempfile.mkstemp(prefix="bench-", suffix=".json")
        os.close(handle)
        spec = json.loads(command[-1])
        spec["result"] = result_file
        command[-1] = json.dumps(spec)
    killed = threading.Event()
    with tempfile.TemporaryFile() as output, tempfile.TemporaryDirectory() as scratch:
        launched = Path(scratch, "launched")
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCH), str(launched), *command],
            cwd=side.cwd,
            env=child_env(side.bin_dir),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if side.inner != "importtime" else subprocess.PIPE,
            start_new_session=True,
        )

        def kill() -> None:
            killed.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                killed.clear()

        timer = threading.Timer(side.timeout, kill) if side.timeout else None
        if timer:
            timer.start()
        try:
            stderr, status = _wait(process)
            waited = time.perf_counter() - started
        finally:
            if timer:
                timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        # The launcher's own rusage would carry this process's RSS: it reports the sample's.
        # A sample killed at its time limit ends the launcher too: its wait is the time.
        elapsed, own_peak = _launched(launched) or (waited, 0)
        peak = max(own_peak, _reap_orphans(process.pid, time.monotonic() + 10))
        sample = Sample(seconds=elapsed, rss_mb=peak / 1024)
        if killed.is_set():
            sample.timed_out = True
        elif process.returncode != 0:
            output.seek(0)
            tail = (output.read().decode(errors="replace") + stderr).strip().splitlines()[-8:]
            sample.error = f"exit {process.returncode}: " + " | ".join(tail)
        elif side.inner == "inprocess" and result_file:
            sample.detail = json.loads(Path(result_file).read_text("utf-8"))
            sample.seconds = sample.detail["seconds"]
        elif side.inner == "importtime":
            sample.detail = import_total(side.command[0], stderr)
            sample.seconds = sample.detail["import_us"] / 1e6
    if result_file:
        Path(result_file).unlink(missing_ok=True)
    return sample


def import_times(stderr: str) -> dict[str, int]:
    """Self microseconds per module from ``-X importtime`` output."""
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            times[parts[2]] = int(parts[0])
    return times


_STARTUP: dict[str, set[str]] = {}


def import_total(python: str, stderr: str) -> dict[str, int]:
    """Microseconds and modules an import statement added to interpreter start-up."""
    if python not in _STARTUP:
        done = subprocess.run(
            [python, "-X", "importtime", "-c", "pass"],
            cwd=BENCH / "run",
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        _STARTUP[python] = set(import_times(done.stderr))
    added = {
        name: micro for name, micro in import_times(stderr).items() if name not in _STARTUP[python]
    }
    return {"import_us": sum(added.values()), "modules": len(added)}


@dataclass
class Case:
    id: str
    group: str
    title: str
    sides: dict[str, Side]
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def good(self, framework: str) -> list[Sample]:
        return [s for s in self.samples.get(framework, []) if not s.error]

    def median(self, framework: str) -> float | None:
        good = self.good(framework)
        return statistics.median(s.seconds for s in good) if good else None

    def lower_bound(self, framework: str) -> bool:
        """True when the median is only a lower bound (a capped run was stopped)."""
        good = self.good(framework)
        return bool(good) and any(s.timed_out for s in good)

    def error(self, framework: str) -> str | None:
        failed = [s.error for s in self.samples.get(framework, []) if s.error]
        return failed[0] if failed else None

    def ratio(self) -> float | None:
        kf, kd = self.median("kilnflow"), self.median("kedro")
        return kd / kf if kf and kd else None


def run_case(case: Case) -> None:
    """Warm up, then alternate Kilnflow and Kedro samples."""
    log(f"[run] {case.id}: {case.title}")
    active = {name: side for name, side in case.sides.items() if not side.skipped}
    for name, side in active.items():
        case.samples[name] = []
        if side.warmup:
            warm = spawn(side)
            if warm.error:
                case.samples[name].append(warm)
    for index in range(max((side.repeats for side in active.values()), default=0)):
        for name, side in active.items():
            if index < side.repeats and not case.error(name):
                case.samples[name].append(spawn(side))
