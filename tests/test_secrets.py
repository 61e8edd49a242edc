"""Secrets never leave: each test plants secrets and greps every output for them.

Outputs are what a user, a CI log or a colleague can read: stderr with and
without ``-v``, ``kilnflow session show``, the raw bytes of the session store,
and every file of the sdist and the wheel. Every planted secret contains
``MARK``, so one search finds any of them, whole or in part.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from kilnflow._redact import REDACTED, SECRET_NAMES, Redactor, redact_url
from kilnflow.io import JSONDataset

MARK = "ZQXJ"


def secret(label: str) -> str:
    return f"{MARK}{label}"


def store_bytes(project: Path) -> bytes:
    """Every byte Kilnflow wrote under ``.kilnflow``: the store, its journals, caches."""
    files = sorted(path for path in (project / ".kilnflow").rglob("*") if path.is_file())
    return b"".join(path.read_bytes() for path in files)


def shown(project: Path) -> tuple[str, str]:
    """``kilnflow session show`` of the latest session: ``--json``, then as tables."""
    listed = run_cli("session", "list", "--limit", "1", cwd=project).stdout
    session_id = listed.split()[0]
    raw = run_cli("session", "show", session_id, "--json", cwd=project).stdout
    return raw, run_cli("session", "show", session_id, cwd=project).stdout


def assert_nothing_leaks(*outputs: str | bytes) -> None:
    for output in outputs:
        text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
        assert MARK not in text, text[max(text.find(MARK) - 200, 0) : text.find(MARK) + 200]


def set_catalog_path(project: Path, dataset_path: str) -> None:
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace("data/raw/readings.json", f'"{dataset_path}"', 1)
    )


@pytest.mark.parametrize("password", [secret("plain"), f"{secret('with')}@at@signs"])
def test_url_passwords_never_leave(make_project, password: str) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    # Port 9 (discard) is closed: the load fails at once, with the URL in every message.
    set_catalog_path(project, f"ftp://kilnuser:{password}@127.0.0.1:9/readings.json")

    quiet = run_cli("run", cwd=project, check=False)
    verbose = run_cli("run", "-v", cwd=project, check=False)
    listing = run_cli("catalog", "list", cwd=project)

    assert quiet.returncode == verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    assert "ftp://kilnuser:***@127.0.0.1:9/readings.json" in quiet.stderr
    assert_nothing_leaks(
        quiet.stderr, verbose.stderr, listing.stdout, *shown(project), store_bytes(project)
    )


USER_LOGGING = """
version: 1
formatters:
  mine:
    format: "MINE|%(levelname)s|%(name)s|%(message)s"
handlers:
  file:
    class: logging.FileHandler
    formatter: mine
    filename: {log_file}
  console:
    class: logging.StreamHandler
loggers:
  demo:
    handlers: [file]
root:
  level: INFO
  handlers: [file, console]
"""


def test_handlers_of_the_projects_logging_file_hide_url_passwords(  # type: ignore[no-untyped-def]
    make_project, tmp_path: Path
) -> None:
    """The user's own handlers and formatters keep their layout but never write a password."""
    project = make_project()
    url = f"ftp://kilnuser:{secret('file')}@127.0.0.1:9/readings.json"
    set_catalog_path(project, url)
    hook = project / "src" / "demo" / "hooks.py"
    hook.write_text(
        "import logging\n\nfrom kilnflow.hooks import hook_impl\n\n\n"
        "class Announce:\n    @hook_impl\n    def before_pipeline_run(self, catalog):\n"
        f"        url = {url!r}\n"
        "        logger = logging.getLogger('demo.announce')\n"
        "        logger.info('reading %s', url)\n"
        "        try:\n            raise OSError(f'cannot open {url}')\n"
        "        except OSError:\n            logger.exception('retrying')\n"
    )
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "HOOKS = ()", "from demo.hooks import Announce\n\nHOOKS = (Announce(),)"
        )
    )
    log_file = tmp_path / "run.log"
    (project / "conf" / "logging.yml").write_text(USER_LOGGING.format(log_file=log_file))

    result = run_cli("run", "-v", cwd=project, check=False)

    written = log_file.read_text()
    assert result.returncode == 1
    assert "MINE|INFO|demo.announce|reading ftp://kilnuser:***@127.0.0.1:9/readings.json" in (
        written.splitlines()
    )
    assert "OSError: cannot open ftp://kilnuser:***@127.0.0.1:9/readings.json" in written
    assert "ftp://kilnuser:***@127.0.0.1:9/readings.json" in result.stderr
    assert_nothing_leaks(written, result.stderr)


