"""The SQLite session store: URLs, schema versions, lost processes, failed writes, modes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import SCRIPTS, error_line, new_project, read_session, run_cli, session_ids, show
from kilnflow.errors import SessionError
from kilnflow.session import DatabaseStore, SQLiteStore

NODES = Path("src") / "demo" / "pipelines" / "readings" / "nodes.py"


def _schema_versions(database: Path) -> list[int]:
    with closing(sqlite3.connect(database)) as connection:
        return [row[0] for row in connection.execute("SELECT version FROM schema_version")]


def test_kilnflow_store_names_the_file_every_command_uses(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    shared = tmp_path / "shared" / "history.db"
    env = {"KILNFLOW_STORE": f"sqlite:///{shared}"}

    run_cli("run", cwd=project, env=env)
    listed = run_cli("session", "list", cwd=project, env=env)

    assert not (project / ".kilnflow").exists()
    assert listed.stderr.strip() == f"Sessions in sqlite:///{shared}"
    (line,) = listed.stdout.splitlines()
    record = json.loads(
        run_cli("session", "show", "--json", line.split()[0], cwd=project, env=env).stdout
    )
    assert record["outcome"] == "success"
    assert record["environment"]["KILNFLOW_STORE"] == f"sqlite:///{shared}"
    # Another folder, no project: the variable alone finds the same history.
    elsewhere = run_cli("session", "list", cwd=tmp_path, env=env).stdout
    assert elsewhere == listed.stdout


def test_settings_store_url_is_relative_to_the_project(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(
        settings.read_text() + '\nSESSION_STORE_URL = "sqlite:///history/runs.db"\n'
    )

    run_cli("run", cwd=project / "src")

    assert (project / "history" / "runs.db").is_file()
    assert len(session_ids(project)) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://ada:hunter2@db/x", "unsupported session store URL 'mysql://ada:***@db/x'"),
        ("sqlite://", "'sqlite://' names no file"),
        ("sqlite:///", "'sqlite:///' names no file"),
        ("postgresql://ada:hunter2@db:port/x", "'postgresql://ada:***@db:port/x' is not a valid"),
        ("sessions.db", "unsupported session store URL 'sessions.db'"),
    ],
)
def test_a_bad_store_url_is_one_line_naming_the_variable(
    tmp_path: Path, url: str, expected: str
) -> None:
    project = new_project(tmp_path)

    result = run_cli("run", cwd=project, env={"KILNFLOW_STORE": url}, check=False)

    line = error_line(result)
    assert line.startswith("Error: KILNFLOW_STORE: ")
    assert expected in line
    assert "sqlite:///PATH/sessions.db or postgresql://" in line
    assert "hunter2" not in result.stdout + result.stderr
    assert not (project / "data" / "reporting").exists()  # nothing ran


def test_a_store_written_by_kilnflow_0_1_upgrades_in_place(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    old = {
        "session_id": "20260101T000000.000001Z-aaaaaaaa",
        "package_name": "demo",
        "started_at": "2026-01-01T00:00:00+00:00",
        "outcome": "failed",
        "env": "prod",
        "run": {"pipeline_name": "etl"},
        "run_seconds": 1.5,
        "exception": {"type": "KeyError", "message": "x", "traceback": "..."},
    }
    with closing(sqlite3.connect(database)) as connection:  # the schema of the 0.1 tree, verbatim
        connection.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, "
            "package_name TEXT, started_at TEXT, outcome TEXT, record TEXT NOT NULL)"
        )
        connection.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (old["session_id"], "demo", old["started_at"], "failed", json.dumps(old)),
        )
        connection.commit()

    with SQLiteStore(database, "") as store:
        (row,) = store.summaries(pipeline="etl")

        assert _schema_versions(database) == [1, 2]
        assert row["session_id"] == old["session_id"]
        assert (row["outcome"], row["env"], row["run_seconds"]) == ("failed", "prod", 1.5)
        assert store.find("2026")["exception"]["message"] == "x"
        assert store.summaries(outcome="success") == []
    # A second opener finds the schema current and changes nothing.
    with SQLiteStore(database, "") as store:
        store.summaries()
    assert _schema_versions(database) == [1, 2]


def test_a_store_from_a_newer_kilnflow_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    with SQLiteStore(database, "20260101T000000.000001Z-aaaaaaaa") as store:
        store.save()
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 'later')")
        connection.commit()

    with pytest.raises(SessionError, match=r"schema version 99, newer than this Kilnflow knows"):
        SQLiteStore(database, "").summaries()


def test_the_store_file_is_private_to_its_owner(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    home = tmp_path / "home"

    run_cli("run", cwd=project)
    run_cli("session", "list", cwd=tmp_path, env={"KILNFLOW_HOME": str(home / "deeper")})
    with DatabaseStore(f"sqlite:///{home}/deeper/sessions.db", "x") as store:
        store.save()

    for folder in (project / ".kilnflow", home / "deeper"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        files = list(folder.rglob("*"))
        assert folder / "sessions.db" in files
        for path in files:  # the parsed-configuration cache's folder and entries too
            expected = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == expected, path


def _hang_in_clean(project: Path) -> None:
    nodes = project / NODES
    hang = '__import__("time").sleep(600)\n    """Drop faulty'
    nodes.write_text(nodes.read_text().replace('"""Drop faulty', hang, 1))


