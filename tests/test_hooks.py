"""Hook plugins from installed distributions (the ``kilnflow.hooks`` entry-point group)."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from kilnflow.hooks import create_hook_manager, register_plugins
from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import SequentialRunner


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution 'kilnflow-audit' whose entry point registers a hooks object."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "kilnflow_audit_plugin.py").write_text(
        textwrap.dedent(
            """
            from kilnflow.hooks import hook_impl

            class Audit:
                seen = []

                @hook_impl
                def after_node_run(self, node):
                    self.seen.append(node.name)

            hooks = Audit()
            """
        )
    )
    dist_info = site / "kilnflow_audit-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kilnflow-audit\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[kilnflow.hooks]\naudit = kilnflow_audit_plugin:hooks\n"
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def run_with(manager) -> None:  # type: ignore[no-untyped-def]
    SequentialRunner().run(
        Pipeline([node(str, "a", "b", name="only")]), DataCatalog({"a": MemoryDataset(1)}), manager
    )


def test_installed_plugin_hooks_are_registered_and_called(installed_plugin):
    manager = create_hook_manager()
    assert register_plugins(manager) == ["kilnflow-audit"]
    run_with(manager)
    from kilnflow_audit_plugin import Audit

    assert Audit.seen == ["only"]
    assert register_plugins(manager) == []  # registering twice adds nothing


def test_disabled_plugins_are_skipped(installed_plugin):
    manager = create_hook_manager()
    assert register_plugins(manager, disabled=["kilnflow-audit"]) == []
    run_with(manager)
    from kilnflow_audit_plugin import Audit

    assert Audit.seen == []


def test_no_plugin_installed_means_importlib_metadata_is_never_imported(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from kilnflow.hooks import create_hook_manager, register_plugins\n"
        "print(register_plugins(create_hook_manager()), 'importlib.metadata' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "[] False"