@pytest.mark.parametrize(
    "url",
    [
        f"s3://AKIAKEY:{secret('s3')}@bucket/cars.csv",
        f"s3://AKIAKEY:{secret('slash')}/x+y@bucket/data@v2/cars.csv",
        f"ftp://u:{secret('p')}@@host/f.json",
        f"ftp://me@example.com:{secret('mail')}@host:21/f.json",
        f"https://host/f.json?X-Amz-Signature={secret('sig')}&token={secret('t')}&a=1",
    ],
)
def test_datasets_never_describe_url_passwords(url: str) -> None:
    dataset = JSONDataset(filepath=url)

    assert_nothing_leaks(repr(dataset), str(dataset.describe()), redact_url(f"see {url}."))
    assert REDACTED in repr(dataset)


SECRET_ENV = {
    "KILNFLOW_DB_PASS": secret("pass"),
    "KILNFLOW_GPG_PASSPHRASE_FILE": secret("phrase"),
    "KILNFLOW_MYSQL_PWD": secret("pwd"),
    "KILNFLOW_WAREHOUSE_DSN": f"postgresql://me:{secret('dsn')}@db/x",
    "KILNFLOW_API_KEY": secret("key"),
    "KILNFLOW_GCP_CREDENTIALS": secret("credentials"),
    "KILNFLOW_BASIC_AUTH_HEADER": secret("auth"),
    "KILNFLOW_HASH_SALT": secret("salt"),
    "KILNFLOW_STORE_URL": f"postgresql://me:{secret('store')}@db/x",
}


def test_secret_names_nested_params_and_resume_hint_never_leave(make_project) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    settings = project / "src" / "demo" / "settings.py"
    settings.write_text(settings.read_text() + 'SECRET_NAMES = ("*_SALT",)\n')
    nodes = project / "src" / "demo" / "pipelines" / "readings" / "nodes.py"
    nodes.write_text(
        nodes.read_text().replace(
            '    places = options["decimals"]',
            '    raise RuntimeError(f"cannot render with {options}")',
        )
    )
    params = [
        "--params",
        f"min_valid=11,db_pass={secret('p1')},pw={secret('p2')},hash_salt={secret('p3')}",
        "--params",
        f"db={{password: {secret('p4')}, user: me}},report.token={secret('p5')}",
        f"--params=conn=postgresql://me:{secret('p6')}@localhost/db",
    ]

    result = run_cli("run", "-v", *params, cwd=project, env=SECRET_ENV, check=False)

    assert result.returncode == 1
    assert "cannot render with" in result.stderr
    (hint,) = [line for line in result.stderr.splitlines() if line.startswith("To resume:")]
    assert hint.endswith(" --from-nodes report (give again the values hidden as ***)")
    assert "min_valid=11,db_pass=***,pw=***,hash_salt=***" in shlex.split(hint)
    record, tables = shown(project)
    assert '"KILNFLOW_DB_PASS": "***"' in record
    assert "db={password: '***', user: me}" in record
    session_id = json.loads(record)["session_id"]
    rerun = run_cli("session", "rerun", session_id, cwd=project, check=False)
    assert rerun.returncode == 1
    assert f"Session {session_id} was given secret values, recorded as ***" in rerun.stderr
    assert_nothing_leaks(result.stderr, record, tables, store_bytes(project), rerun.stderr)


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASS",
        "GPG_PASSPHRASE",
        "PASSPHRASE_FILE",
        "MYSQL_PWD",
        "DATABASE_DSN",
        "API_KEY",
        "GCP_CREDENTIALS_JSON",
        "BASIC_AUTH",
        "AUTH_HEADER",
        "db_pass",
        "pw",
        "db-pw",
        "client.secret",
        "access_token",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert Redactor().is_secret_name(name)


@pytest.mark.parametrize("name", ["min_valid", "report", "KILNFLOW_HOME", "VIRTUAL_ENV", "power"])
def test_ordinary_names(name: str) -> None:
    assert not Redactor().is_secret_name(name)


def test_settings_add_secret_names_and_never_remove_any() -> None:
    rule = Redactor(["*_SALT", "account"])

    assert rule.is_secret_name("hash_salt")
    assert rule.is_secret_name("Account")
    assert all(rule.is_secret_name(pattern.replace("*", "X")) for pattern in SECRET_NAMES)
    assert not Redactor().is_secret_name("hash_salt")


def test_nested_values_in_pairs_and_arguments_are_hidden() -> None:
    rule = Redactor()
    argv = ["run", "--params", f"db={{password: {secret('a')}, hosts: [a, b]}}", "--params=n=1"]

    assert rule.arguments(argv) == [
        "run",
        "--params",
        "db={hosts: [a, b], password: '***'}",
        "--params=n=1",
    ]
    assert rule.pairs("db={user: me},n=[1, 2]") == "db={user: me},n=[1, 2]"
    assert secret("a") in rule.argument_secrets(argv)


def test_the_settings_module_declares_secret_names(make_project) -> None:  # type: ignore[no-untyped-def]
    from kilnflow.project import bootstrap_project, settings

    project = make_project()
    settings_file = project / "src" / "demo" / "settings.py"
    settings_file.write_text(settings_file.read_text() + "SECRET_NAMES = '*_SALT'\n")
    bootstrap_project(project)

    with pytest.raises(Exception, match=r"setting SECRET_NAMES must be a tuple of name patterns"):
        settings.SECRET_NAMES  # noqa: B018