def _wait_for_running(project: Path, env: dict[str, str] | None = None) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = run_cli("session", "list", "--outcome", "running", cwd=project, env=env).stdout
        if out.split()[:2] and out.split()[1] == "running":
            return out.split()[0]
        time.sleep(0.2)
    raise AssertionError("the run never recorded its start")


@contextmanager
def _killed_on_exit(project: Path) -> Iterator[tuple[int, str]]:
    """A ``kilnflow run`` hanging in its first node: its PID and session id; SIGKILLed on exit.

    SIGKILL, because a process that dies without a word is what the lost check is for.
    """
    _hang_in_clean(project)
    process = subprocess.Popen(
        [str(SCRIPTS / "kilnflow"), "run"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process.pid, _wait_for_running(project)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def test_a_killed_run_is_marked_lost_not_running_forever(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    with _killed_on_exit(project) as (pid, session_id):
        # Alive: listing leaves it alone.
        assert show(project, session_id)["outcome"] == "running"

    listed = run_cli("session", "list", cwd=project).stdout
    record = show(project, session_id)

    assert listed.split()[:2] == [session_id, "lost"]
    assert record["outcome"] == "lost"
    assert record["pid"] == pid
    assert record["host"] == socket.gethostname()
    assert record["lost_noticed_at"] >= record["started_at"]
    assert run_cli("session", "list", "--outcome", "running", cwd=project).stdout.strip() == (
        "No sessions match these filters."
    )


def test_starting_a_run_marks_the_lost_sessions_of_this_host(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    source = (project / NODES).read_text()
    with _killed_on_exit(project) as (_, killed):
        pass
    (project / NODES).write_text(source)

    run_cli("run", cwd=project)  # no listing in between: the start itself notices

    with closing(sqlite3.connect(project / ".kilnflow" / "sessions.db")) as connection:
        outcomes = dict(connection.execute("SELECT session_id, outcome FROM sessions"))
    assert outcomes.pop(killed) == "lost"
    assert list(outcomes.values()) == ["success"]


def test_a_reused_pid_or_another_host_is_told_apart(tmp_path: Path) -> None:
    here = socket.gethostname()
    # This test process is alive, but did not start these sessions: its start differs.
    rows = {
        "20260101T000000.000001Z-aaaaaaaa": (here, os.getpid(), "another-boot:1"),
        "20260101T000000.000002Z-bbbbbbbb": ("elsewhere", 1, None),
        "20260101T000000.000003Z-cccccccc": (here, os.getpid(), None),
    }
    for session_id, (host, pid, started) in rows.items():
        with SQLiteStore(tmp_path, session_id) as store:
            store.update(
                session_id=session_id, outcome="done", host=host, pid=pid, process_start=started
            )
            store.save()
    with closing(sqlite3.connect(tmp_path / "sessions.db")) as connection:
        connection.execute("UPDATE sessions SET outcome = 'running'")
        connection.commit()

    with SQLiteStore(tmp_path, "") as reader:
        outcomes = {row["session_id"][-1]: row["outcome"] for row in reader.summaries()}

    # a: pid reused by another process; b: another host, cannot be judged; c: alive.
    assert outcomes == {"a": "lost", "b": "running", "c": "running"}


def test_listing_and_the_lost_check_never_scan_the_whole_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every query the store runs to list, filter, find or check is an index search."""
    for number in range(50):
        session_id = f"202601{number % 28 + 1:02}T000000.000001Z-{number:08x}"
        with SQLiteStore(tmp_path, session_id) as store:
            run = {"pipeline_name": f"p{number % 3}"}
            store.update(outcome="success", run=run, host="h", pid=1)
            store.save()
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):  # type: ignore[no-untyped-def]
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced)
    with SQLiteStore(tmp_path, "") as reader:
        reader.summaries()
        reader.summaries(5, pipeline="p1", outcome="success")
        reader.summaries(since=datetime(2026, 1, 20, tzinfo=UTC), dag_run="x")
        reader.summaries(outcome="failed")
        reader.find(f"20260105T000000.000001Z-{4:08x}")
    monkeypatch.undo()

    queries = {sql for sql in statements if sql.startswith("SELECT") and "FROM sessions" in sql}
    assert any("outcome = 'running' AND host =" in sql for sql in queries)
    with closing(sqlite3.connect(tmp_path / "sessions.db")) as connection:
        for sql in queries:
            plan = " | ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "TEMP B-TREE" not in plan, (sql, plan)
            for step in plan.split(" | "):
                assert step.startswith("SEARCH") or "USING" in step, (sql, plan)


@pytest.fixture
def full_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 1 MiB file system (tmpfs), to fill up; skips when it cannot be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        print(f"cannot mount a tmpfs: {result.stderr.strip()}")
        pytest.skip(f"a small file system cannot be mounted here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_when_the_disk_is_full_the_outcome_write_fails_clearly_and_history_stays(
    tmp_path: Path, full_disk: Path
) -> None:
    project = new_project(tmp_path)
    env = {"KILNFLOW_STORE": f"sqlite:///{full_disk}/sessions.db"}
    run_cli("run", cwd=project, env=env)
    (earlier,) = session_ids_in(project, env)
    # The last node starts filling the disk and keeps it full, as a pipeline's
    # writer thread would: what the store frees when it closes its connection
    # to retry (its write-ahead log) is taken again before the retry.
    nodes = project / NODES
    filler = full_disk / "filler"
    nodes.write_text(
        nodes.read_text().replace(
            '"""A plain-text table',
            f'_fill({str(filler)!r})\n    """A plain-text table',
        )
        + "\n\ndef _fill(path):\n"
        "    import threading, time\n"
        "    file = open(path, 'wb', buffering=0)\n"
        "    full = threading.Event()\n"
        "    def keep_full():\n"
        "        while True:\n"
        "            try:\n"
        "                file.write(b'x' * 4096)\n"
        "            except OSError:\n"
        "                full.set()\n"
        "                time.sleep(0.001)\n"
        "    threading.Thread(target=keep_full, daemon=True).start()\n"
        "    full.wait()\n"
    )

    result = run_cli("run", cwd=project, env=env, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: The outcome of session ")
    assert "could not be recorded after 3 attempts" in line
    assert "(success)" in line
    assert "the history recorded before it is intact" in line
    assert f"sqlite:///{full_disk}/sessions.db" in line
    filler.unlink()
    with closing(sqlite3.connect(full_disk / "sessions.db")) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    latest, previous = session_ids_in(project, env)
    assert previous == earlier
    assert show_in(project, earlier, env)["outcome"] == "success"
    assert show_in(project, latest, env)["outcome"] == "lost"  # its process is gone


def session_ids_in(project: Path, env: dict[str, str]) -> list[str]:
    out = run_cli("session", "list", cwd=project, env=env).stdout
    return [line.split()[0] for line in out.splitlines()]


def show_in(project: Path, session_id: str, env: dict[str, str]) -> dict[str, object]:
    shown = run_cli("session", "show", "--json", session_id, cwd=project, env=env).stdout
    record: dict[str, object] = json.loads(shown)
    return record


def test_a_failing_outcome_write_is_retried(tmp_path: Path, monkeypatch) -> None:
    store = SQLiteStore(tmp_path, "20260101T000000.000001Z-aaaaaaaa")
    store.update(outcome="running")
    store.save()
    store.close()  # the next save opens a connection, and that fails once
    real_connect = sqlite3.connect
    failures = []

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(1)
            raise sqlite3.OperationalError("database or disk is full")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", flaky)
    store["outcome"] = "success"
    store.save()
    store.close()

    assert failures == [1]
    assert read_session(tmp_path, store.session_id)["outcome"] == "success"


def test_a_store_writes_over_one_connection_until_closed(tmp_path: Path, monkeypatch) -> None:
    """Opening a connection and checkpointing at its close cost more than a session's writes."""
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", counting)
    store = SQLiteStore(tmp_path, "20260101T000000.000001Z-aaaaaaaa")
    for outcome in ("running", "running", "success"):
        store["outcome"] = outcome
        store.save()
    assert len(opened) == 1
    assert (tmp_path / "sessions.db-wal").exists()

    store.close()

    assert not (tmp_path / "sessions.db-wal").exists()  # checkpointed into the file
    store["note"] = "saved after close"
    store.save()
    assert len(opened) == 2
    store.close()
    assert read_session(tmp_path, store.session_id)["note"] == "saved after close"


def test_a_store_closes_its_connection_before_the_process_forks(tmp_path: Path) -> None:
    """SQLite connections must not cross fork: the child finds none open and opens its own."""
    store = SQLiteStore(tmp_path, "20260101T000000.000001Z-aaaaaaaa")
    store["outcome"] = "running"
    store.save()
    assert (tmp_path / "sessions.db-wal").exists()  # the connection is open

    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            # Closing the last connection checkpointed and removed the log.
            status = 2 if (tmp_path / "sessions.db-wal").exists() else 1
            store["outcome"] = "from the child"
            store.save()
            store.close()
            status = 0 if status == 1 else status
        finally:
            os._exit(status)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0

    assert read_session(tmp_path, store.session_id)["outcome"] == "from the child"
    store["outcome"] = "success"
    store.save()
    store.close()
    assert read_session(tmp_path, store.session_id)["outcome"] == "success"
