"""Datasets on local disk work without fsspec: the same files, versions and atomic saves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path


def run_python(code: str, cwd: Path) -> list[object]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_local_files_and_their_versions_need_no_fsspec(tmp_path: Path) -> None:
    code = """
        import json, sys
        from kilnflow.io import JSONDataset, TextDataset
        plain = JSONDataset("data/plain.json")
        plain.save({"a": 1})
        first = JSONDataset("data/v.json", versioned=True, save_version="2026-01-01")
        first.save([1])
        second = JSONDataset("data/v.json", versioned=True, save_version="2026-01-02")
        second.save([2])
        latest = JSONDataset("data/v.json", versioned=True)
        older = JSONDataset("data/v.json", versioned=True, load_version="2026-01-01")
        text = TextDataset("data/t.txt")
        print(json.dumps([
            plain.load(), latest.load(), older.load(), latest.exists(),
            text.exists(), "fsspec" in sys.modules,
        ]))
    """
    assert run_python(code, tmp_path) == [{"a": 1}, [2], [1], True, False, False]
    assert json.loads((tmp_path / "data/v.json/2026-01-02/v.json").read_text()) == [2]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["plain.json", "v.json"]


def test_urls_and_storage_options_still_go_through_fsspec(tmp_path: Path) -> None:
    code = """
        import json, sys
        from kilnflow.io import JSONDataset
        remote = JSONDataset("memory://bucket/r.json")
        remote.save({"r": 1})
        local = JSONDataset("data/o.json", fs_args={"auto_mkdir": True})
        local.save({"o": 1})
        print(json.dumps([remote.load(), local.load(), "fsspec" in sys.modules]))
    """
    assert run_python(code, tmp_path) == [{"r": 1}, {"o": 1}, True]
