"""Run history at scale: ``python bench/history_scale.py [--sessions N] [--repeats N]``.

Creates a ``kilnflow new`` project in a temporary folder and times, in fresh
processes, ``kilnflow run`` and ``kilnflow session list`` (first page, and
filtered by pipeline and outcome) on an empty store, then again after the
store is filled with 100,000 sessions. It also times the store's own calls
in this process (list a page, find by prefix, the lost-process check), which
leave out the interpreter's start. Targets (issue 10): run overhead
unchanged within noise, ``session list`` under 100 ms. ``kilnflow --help``
is timed too: on a loaded machine every process start is slower, and the
distance to that floor is what the store costs.

The store is filled through Kilnflow's own schema and summary columns in one
transaction, with records copied from a real run; about 1 in 50 failed and
1 in 1,000 left ``running`` by processes of another host.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kilnflow.session import SQLiteStore
from kilnflow.session._database import SUMMARY_COLUMNS, summary

KILNFLOW = Path(sys.executable).with_name("kilnflow")


def timed(command: Sequence[str], cwd: Path, repeats: int) -> list[float]:
    """Wall times (ms) of ``command`` in fresh processes, after one warm-up."""
    samples = []
    for index in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        if index:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def timed_call(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def fill(database: Path, template: dict[str, object], sessions: int) -> None:
    """Add ``sessions`` records ending an hour ago, one a minute, in one transaction."""
    columns = ("session_id", "record", *SUMMARY_COLUMNS)
    insert = (
        f"INSERT INTO sessions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    )
    first = datetime.now(UTC) - timedelta(hours=1, minutes=sessions)

    def rows():  # type: ignore[no-untyped-def]
        for number in range(sessions):
            started = first + timedelta(minutes=number)
            record = dict(template)
            record["session_id"] = f"{started:%Y%m%dT%H%M%S.%fZ}-{number:08x}"
            record["started_at"] = started.isoformat()
            record["run"] = {**template["run"], "pipeline_name": f"pipeline_{number % 7}"}  # type: ignore[dict-item]
            if number % 50 == 0:
                record["outcome"] = "failed"
                record["exception"] = {"type": "KeyError", "message": "x", "node": "clean"}
            if number % 1000 == 1:
                record.update(outcome="running", host="another-host", pid=number)
            yield (record["session_id"], json.dumps(record), *summary(record).values())

    with closing(sqlite3.connect(database)) as connection:
        connection.executemany(insert, rows())
        connection.commit()


def report(label: str, samples: list[float]) -> None:
    print(
        f"  {label:<44} median {statistics.median(samples):7.1f} ms   "
        f"min {min(samples):7.1f}   max {max(samples):7.1f}"
    )


def measure(project: Path, repeats: int) -> None:
    database = project / ".kilnflow" / "sessions.db"
    store = SQLiteStore(database, "")
    newest = store.summaries(1)[0]["session_id"]
    floor = timed([str(KILNFLOW), "--help"], project, repeats)
    report("kilnflow --help (the start-up floor)", floor)
    report("kilnflow run (10-node example)", timed([str(KILNFLOW), "run"], project, repeats))
    for options in ([], ["--pipeline", "pipeline_3", "--outcome", "failed"]):
        label = " ".join(["kilnflow session list", *options])
        report(label, timed([str(KILNFLOW), "session", "list", *options], project, repeats))
    report("in-process: summaries() first page", timed_call(store.summaries, repeats))
    report("in-process: find(prefix)", timed_call(lambda: store.find(newest[:24]), repeats))
    report("in-process: mark_lost()", timed_call(store.mark_lost, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=9)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kilnflow-history-") as folder:
        environment = {**os.environ, "KILNFLOW_HOME": str(Path(folder) / "home")}
        os.environ.update(environment)
        subprocess.run([str(KILNFLOW), "new", "demo"], cwd=folder, check=True, capture_output=True)
        project = Path(folder) / "demo"
        subprocess.run([str(KILNFLOW), "run"], cwd=project, check=True, capture_output=True)
        database = project / ".kilnflow" / "sessions.db"
        print(f"Empty store ({database.stat().st_size / 1e6:.1f} MB):")
        measure(project, options.repeats)
        template = SQLiteStore(database, "").sessions(1)[0]
        start = time.perf_counter()
        fill(database, template, options.sessions)
        took = time.perf_counter() - start
        size = database.stat().st_size / 1e6
        print(
            f"Store with {options.sessions:,} more sessions ({size:.1f} MB, {took:.1f} s to fill):"
        )
        measure(project, options.repeats)


if __name__ == "__main__":
    main()
