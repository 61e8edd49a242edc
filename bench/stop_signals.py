"""Ctrl-C to a ParallelRunner run under CPU load, in a loop: ``python bench/stop_signals.py``.

Each round starts a script that runs two long nodes with ``ParallelRunner``,
sends it SIGINT (or SIGTERM), and checks that it exits within ``--timeout``
seconds and that every process it started (the workers and the
multiprocessing resource tracker, found through Linux's /proc) is gone a few
seconds later. Busy-looping processes load every CPU meanwhile.

``--when busy`` signals once both nodes run (the scenario of the test
``test_ctrl_c_stops_the_run_and_leaves_no_worker_behind``); ``--when random``
at a random moment of the first seconds, often while the pool starts its
workers. ``--widen SECONDS`` makes the parent pause right after starting each
worker process, before the pool records it: what a parent descheduled on a
loaded machine does, made reproducible. The race found there: a signal
landing in that pause left the started worker out of the pool's list, so
the stop missed it; the parent then waited for it at exit, and the worker
and the resource tracker were orphaned.

Prints one line per round and a summary; exits 1 if any round failed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The tests' /proc helpers: which processes a run started, and which still live.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import alive, descendants

RUN = '''
import os
import sys
import time

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import ParallelRunner


def sleep_long(folder):
    with open(os.path.join(folder, f"pid-{os.getpid()}"), "w"):
        pass
    time.sleep(600)


def widen(seconds):
    """Pause after a worker process starts, before the pool records it."""
    from concurrent.futures import process

    start = process.ProcessPoolExecutor._spawn_process

    def spawn_then_pause(self):
        import multiprocessing.process as mp_process

        original = mp_process.BaseProcess.start

        def start_then_pause(proc):
            original(proc)
            time.sleep(seconds)

        mp_process.BaseProcess.start = start_then_pause
        try:
            start(self)
        finally:
            mp_process.BaseProcess.start = original

    process.ProcessPoolExecutor._spawn_process = spawn_then_pause


if __name__ == "__main__":
    folder, pause = sys.argv[1], float(sys.argv[2])
    if pause:
        widen(pause)
    pipe = Pipeline(
        [
            node(sleep_long, "folder", "a", name="one"),
            node(sleep_long, "folder", "b", name="two"),
        ]
    )
    ParallelRunner(max_workers=2).run(pipe, DataCatalog({"folder": MemoryDataset(folder)}))
'''


def one_round(script: Path, args: argparse.Namespace) -> tuple[bool, str]:
    """Run, signal and check once; return whether it held and a description."""
    with tempfile.TemporaryDirectory() as folder:
        # Not a pipe: an orphaned worker would hold it open.
        process = subprocess.Popen(
            [sys.executable, str(script), folder, str(args.widen)],
            stderr=subprocess.DEVNULL,
        )
        seen: set[int] = set()
        if args.when == "busy":
            while len(list(Path(folder).glob("pid-*"))) < 2 and process.poll() is None:
                seen |= descendants(process.pid)
                time.sleep(0.01)
        else:
            deadline = time.monotonic() + random.uniform(0.2, args.random_within)
            while time.monotonic() < deadline and process.poll() is None:
                seen |= descendants(process.pid)
                time.sleep(0.01)
        seen |= descendants(process.pid)
        sent = time.monotonic()
        process.send_signal(args.signal)
        try:
            process.wait(timeout=args.timeout)
            exited: float | None = time.monotonic() - sent
        except subprocess.TimeoutExpired:
            exited = None
            process.kill()
            process.wait()
        grace = time.monotonic() + 5
        while [pid for pid in seen if alive(pid)] and time.monotonic() < grace:
            time.sleep(0.05)
        survivors = sorted(pid for pid in seen if alive(pid))
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    held = exited is not None and not survivors
    took = f"exited after {exited:.2f}s" if exited is not None else "did not exit"
    return held, f"{took}, {len(seen)} processes started, {len(survivors)} survived"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--load", type=int, default=2 * (os.cpu_count() or 1), help="busy loops")
    parser.add_argument("--when", choices=["busy", "random"], default="busy")
    parser.add_argument("--random-within", type=float, default=8.0, help="seconds")
    parser.add_argument("--widen", type=float, default=0.0, help="seconds; see above")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to exit")
    parser.add_argument(
        "--signal",
        type=lambda name: signal.Signals[name],
        default=signal.SIGINT,
        help="SIGINT or SIGTERM",
    )
    args = parser.parse_args()
    if not Path("/proc/self/stat").exists():
        sys.exit("This benchmark finds processes through Linux's /proc.")

    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)
    ]
    failed = 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "stopped_run.py"
            script.write_text(RUN)
            for number in range(1, args.rounds + 1):
                held, description = one_round(script, args)
                failed += not held
                print(f"round {number:>3}: {'ok  ' if held else 'FAIL'} {description}", flush=True)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(
        f"{args.rounds - failed} of {args.rounds} rounds held ({args.signal.name} "
        f"{args.when}, widen {args.widen}s, {args.load} busy loops on {os.cpu_count()} CPUs)"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
