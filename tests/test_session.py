"""Session lifecycle, context and stores through the public API."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from conftest import read_session
from kilnflow.errors import NodeFailedError, PipelineError, SessionError
from kilnflow.project import bootstrap_project
from kilnflow.session import (
    MemoryStore,
    Session,
    SQLiteStore,
    new_session_id,
    redact,
    redact_arguments,
)

REPORT = Path("data") / "reporting" / "report.txt"


def test_documented_api_runs_the_example_and_records_it(make_project, monkeypatch):
    root = make_project()
    monkeypatch.chdir(root)

    metadata = bootstrap_project(Path.cwd())
    with Session.create(env="local", extra_params={"min_valid": 11}) as session:
        outputs = session.run()

    assert metadata.package_name == "demo"
    assert outputs == {}
    report = (root / REPORT).read_text()
    assert "north" in report
    assert "east" not in report  # dropped by the runtime parameter
    record = read_session(root / ".kilnflow", session.session_id)
    assert record["outcome"] == "success"
    assert record["extra_params"] == {"min_valid": 11}
    assert record["env"] == "local"
    assert record["run"]["pipeline_name"] == "__default__"
    assert record["run"]["runner"] == "SequentialRunner"
    assert set(record["node_durations"]) == {"clean", "summarise", "report"}
    assert record["versions"]["kilnflow"]
    assert record["versions"]["demo"] == "0.1.0"  # from pyproject.toml
    assert record["mode"] == "project"
    assert record["started_at"] <= record["ended_at"]


def test_context_exposes_params_with_runtime_overrides_and_catalog(make_project):
    bootstrap_project(make_project())
    with Session.create(extra_params={"report.decimals": 4}, save_on_close=False) as session:
        context = session.load_context()
        assert context.params["report"] == {"title": "Station report", "decimals": 4}
        assert context.params["min_valid"] == 0.0
        assert session.load_context() is context
        catalog = context.catalog
        assert catalog.load("params:report.decimals") == 4
        assert len(catalog.load("readings")) == 9
        assert isinstance(session.store, MemoryStore)


def test_context_catalog_is_built_once_and_get_catalog_builds_anew(make_project):
    from kilnflow.hooks import hook_impl

    class CountCatalogs:
        built: list[object] = []

        @hook_impl
        def after_catalog_created(self, catalog):
            self.built.append(catalog)

    counter = CountCatalogs()
    bootstrap_project(make_project())
    with Session.create(save_on_close=False) as session:
        session.hook_manager.register(counter)
        context = session.load_context()
        first = context.catalog
        assert context.catalog is first
        assert counter.built == [first]
        fresh = context.get_catalog()
        assert fresh is not first
        assert counter.built == [first, fresh]
        assert context.catalog is first


def test_relative_paths_resolve_against_the_project_not_the_cwd(
    make_project, tmp_path, monkeypatch
):
    root = make_project()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    bootstrap_project(root)
    with Session.create(save_on_close=False) as session:
        session.run()
    assert (root / REPORT).is_file()
    assert not (elsewhere / "data").exists()


def test_env_falls_back_to_kilnflow_env(make_project, monkeypatch):
    root = make_project()
    (root / "conf" / "prod").mkdir()
    (root / "conf" / "prod" / "parameters.yml").write_text("min_valid: 100.0\n")
    monkeypatch.setenv("KILNFLOW_ENV", "prod")
    bootstrap_project(root)
    with Session.create(save_on_close=False) as session:
        assert session.env == "prod"
        assert session.load_context().params["min_valid"] == 100.0


def test_one_run_per_session(make_project):
    bootstrap_project(make_project())
    with Session.create(save_on_close=False) as session:
        session.run()
        with pytest.raises(SessionError, match="a session runs once"):
            session.run()


def test_failed_run_may_be_retried_and_failure_is_recorded(make_project):
    root = make_project()
    nodes = root / "src" / "demo" / "pipelines" / "readings" / "nodes.py"
    original = nodes.read_text()
    nodes.write_text(original.replace('"""Count, mean', 'raise KeyError("station")\n    """'))
    bootstrap_project(root)
    session = Session.create()
    with pytest.raises(NodeFailedError) as caught, session:
        session.run()
    assert caught.value.node_name == "summarise"
    assert not (root / "data" / "processed").exists()
    record = read_session(root / ".kilnflow", session.session_id)
    assert record["outcome"] == "failed"
    assert record["exception"]["type"] == "kilnflow.errors.NodeFailedError"
    assert "summarise" in record["exception"]["message"]
    assert "KeyError" in record["exception"]["traceback"]
    assert "clean" in record["node_durations"]


def test_retry_after_failure_in_same_session(make_project):
    root = make_project()
    bootstrap_project(root)
    session = Session.create(save_on_close=False)
    with pytest.raises(PipelineError):
        session.run(tags=["no-such-tag"])
    session.run()
    session.close()
    session.close()
    with pytest.raises(SessionError, match="is closed"):
        session.run()


def test_unknown_pipeline_suggests_close_names(make_project):
    bootstrap_project(make_project())
    with (
        Session.create(save_on_close=False) as session,
        pytest.raises(
            PipelineError,
            match=r"Did you mean 'readings'\?.*Registered pipelines: __default__, readings",
        ),
    ):
        session.run("reading")


def test_filters_reach_the_pipeline(make_project):
    root = make_project()
    bootstrap_project(root)
    with Session.create(save_on_close=False) as session:
        outputs = session.run(to_nodes=["clean"])
    assert [row["station"] for row in outputs["clean_readings"]].count("east") == 2
    assert not (root / REPORT).exists()


def test_store_records_environment_with_secrets_redacted(make_project, monkeypatch):
    root = make_project()
    monkeypatch.setenv("KILNFLOW_API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("KILNFLOW_DB_URL", "postgresql://me:hunter2@db/x")
    monkeypatch.setenv("KILNFLOW_TEAM", "analytics")
    bootstrap_project(root)
    with Session.create() as session:
        session.run()
    environment = session.store["environment"]
    assert environment["KILNFLOW_API_TOKEN"] == "***"
    assert environment["KILNFLOW_DB_URL"] == "postgresql://me:***@db/x"
    assert environment["KILNFLOW_TEAM"] == "analytics"
    raw = (root / ".kilnflow" / "sessions.db").read_bytes()
    assert b"s3cr3t-value" not in raw
    assert b"hunter2" not in raw


def test_record_is_written_at_start_so_a_crash_leaves_a_running_row(make_project):
    root = make_project()
    bootstrap_project(root)
    session = Session.create()
    with closing(sqlite3.connect(root / ".kilnflow" / "sessions.db")) as connection:
        rows = connection.execute("SELECT session_id, outcome FROM sessions").fetchall()
    assert rows == [(session.session_id, "running")]
    session.close()
    assert read_session(root / ".kilnflow", session.session_id)["outcome"] == "not run"


def test_git_state_is_recorded_when_the_project_is_a_repository(make_project):
    import subprocess

    root = make_project()
    git = ["git", "-c", "user.email=a@b.c", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)
    (root / "README.md").write_text("changed\n")
    bootstrap_project(root)
    with Session.create(save_on_close=False) as session:
        assert session.store["git"] is None  # git runs alongside the session
    git_info = session.store["git"]
    assert git_info["branch"] == "main"
    assert len(git_info["commit"]) == 40
    assert git_info["dirty"] is True


def test_project_hooks_from_settings_are_called(make_project):
    root = make_project()
    settings = root / "src" / "demo" / "settings.py"
    settings.write_text(
        textwrap.dedent(
            """
            from kilnflow.hooks import hook_impl

            class Calls:
                seen = []

                @hook_impl
                def after_context_created(self, context):
                    self.seen.append("context")

                @hook_impl
                def after_catalog_created(self, catalog):
                    self.seen.append("catalog")

                @hook_impl
                def before_pipeline_run(self, run_params):
                    self.seen.append("before:" + run_params["pipeline_name"])

                @hook_impl
                def after_pipeline_run(self):
                    self.seen.append("after")

            HOOKS = (Calls(),)
            """
        )
    )
    bootstrap_project(root)
    with Session.create(save_on_close=False) as session:
        session.run()
    from demo.settings import Calls

    assert Calls.seen == ["context", "catalog", "before:__default__", "after"]


def test_session_ids_sort_by_time_are_unique_and_file_safe():
    ids = [new_session_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(set(i) <= set("0123456789abcdefTZ.-") for i in ids)


def test_concurrent_processes_get_distinct_ids():
    import subprocess
    import sys

    code = "from kilnflow.session import new_session_id\nprint(new_session_id())"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    ids = [proc.communicate()[0].strip() for proc in procs]
    assert len(set(ids)) == 4


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GITHUB_TOKEN", "abc", "***"),
        ("db_password", "abc", "***"),
        ("AWS_SECRET_ACCESS_KEY", "abc", "***"),
        ("KILNFLOW_CREDENTIALS_FILE", "/x", "***"),
        ("KILNFLOW_ENV", "prod", "prod"),
        ("KILNFLOW_URL", "s3://user:pw@bucket/x", "s3://user:***@bucket/x"),
    ],
)
def test_redaction_rules(name, value, expected):
    assert redact(name, value) == expected


def test_store_lookup_by_prefix_and_listing(tmp_path):
    for session_id in ("20260101T000000.000001Z-aaaa", "20260101T000000.000002Z-bbbb"):
        with SQLiteStore(tmp_path, session_id) as store:
            store.update(session_id=session_id, outcome="success")
            store.save()
    with SQLiteStore(tmp_path, "") as reader:
        assert [r["session_id"][-4:] for r in reader.sessions(5)] == ["bbbb", "aaaa"]
        assert reader.find("20260101T000000.000001")["session_id"].endswith("aaaa")
        with pytest.raises(SessionError, match="matches several sessions"):
            reader.find("2026")
        with pytest.raises(SessionError, match="No session 'zzz'"):
            reader.find("zzz")


def test_secret_runtime_params_reach_the_run_but_not_the_store(make_project):
    root = make_project()
    bootstrap_project(root)
    params = {"db_password": "hunter2", "api": {"token": "tok-123", "url": "https://u:pw9@h/x"}}
    with Session.create(extra_params={**params, "min_valid": 1}) as session:
        assert session.load_context().params["db_password"] == "hunter2"
        session.run()
    recorded = session.store["extra_params"]
    assert recorded == {
        "db_password": "***",
        "api": {"token": "***", "url": "https://u:***@h/x"},
        "min_valid": 1,
    }
    assert session.store["run"]["extra_params"] == recorded
    raw = (root / ".kilnflow" / "sessions.db").read_bytes()
    for secret in (b"hunter2", b"tok-123", b"pw9"):
        assert secret not in raw


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["run", "--params", "n=3,db_password=x"], ["run", "--params", "n=3,db_password=***"]),
        (["run", "--params=api_key=abc,n=[1,2]"], ["run", "--params=api_key=***,n=[1,2]"]),
        (["--runner-args", "address=tcp://a:b@h:1"], ["--runner-args", "address=tcp://a:***@h:1"]),
        (["--conf-source", "s3://me:pw@bucket/conf"], ["--conf-source", "s3://me:***@bucket/conf"]),
        (["-p", "etl", "--env", "prod"], ["-p", "etl", "--env", "prod"]),
        (["--any", "x=1,api_key=k"], ["--any", "x=1,api_key=***"]),
        (["db=postgresql://u:pw@h/x?sslmode=a"], ["db=postgresql://u:***@h/x?sslmode=a"]),
    ],
)
def test_command_lines_are_recorded_without_secrets(arguments, expected):
    assert redact_arguments(arguments) == expected


def test_a_session_records_the_command_line_its_caller_hands_it(make_project):
    bootstrap_project(make_project())
    given = ["my-tool", "--params", "n=3,db_password=***"]
    with Session.create(argv=given) as session:
        pass
    assert session.store["argv"] == given
    with Session.create() as default:
        pass
    assert default.store["argv"] == redact_arguments(sys.argv)


def test_a_session_given_a_project_path_reads_that_projects_conf(make_project, monkeypatch):
    """After configure_project(pkg), Session.create(project_path=X) is project mode: X/conf."""
    from kilnflow.project import configure_project

    root = make_project()
    packaged = root / "src" / "demo" / "conf" / "base"
    packaged.mkdir(parents=True)
    (packaged / "parameters.yml").write_text("min_valid: 99\nsource: package\n")
    (root / "conf" / "base" / "parameters.yml").write_text(
        "min_valid: 11\nsource: project\nreport: {title: T, decimals: 1}\n"
    )
    monkeypatch.setattr(sys, "path", [str(root / "src"), *sys.path])
    configure_project("demo")

    with Session.create(project_path=root, save_on_close=False) as session:
        params = session.load_context().params
        session.run()

    assert params["source"] == "project"
    assert session.store["mode"] == "project"
    assert "east" not in (root / REPORT).read_text()


def test_several_pipelines_run_as_one(make_project):
    bootstrap_project(make_project())

    with Session.create(save_on_close=False) as session:
        session.run(pipeline_names=["readings", "__default__"])

    assert session.store["run"]["pipeline_name"] == "readings,__default__"
    assert session.store["run"]["pipeline_names"] == ["readings", "__default__"]
    assert set(session.store["node_durations"]) == {"clean", "summarise", "report"}


def test_pipeline_name_and_pipeline_names_together_are_refused(make_project):
    bootstrap_project(make_project())

    session = Session.create(save_on_close=False)
    with pytest.raises(SessionError, match=r"takes pipeline_name or pipeline_names, not both"):
        session.run(pipeline_name="readings", pipeline_names=["readings"])
    session.close()
