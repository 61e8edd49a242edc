"""The generated Dockerfile on a real container engine, offline, run as the user.

``tests/engines/container-engine.sh`` starts dockerd (vfs storage, no
bridge network) and imports a ``python:3.11-slim`` base image built from
Debian packages, cached outside the repository. The test builds the
example project's image with ``--network=none`` from the wheelhouse that
``kilnflow package --wheelhouse`` writes, runs it with ``--network=none`` as
an unprivileged uid with host folders for data and sessions, and checks
the outputs, the recorded session, that no secret reached the image, and
the image's size. Where no engine can start, the test skips and says why.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import run_cli

ENGINE = Path(__file__).parent / "engines" / "container-engine.sh"
ENGINE_DIR = Path(os.environ.get("KF_ENGINE_DIR", "/var/cache/kilnflow-engine"))
#: The base image the engine script provides.
PYTHON_VERSION = "3.11"
#: A uid and gid that exist nowhere in the image, as a user's on a Linux host.
USER = "4242:4242"
MAX_IMAGE_BYTES = 150 * 1000 * 1000

#: The example's registry plus a pipeline that waits, to be stopped with ``docker stop``.
REGISTRY_WITH_A_WAIT = """
import time

from kilnflow.pipeline import Pipeline, node
from kilnflow.project import find_pipelines


def wait():
    time.sleep(600)


def register_pipelines():
    return {**find_pipelines(), "wait": Pipeline([node(wait, None, "waited", name="wait")])}
"""


def dockerd_pid() -> int | None:
    """The PID of a running dockerd the engine script started, if any."""
    try:
        pid = int((ENGINE_DIR / "dockerd.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@pytest.fixture(scope="module")
def docker() -> Iterator[dict[str, str]]:
    """An environment whose DOCKER_HOST reaches a running engine; stops what it started."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("starting dockerd needs root on Linux")
    if sys.version_info[:2] != (3, 11):
        pytest.skip(f"the engine's base image runs Python {PYTHON_VERSION}, not this Python's")
    running_before = dockerd_pid()
    started = subprocess.run(
        ["bash", str(ENGINE)], capture_output=True, text=True, timeout=1500, check=False
    )
    if started.returncode != 0 or "DOCKER_HOST=" not in started.stdout:
        pytest.skip(f"the container engine did not start: {started.stderr.strip()[-2000:]}")
    host = started.stdout.strip().rsplit("DOCKER_HOST=", 1)[1]
    yield {**os.environ, "DOCKER_HOST": host}
    started_here = dockerd_pid()
    if running_before is None and started_here is not None:
        os.kill(started_here, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while dockerd_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.5)


