"""One run history across machines: a real PostgreSQL server, started by the tests."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote
from uuid import uuid4

import pytest

from conftest import SCRIPTS, error_line, new_project, run_cli, run_concurrently

#: Has an "@" so that percent-encoding and redaction both meet a hard case.
PASSWORD = "s3cr3t@kiln"
USER = "kilnflow"


def _bindir() -> Path | None:
    try:
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found = ""
    candidates = [Path(found)] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").is_file()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _skip(reason: str) -> None:
    print(f"PostgreSQL cannot start: {reason}")
    pytest.skip(f"PostgreSQL cannot start: {reason}")


def _unprivileged_account() -> pwd.struct_passwd:
    """``nobody``, or a system user made for the server where there is none."""
    for name in ("nobody", "kilnflow-pg"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "kilnflow-pg"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        _skip(f"no unprivileged user to run initdb as: {result.stderr.strip()}")
    return pwd.getpwnam("kilnflow-pg")


@pytest.fixture(scope="session")
def postgres_port() -> Iterator[int]:
    """A PostgreSQL server on 127.0.0.1 in a temporary folder, stopped by its PID at the end.

    initdb refuses to run as root, so as root the server runs as ``nobody``
    in a folder that user owns (outside pytest's root-only temporary tree).
    """
    bindir = _bindir()
    if bindir is None:
        _skip("no initdb (install Debian's postgresql package)")
    assert bindir is not None
    account = _unprivileged_account() if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    folder = Path(tempfile.mkdtemp(prefix="kilnflow-pg-"))
    os.chown(folder, account.pw_uid, account.pw_gid)
    as_owner = {"user": account.pw_uid, "group": account.pw_gid, "cwd": folder}
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    os.chown(password_file, account.pw_uid, account.pw_gid)
    port = _free_port()
    pid = None
    try:
        steps = [
            [
                str(bindir / "initdb"), "-D", str(folder / "data"), "-U", USER,
                f"--pwfile={password_file}", "--auth=scram-sha-256", "--no-locale", "-E", "UTF8",
            ],
            [
                str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
                "-w", "-t", "60", "start",
                "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c max_connections=200",
            ],
        ]  # fmt: skip
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, check=False, **as_owner)
            if result.returncode:
                log = (folder / "log").read_text() if (folder / "log").exists() else ""
                _skip(f"{Path(step[0]).name} failed: {result.stderr.strip()} {log.strip()}")
        pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
        yield port
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown
            deadline = time.monotonic() + 60
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)


def _url(port: int, database: str, password: str = PASSWORD) -> str:
    return f"postgresql://{USER}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


@pytest.fixture
def store_url(postgres_port: int) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    import psycopg

    name = f"t_{uuid4().hex[:12]}"
    admin = _url(postgres_port, "postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield _url(postgres_port, name)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _shown(port: int, database: str) -> str:
    return f"postgresql://{USER}:***@127.0.0.1:{port}/{database}"


def test_every_session_command_reads_the_postgres_store(
    tmp_path: Path, store_url: str, postgres_port: int
) -> None:
    import psycopg

    project = new_project(tmp_path)
    env = {"KILNFLOW_STORE": store_url}
    outputs: list[str] = []

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = run_cli(*args, cwd=project, env=env, check=check)
        outputs.append(result.stdout + result.stderr)
        return result

    cli("run", "--params", "min_valid=11")
    listed = cli("session", "list")
    (first,) = [line.split()[0] for line in listed.stdout.splitlines()]
    cli("session", "rerun", first)
    # An Airflow task session, recorded through the public API.
    code = (
        "from pathlib import Path\n"
        "from kilnflow.project import bootstrap_project\n"
        "from kilnflow.session import Session\n"
        f"bootstrap_project(Path({str(project)!r}))\n"
        "with Session.create() as session:\n"
        "    session.store['airflow'] = {'run_id': 'manual__7', 'task_id': 'clean'}\n"
        "    session.run(node_names=['clean'])\n"
    )
    subprocess.run([str(SCRIPTS / "python"), "-c", code], env={**os.environ, **env}, check=True)

    listed = cli("session", "list")
    ids = [line.split()[0] for line in listed.stdout.splitlines()]
    dag_run = cli("session", "list", "--dag-run", "manual__7").stdout
    record = json.loads(cli("session", "show", "--json", first).stdout)
    table = cli("session", "show", first[:20]).stdout
    diff = cli("session", "diff", ids[1], ids[2]).stdout

    database = store_url.rsplit("/", 1)[1]
    assert listed.stderr.strip() == f"Sessions in {_shown(postgres_port, database)}"
    assert len(ids) == 3
    assert ids[2] == first
    assert dag_run.split()[0] == ids[0]
    assert "airflow=manual__7/clean" in dag_run
    assert record["outcome"] == "success"
    assert record["extra_params"] == {"min_valid": 11}
    assert record["environment"]["KILNFLOW_STORE"] == _shown(postgres_port, database)
    assert "KILNFLOW_RERUN_OF" in json.dumps(
        json.loads(cli("session", "show", "--json", ids[1]).stdout)["environment"]
    )
    assert "min_valid" in table
    assert "success" in diff
    for output in outputs:
        assert "s3cr3t" not in output
    with psycopg.connect(store_url) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_version")]
        stored = " ".join(row[0] for row in connection.execute("SELECT record FROM sessions"))
    assert versions == [1, 2]
    assert "s3cr3t" not in stored
    assert "kiln@" not in stored


def test_fifty_concurrent_runs_are_all_recorded(tmp_path: Path, store_url: str) -> None:
    from kilnflow.session import DatabaseStore

    project = new_project(tmp_path)
    results = run_concurrently(
        [
            [str(SCRIPTS / "kilnflow"), "run", "--params", f"min_valid={number % 2 * 11}"]
            for number in range(50)
        ],
        cwd=project,
        env={"KILNFLOW_STORE": store_url},
        timeout=600,
    )
    failures = [stderr for _, returncode, stderr in results if returncode != 0]

    rows = DatabaseStore(store_url, "").summaries(100)
    assert failures == []
    assert len(rows) == 50
    assert {row["outcome"] for row in rows} == {"success"}
    assert {row["pid"] for row in rows} == {pid for pid, _, _ in results}


def test_a_wrong_password_is_one_line_without_the_password(
    tmp_path: Path, store_url: str, postgres_port: int
) -> None:
    project = new_project(tmp_path)
    database = store_url.rsplit("/", 1)[1]
    wrong = _url(postgres_port, database, password="n0t-the-pa55")

    result = run_cli("run", cwd=project, env={"KILNFLOW_STORE": wrong}, check=False)

    line = error_line(result)
    assert line.startswith(f"Error: Session store {_shown(postgres_port, database)} could not ")
    assert "password authentication failed" in line
    assert "n0t-the-pa55" not in result.stdout + result.stderr
    assert not (project / "data" / "reporting").exists()


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    project = new_project(tmp_path)
    port = _free_port()  # nothing listens there
    url = f"postgresql://ada:hunter2@127.0.0.1:{port}/history"

    for args, cwd in ((("run",), project), (("session", "list"), tmp_path)):
        result = run_cli(*args, cwd=cwd, env={"KILNFLOW_STORE": url}, check=False)

        line = error_line(result)
        assert line.startswith(f"Error: Session store postgresql://ada:***@127.0.0.1:{port}/")
        assert "Connection refused" in line
        assert "Check that the server is running" in line
        assert "hunter2" not in result.stdout + result.stderr
    assert not (project / "data" / "reporting").exists()
