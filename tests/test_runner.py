"""The shared scheduling loop, through SequentialRunner and the public API."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from kilnflow.errors import MissingInputsError, NodeFailedError, RunnerError
from kilnflow.hooks import create_hook_manager, hook_impl, register_hooks
from kilnflow.io import DataCatalog, JSONDataset, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import SequentialRunner


def double(x: int) -> int:
    return 2 * x


def add(x: int, y: int) -> int:
    return x + y


def fail(_: Any) -> int:
    raise ZeroDivisionError("no dividing today")


class ReleaseSpy(MemoryDataset):
    """A memory dataset that counts releases."""

    def __init__(self) -> None:
        super().__init__()
        self.released = 0

    def release(self) -> None:
        self.released += 1
        super().release()


def test_runs_in_topological_order_and_returns_free_memory_outputs():
    pipe = Pipeline(
        [
            node(add, ["b", "c"], "d", name="join"),
            node(double, "a", "b", name="first"),
            node(double, "a", "c", name="second"),
        ]
    )
    catalog = DataCatalog({"a": MemoryDataset(3)})
    runner = SequentialRunner()
    assert runner.run(pipe, catalog) == {"d": 12}
    assert list(runner.node_durations) == ["first", "second", "join"]
    assert all(seconds >= 0 for seconds in runner.node_durations.values())


def test_persisted_free_outputs_are_saved_not_returned(tmp_path):
    pipe = Pipeline([node(double, "a", "b", name="first")])
    catalog = DataCatalog(
        {"a": MemoryDataset(3), "b": JSONDataset(filepath=str(tmp_path / "b.json"))}
    )
    assert SequentialRunner().run(pipe, catalog) == {}
    assert (tmp_path / "b.json").read_text().strip() == "6"


def test_missing_free_inputs_are_listed_before_anything_runs():
    ran = []
    pipe = Pipeline(
        [node(lambda x, y: ran.append(1), ["x", "y"], None, name="n"), node(double, "z", "x")]
    )
    with pytest.raises(MissingInputsError) as caught:
        SequentialRunner().run(pipe, DataCatalog())
    assert "'y', 'z'" in str(caught.value)
    assert "declare them in the catalog" in str(caught.value)
    assert ran == []


def test_intermediate_memory_datasets_are_released_after_last_reader():
    spy = ReleaseSpy()
    pipe = Pipeline(
        [
            node(double, "a", "b", name="make_b"),
            node(double, "b", "c", name="use_b_once"),
            node(add, ["b", "c"], "d", name="use_b_twice"),
        ]
    )
    catalog = DataCatalog({"a": MemoryDataset(1), "b": spy})
    SequentialRunner().run(pipe, catalog)
    assert spy.released == 1
    assert not spy.exists()


def test_failure_stops_chains_names_node_and_resume_nodes(tmp_path):
    out = tmp_path / "out.json"
    pipe = Pipeline(
        [
            node(double, "a", "b", name="ok"),
            node(fail, "b", "c", name="boom"),
            node(double, "c", "d", name="after"),
        ]
    )
    catalog = DataCatalog({"a": MemoryDataset(1), "d": JSONDataset(filepath=str(out))})
    with pytest.raises(NodeFailedError) as caught:
        SequentialRunner().run(pipe, catalog)
    error = caught.value
    assert error.node_name == "boom"
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert "Node 'boom' failed with ZeroDivisionError: no dividing today" in str(error)
    # 'b' lived only in memory, so resuming must start at its producer.
    assert error.resume_nodes == ("ok",)
    assert '--from-nodes "ok"' in str(error)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_resume_starts_at_failed_node_when_its_inputs_are_persisted(tmp_path):
    pipe = Pipeline([node(double, "a", "b", name="ok"), node(fail, "b", "c", name="boom")])
    catalog = DataCatalog(
        {"a": MemoryDataset(1), "b": JSONDataset(filepath=str(tmp_path / "b.json"))}
    )
    with pytest.raises(NodeFailedError) as caught:
        SequentialRunner().run(pipe, catalog)
    assert caught.value.resume_nodes == ("boom",)


class RecordingHooks:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hook_impl
    def before_node_run(self, node: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(("before_node_run", node.name))
        return {"a": 10} if "a" in inputs else None

    @hook_impl
    def after_node_run(self, node: Any, outputs: dict[str, Any]) -> None:
        self.calls.append(("after_node_run", f"{node.name}={outputs}"))

    @hook_impl
    def on_node_error(self, error: BaseException, node: Any) -> None:
        self.calls.append(("on_node_error", f"{node.name}:{type(error).__name__}"))

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        self.calls.append(("before_dataset_loaded", dataset_name))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self.calls.append(("after_dataset_saved", f"{dataset_name}={data}"))


def test_hooks_see_every_load_run_and_save_and_may_replace_inputs():
    hooks = RecordingHooks()
    manager = create_hook_manager()
    register_hooks(manager, [hooks])
    pipe = Pipeline([node(double, "a", "b", name="first"), node(double, "b", "c", name="second")])
    result = SequentialRunner().run(pipe, DataCatalog({"a": MemoryDataset(1)}), manager, "sid")
    assert result == {"c": 40}
    assert hooks.calls == [
        ("before_dataset_loaded", "a"),
        ("before_node_run", "first"),
        ("after_node_run", "first={'b': 20}"),
        ("after_dataset_saved", "b=20"),
        ("before_dataset_loaded", "b"),
        ("before_node_run", "second"),
        ("after_node_run", "second={'c': 40}"),
        ("after_dataset_saved", "c=40"),
    ]


def test_on_node_error_hook_is_called():
    hooks = RecordingHooks()
    manager = create_hook_manager()
    register_hooks(manager, [hooks])
    with pytest.raises(NodeFailedError):
        SequentialRunner().run(
            Pipeline([node(fail, "x", "y", name="boom")]),
            DataCatalog({"x": MemoryDataset(1)}),
            manager,
        )
    assert ("on_node_error", "boom:ZeroDivisionError") in hooks.calls


def test_hook_returning_unknown_inputs_is_rejected():
    class BadHooks:
        @hook_impl
        def before_node_run(self) -> dict[str, Any]:
            return {"nope": 1}

    manager = create_hook_manager()
    register_hooks(manager, [BadHooks()])
    with pytest.raises(NodeFailedError) as caught:
        SequentialRunner().run(
            Pipeline([node(double, "a", "b", name="n")]),
            DataCatalog({"a": MemoryDataset(1)}),
            manager,
        )
    assert isinstance(caught.value.__cause__, RunnerError)
    assert "among the node's inputs ['a']" in str(caught.value)


def test_hook_classes_and_misspelt_hooks_are_rejected():
    class Misspelt:
        @hook_impl
        def before_node_runs(self) -> None:
            """Misspelt on purpose."""

    manager = create_hook_manager()
    with pytest.raises(Exception, match="before_node_runs"):
        register_hooks(manager, [Misspelt()])
    with pytest.raises(Exception, match="takes instances"):
        register_hooks(manager, [RecordingHooks])


def test_progress_is_logged_per_node_when_not_a_terminal(caplog):
    pipe = Pipeline([node(double, "a", "b", name="first"), node(double, "b", "c", name="second")])
    with caplog.at_level(logging.INFO, logger="kilnflow.runner"):
        SequentialRunner().run(pipe, DataCatalog({"a": MemoryDataset(1)}))
    assert [r.getMessage() for r in caplog.records] == [
        "Completed node 1 of 2: first",
        "Completed node 2 of 2: second",
    ]


def test_empty_pipeline_runs_nothing():
    assert SequentialRunner().run(Pipeline([]), DataCatalog()) == {}


def test_progress_shown_by_the_callers_display_and_not_logged(caplog):
    from contextlib import contextmanager

    shown: list[tuple[int, str]] = []

    @contextmanager
    def display(total: int) -> Any:
        yield lambda name: shown.append((total, name))

    pipe = Pipeline([node(double, "a", "b", name="first"), node(double, "b", "c", name="second")])
    with caplog.at_level(logging.INFO, logger="kilnflow.runner"):
        SequentialRunner().run(pipe, DataCatalog({"a": MemoryDataset(1)}), progress=display)
    assert shown == [(2, "first"), (2, "second")]
    assert not [r for r in caplog.records if "Completed node" in r.getMessage()]


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_kilnflow_run_shows_a_progress_bar_on_a_terminal_and_no_log_lines(make_project):
    from conftest import SCRIPTS, read_terminal

    root = make_project()
    returncode, text = read_terminal([str(SCRIPTS / "kilnflow"), "run"], root)
    assert returncode == 0, text
    assert "Running nodes" in text
    assert "3/3" in text
    assert "Completed node" not in text