def run_docker(
    environment: dict[str, str], *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def session_records(database: Path) -> list[dict[str, object]]:
    if not database.exists():
        return []
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute("SELECT record FROM sessions").fetchall()
    finally:
        connection.close()
    return [json.loads(row[0]) for row in rows]


def dangling_images(environment: dict[str, str]) -> set[str]:
    listed = run_docker(environment, "images", "--quiet", "--filter", "dangling=true")
    return set(listed.stdout.split())


@contextlib.contextmanager
def built_image(environment: dict[str, str], context: Path) -> Iterator[str]:
    """``docker build --network=none`` of ``context``; the image and its stages removed after."""
    tag = f"kilnflow-test-{uuid.uuid4().hex[:12]}"
    before = dangling_images(environment)
    try:
        run_docker(environment, "build", "--network=none", "--force-rm", "-t", tag, str(context))
        yield tag
    finally:
        subprocess.run(
            ["docker", "rmi", "--force", tag, *(dangling_images(environment) - before)],
            env=environment,
            capture_output=True,
            check=False,
        )


def image_files(environment: dict[str, str], image: str) -> Iterator[tuple[str, bytes]]:
    """Every regular file of ``image``'s file system, with its content (``docker export``)."""
    container = run_docker(environment, "create", image).stdout.strip()
    try:
        exported = subprocess.run(
            ["docker", "export", container], env=environment, capture_output=True, check=True
        ).stdout
    finally:
        run_docker(environment, "rm", container)
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        for member in archive:
            if member.isfile():
                handle = archive.extractfile(member)
                yield member.name, handle.read() if handle else b""


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_image_builds_offline_and_runs_as_any_uid_with_sessions_on_a_volume(
    docker, make_project, tmp_path, wheelhouse
):
    root = make_project()
    secret = f"kilnflow-secret-{uuid.uuid4().hex}"
    (root / "conf" / "local" / "credentials.yml").write_text(f"db:\n  password: {secret}\n")
    (root / "conf" / "base" / "credentials.yml").write_text(f"api:\n  token: {secret}\n")
    (root / "src" / "demo" / "pipeline_registry.py").write_text(REGISTRY_WITH_A_WAIT)
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse)}
    packaged = run_cli("package", "--wheelhouse", cwd=root, env=offline)
    house = root / "dist" / "wheelhouse"
    assert f"Wrote {house} (" in packaged.stdout
    assert (house / "requirements.txt").read_text() == "demo==0.1.0\n"
    run_cli("docker", "init", "--python-version", PYTHON_VERSION, cwd=root)

    host = tmp_path / "host"
    (host / "data" / "raw").mkdir(parents=True)
    (host / "sessions").mkdir()
    (host / "data" / "raw" / "readings.json").write_bytes(
        (root / "data" / "raw" / "readings.json").read_bytes()
    )
    uid, gid = (int(part) for part in USER.split(":"))
    for path in (host, *host.rglob("*")):
        os.chown(path, uid, gid)

    with built_image(docker, root) as image:
        size = int(run_docker(docker, "image", "inspect", "--format", "{{.Size}}", image).stdout)
        print(f"image size: {size / 1e6:.1f} MB")
        assert size <= MAX_IMAGE_BYTES

        # The README's command, with this uid standing for the user's own.
        run = run_docker(
            docker,
            *("run", "--rm", "--network=none", "--user", USER),
            *("-v", f"{host / 'data'}:/work/data", "-v", f"{host / 'sessions'}:/sessions"),
            image,
        )
        assert "Completed node 3 of 3: report" in run.stdout + run.stderr
        report = host / "data" / "reporting" / "report.txt"
        assert report.read_text().startswith("Station report")
        assert (report.stat().st_uid, report.stat().st_gid) == (uid, gid)

        # Another uid with no home and no KILNFLOW_HOME: sessions fall back to a temporary
        # folder, with a warning that says how to keep them.
        other = tmp_path / "other"
        (other / "raw").mkdir(parents=True)
        (other / "raw" / "readings.json").write_bytes(
            (host / "data" / "raw" / "readings.json").read_bytes()
        )
        for path in (other, *other.rglob("*")):
            os.chown(path, 31337, 31337)
        bare = run_docker(docker, "run", "--rm", "--network=none", "--user", "31337:31337",
                          "-e", "KILNFLOW_HOME=", "-v", f"{other}:/work/data", image)  # fmt: skip
        assert "Completed node 3 of 3: report" in bare.stdout + bare.stderr
        assert "recording sessions in /tmp/kilnflow-31337 instead" in bare.stdout + bare.stderr
        assert (other / "reporting" / "report.txt").is_file()

        (record,) = session_records(host / "sessions" / "sessions.db")

        # docker stop sends SIGTERM: the run stops and is recorded as interrupted.
        container = f"{image}-stopped"
        run_docker(docker, "run", "-d", "--name", container, "--network=none", "--user", USER,
                   "-v", f"{host / 'sessions'}:/sessions", image, "--pipeline", "wait")  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while len(session_records(host / "sessions" / "sessions.db")) < 2:
                assert time.monotonic() < deadline, "the stopped run never recorded its start"
                time.sleep(1)
            run_docker(docker, "stop", "--time", "60", container)
            state = run_docker(docker, "inspect", "--format", "{{.State.ExitCode}}", container)
        finally:
            subprocess.run(["docker", "rm", "--force", container], env=docker,
                           capture_output=True, check=False)  # fmt: skip
        assert state.stdout.strip() == "143"
        (stopped,) = [
            each
            for each in session_records(host / "sessions" / "sessions.db")
            if each["session_id"] != record["session_id"]
        ]
        assert stopped["outcome"] == "interrupted"

        files = dict(image_files(docker, image))

    assert record["outcome"] == "success"
    assert record["mode"] == "packaged"
    assert record["cwd"] == "/work"
    assert record["build"]["project_version"] == "0.1.0"
    listed = run_cli("session", "list", cwd=host, env={"KILNFLOW_HOME": str(host / "sessions")})
    assert record["session_id"] in listed.stdout

    assert not [name for name, content in files.items() if secret.encode() in content]
    package_files = [name for name in files if "/site-packages/demo/" in name]
    assert any(name.endswith("/demo/conf/base/catalog.yml") for name in package_files)
    assert not [name for name in package_files if "credentials" in name or "/conf/local" in name]
    wheels = [Path(name).name for name in files if name.endswith(".whl")]
    assert not [name for name in files if name.startswith("wheelhouse/")]
    assert not [name for name in wheels if name.startswith(("demo-", "kilnflow-"))]
    assert not [name for name in files if "/site-packages/pip/" in name]
    # The budget: at most 12 packages in the runtime environment.
    installed = {
        Path(name).parent.name
        for name in files
        if name.startswith("opt/venv/") and name.endswith(".dist-info/METADATA")
    }
    print(f"runtime packages in the image: {len(installed)}: {sorted(installed)}")
    assert 0 < len(installed) <= 12, sorted(installed)