# --- What ships: no artifact carries conf/local, credentials or .env.

PLANTED = {
    "conf/local/credentials.yml": f"db:\n  password: {secret('local')}\n",
    "conf/local/parameters.yml": f"token: {secret('local-params')}\n",
    "conf/base/credentials.yml": f"db:\n  password: {secret('base')}\n",
    "conf/base/credentials/s3.yml": f"s3:\n  secret: {secret('nested')}\n",
    ".env": f"DB_PASSWORD={secret('dotenv')}\n",
    ".env.prod": f"DB_PASSWORD={secret('dotenv-prod')}\n",
    "credentials.json": f'{{"key": "{secret("root")}"}}\n',
}


def plant(project: Path) -> None:
    for name, text in PLANTED.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def build(project: Path, outdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m build``, the README's command, offline with this environment's backend."""
    return subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def archive_contents(path: Path) -> dict[str, bytes]:
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            return {name: wheel.read(name) for name in wheel.namelist()}
    with tarfile.open(path) as sdist:
        return {
            member.name: sdist.extractfile(member).read()  # type: ignore[union-attr]
            for member in sdist.getmembers()
            if member.isfile()
        }


@pytest.mark.slow
def test_sdist_and_wheel_ship_no_secrets(make_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    plant(project)

    result = build(project, tmp_path / "dist")

    assert result.returncode == 0, result.stdout + result.stderr
    artifacts = sorted((tmp_path / "dist").iterdir())
    assert sorted(path.suffix for path in artifacts) == [".gz", ".whl"]
    for artifact in artifacts:
        contents = archive_contents(artifact)
        assert any(name.endswith("conf/base/catalog.yml") for name in contents), artifact
        names = "\n".join(contents)
        for planted in PLANTED:
            assert f"/{planted}" not in names
        assert_nothing_leaks(names, *contents.values())


@pytest.mark.slow
def test_build_hook_refuses_an_sdist_that_would_ship_secrets(make_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    plant(project)
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("[tool.hatch.build]\n")
    pyproject.write_text(text[:start] + text[text.index("[tool.hatch.build.targets.wheel]") :])
    gitignore = project / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace(".env\n.env.*\n", ""))
    # The project of an older template: neither file keeps secrets out any more.

    result = build(project, tmp_path / "dist", "--sdist")

    assert result.returncode != 0
    assert (
        "Cannot build the sdist: it would ship .env, .env.prod, credentials.json ..., which "
        "hold secrets"
    ) in result.stdout + result.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_conf_link_leaving_the_project_is_refused_everywhere(make_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = make_project()
    outside = tmp_path / "elsewhere.yml"
    outside.write_text(f"stolen: {secret('outside')}\n")
    link = project / "conf" / "base" / "parameters_extra.yml"
    link.symlink_to(outside)
    message = f"{link} is a link to {outside}, outside the configuration folder"

    run = run_cli("run", cwd=project, check=False)
    package = run_cli("package", "--output-dir", str(tmp_path / "dist"), cwd=project, check=False)

    assert run.returncode == package.returncode == 1
    assert message in run.stderr
    assert message in package.stderr
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_wheel_ships_exactly_the_files_project_mode_reads(make_project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kilnflow.config import conf_files
    from kilnflow.packaging import package_project

    project = make_project()
    shared = project / "conf" / "shared"
    shared.mkdir()
    (shared / "catalog_extra.yml").write_text("extra: {type: MemoryDataset}\n")
    (project / "conf" / "base" / "shared").symlink_to(shared)
    (project / "conf" / "base" / ".hidden.yml").write_text("hidden: 1\n")

    wheel = package_project(project, tmp_path / "dist")

    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            name.removeprefix("demo/conf/")
            for name in archive.namelist()
            if name.startswith("demo/conf/")
        )
    read = sorted(
        path
        for path in conf_files(project / "conf")
        if not path.startswith("local/") and "credentials" not in path
    )
    assert shipped == read
    assert "base/shared/catalog_extra.yml" in shipped
    assert not any(".hidden" in name for name in shipped)
    assert os.path.islink(project / "conf" / "base" / "shared")


def test_kilnflow_log_handlers_hide_url_passwords() -> None:
    import logging

    from kilnflow._redact import RedactingFormatter

    url = f"s3://key:{secret('log')}@bucket/x.csv"
    try:
        raise OSError(f"cannot open {url}")
    except OSError:
        record = logging.LogRecord(
            "demo", logging.ERROR, __file__, 1, "loading %s", (url,), sys.exc_info()
        )

    text = RedactingFormatter("%(name)s: %(message)s").format(record)

    assert text.startswith("demo: loading s3://key:***@bucket/x.csv")
    assert "OSError: cannot open s3://key:***@bucket/x.csv" in text
    assert_nothing_leaks(text)
