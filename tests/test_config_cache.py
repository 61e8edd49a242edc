"""Parsed YAML and pyproject.toml kept as JSON between runs: reused only for the same bytes."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from kilnflow.config import ConfigLoader


def make_conf(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "conf"


def load(conf: Path, name: str, cache: Path | None) -> dict[str, object]:
    loader = ConfigLoader(conf)
    loader.parse_cache = cache
    return loader[name]


def test_a_file_parsed_before_is_read_back_without_pyyaml(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "rate: 0.5\nmodel: {depth: 3, tags: [a]}\n"})
    cache = tmp_path / "cache"
    first = load(conf, "parameters", cache)
    assert first == {"rate": 0.5, "model": {"depth": 3, "tags": ["a"]}}
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from kilnflow.config import ConfigLoader
        loader = ConfigLoader({str(conf)!r})
        loader.parse_cache = Path({str(cache)!r})
        print(json.dumps([loader["parameters"], "yaml" in sys.modules]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == [first, False]


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "rate: 1\n"})
    cache = tmp_path / "cache"
    assert load(conf, "parameters", cache) == {"rate": 1}
    (conf / "base" / "parameters.yml").write_text("rate: 2\n", encoding="utf-8")
    assert load(conf, "parameters", cache) == {"rate": 2}


def test_values_json_cannot_keep_are_parsed_every_time(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "start: 2026-01-02\n1: one\n"})
    cache = tmp_path / "cache"
    for _ in range(2):
        assert load(conf, "parameters", cache) == {"start": datetime.date(2026, 1, 2), 1: "one"}
    assert not cache.exists()


def test_credentials_are_never_copied_into_the_cache(tmp_path: Path) -> None:
    conf = make_conf(
        tmp_path,
        {"base/credentials.yml": "db: {password: s3cret}\n", "base/catalog.yml": "a: {}\n"},
    )
    cache = tmp_path / "cache"
    assert load(conf, "credentials", cache) == {"db": {"password": "s3cret"}}
    assert load(conf, "catalog", cache) == {"a": {}}
    entries = list(cache.iterdir())
    assert len(entries) == 1
    assert "s3cret" not in entries[0].read_text("utf-8")
    assert entries[0].stat().st_mode & 0o077 == 0


def test_a_damaged_entry_is_parsed_again_and_replaced(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "rate: 3\n"})
    cache = tmp_path / "cache"
    load(conf, "parameters", cache)
    (entry,) = cache.iterdir()
    entry.write_text('{"source": "rate: 3\\n", "value": {"rate": 4', "utf-8")
    assert load(conf, "parameters", cache) == {"rate": 3}
    assert json.loads(entry.read_text("utf-8"))["value"] == {"rate": 3}


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "rate: 5\n"})
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("", "utf-8")
    for _ in range(2):
        assert load(conf, "parameters", blocked / "cache") == {"rate": 5}
    assert list(tmp_path.glob("**/*.tmp")) == []


def test_documents_holding_secrets_are_never_copied(tmp_path: Path) -> None:
    conf = make_conf(
        tmp_path,
        {
            "base/catalog.yml": "cars: {type: JSONDataset, filepath: 's3://k:ZQXJs3@bucket/c'}\n",
            "base/parameters.yml": "db: {password: ZQXJparam}\nrate: 1\n",
            "base/globals.yml": "plain: 1\n",
        },
    )
    cache = tmp_path / "cache"

    assert load(conf, "catalog", cache)["cars"]["filepath"] == "s3://k:ZQXJs3@bucket/c"
    assert load(conf, "parameters", cache)["db"] == {"password": "ZQXJparam"}
    load(conf, "globals", cache)

    copies = [path.read_text() for path in cache.iterdir()]
    assert len(copies) == 1
    assert "ZQXJ" not in copies[0]


def test_a_run_reads_its_unchanged_pyproject_without_a_toml_parser(make_project: Any) -> None:
    project = make_project("demo", example=False)
    (project / ".kilnflow").mkdir()  # as the first run's session store does
    script = textwrap.dedent(
        f"""
        import json, sys
        from kilnflow.project import bootstrap_project
        metadata = bootstrap_project({str(project)!r})
        print(json.dumps([metadata.version, "tomllib" in sys.modules or "tomli" in sys.modules]))
        """
    )

    def bootstrap() -> list[object]:
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
        )
        loaded: list[object] = json.loads(result.stdout)
        return loaded

    assert bootstrap() == ["0.1.0", True]
    assert bootstrap() == ["0.1.0", False]
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text("utf-8").replace('"0.1.0"', '"0.2.0"', 1), "utf-8")
    assert bootstrap() == ["0.2.0", True]


def test_a_build_and_a_first_bootstrap_write_nothing(make_project: Any) -> None:
    from kilnflow.project import bootstrap_project, read_metadata

    project = make_project("demo", example=False)
    assert read_metadata(project).package_name == "demo"
    assert not (project / ".kilnflow").exists()
    assert bootstrap_project(project).package_name == "demo"
    assert not (project / ".kilnflow").exists()


def test_an_entry_written_by_another_kilnflow_release_is_parsed_again(tmp_path: Path) -> None:
    conf = make_conf(tmp_path, {"base/parameters.yml": "rate: 6\n"})
    cache = tmp_path / "cache"
    load(conf, "parameters", cache)
    (entry,) = cache.iterdir()
    record = json.loads(entry.read_text("utf-8"))
    entry.write_text(json.dumps({**record, "kilnflow": "0.0.1", "value": {"rate": 7}}), "utf-8")
    assert load(conf, "parameters", cache) == {"rate": 6}
