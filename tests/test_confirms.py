"""``node(..., confirms=...)``: a checkpoint moves only once its node succeeded.

A project reads a real folder of partitions through an IncrementalDataset
and is run with ``kilnflow run`` under every runner: a run that succeeds
moves the checkpoint, a failed, interrupted or refused run leaves it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    SCRIPTS,
    error_line,
    fresh_venv,
    run_cli,
    run_installed,
    session_ids,
    show,
)
from kilnflow.errors import NodeFailedError, PipelineError, RunnerError
from kilnflow.io import DataCatalog, TextDataset
from kilnflow.io.partitions import IncrementalDataset
from kilnflow.pipeline import Pipeline, node, pipeline
from kilnflow.runner import ParallelRunner, SequentialRunner, ThreadRunner

INGEST = """
import os
import time
from pathlib import Path

from kilnflow.pipeline import Pipeline, node


def check(fail):
    if fail == "check":
        raise RuntimeError("check failed on purpose")
    return True


def collect(parts, ok, fail):
    if fail == "collect":
        raise RuntimeError("collect failed on purpose")
    if fail == "hang":
        Path(os.environ["KILNFLOW_TEST_MARKERS"], "collect").touch()
        time.sleep(600)
    return ",".join(f"{pid}={text}" for pid, text in sorted(parts.items()))


def publish(text, fail):
    if fail == "publish":
        raise RuntimeError("publish failed on purpose")
    return text


def create_pipeline(**kwargs):
    confirms = os.environ.get("KILNFLOW_TEST_CONFIRMS", "raw")
    if os.environ.get("KILNFLOW_TEST_SHAPE") == "chain":
        # The last node confirms what the first one read.
        return Pipeline(
            [
                node(collect, ["raw", "params:ok", "params:fail"], "ids", name="read"),
                node(publish, ["ids", "params:fail"], "seen", name="publish", confirms="raw"),
            ]
        )
    return Pipeline(
        [
            node(check, "params:fail", "ok", name="check"),
            node(collect, ["raw", "ok", "params:fail"], "seen", name="collect", confirms=confirms),
        ]
    )
"""

CATALOG = """
raw:
  type: partitions.IncrementalDataset
  path: data/raw/parts
  dataset: TextDataset
seen:
  type: TextDataset
  filepath: data/out/seen.txt
"""

# The checkpoint sits under a file, so saving it fails after the node succeeded.
BROKEN_CHECKPOINT = """
raw:
  type: partitions.IncrementalDataset
  path: data/raw/parts
  dataset: TextDataset
  checkpoint: data/out/seen.txt/CHECKPOINT
"""

DASK_ARGS = (
    "cluster_args={n_workers: 1, threads_per_worker: 1, processes: true, "
    "host: 127.0.0.1, dashboard_address: '127.0.0.1:0'}"
)

RUNNERS = {
    "sequential": [],
    "thread": ["--runner", "thread", "--max-workers", "2"],
    "parallel": ["--runner", "parallel", "--max-workers", "2"],
}


@pytest.fixture
def project(make_project: Any) -> Path:
    root: Path = make_project(example=False)
    package = root / "src" / "demo" / "pipelines" / "ingest"
    package.mkdir()
    (package / "__init__.py").write_text(INGEST)
    (root / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    (root / "conf" / "base" / "parameters.yml").write_text("fail: none\nok: true\n")
    (root / "conf" / "broken").mkdir()
    (root / "conf" / "broken" / "catalog.yml").write_text(BROKEN_CHECKPOINT)
    add_partitions(root, "p1", "p2")
    return root


def add_partitions(root: Path, *ids: str) -> None:
    parts = root / "data" / "raw" / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for pid in ids:
        (parts / pid).write_text(pid.upper())


def seen(root: Path) -> str:
    return (root / "data" / "out" / "seen.txt").read_text()


def checkpoint(root: Path) -> str | None:
    path = root / "data" / "raw" / "parts" / "CHECKPOINT"
    return path.read_text() if path.exists() else None


def run(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", *args, cwd=root, env=env, check=False)


def last_record(root: Path) -> dict[str, Any]:
    return show(root, session_ids(root)[0])


# A successful run moves the checkpoint -----------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("runner", [*RUNNERS, "dask"])
def test_a_second_run_processes_only_the_partitions_added_since(project: Path, runner: str) -> None:
    args = ["--runner", "dask", "--runner-args", DASK_ARGS] if runner == "dask" else RUNNERS[runner]

    first = run(project, *args)
    assert first.returncode == 0, first.stderr
    assert seen(project) == "p1=P1,p2=P2"
    assert checkpoint(project) == "p2"

    add_partitions(project, "p3")
    second = run(project, *args)
    assert second.returncode == 0, second.stderr
    assert seen(project) == "p3=P3"
    assert checkpoint(project) == "p3"

    if runner == "sequential":
        third = run(project, *args)
        assert third.returncode == 0, third.stderr
        assert seen(project) == ""
        assert checkpoint(project) == "p3"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_installed_wheel_confirms_in_its_parallel_workers(
    project: Path, tmp_path: Path, wheelhouse: Path
) -> None:
    from kilnflow.packaging import package_project

    wheel = package_project(project, tmp_path / "dist")
    bindir = fresh_venv(tmp_path / "venv", wheelhouse, str(wheel))
    elsewhere = tmp_path / "elsewhere"
    add_partitions(elsewhere, "p1", "p2")
    command = ["python", "-m", "demo", "--runner", "parallel", "--max-workers", "2"]

    first = run_installed(bindir, command, elsewhere)
    assert first.returncode == 0, first.stderr
    assert seen(elsewhere) == "p1=P1,p2=P2"
    assert checkpoint(elsewhere) == "p2"

    add_partitions(elsewhere, "p3")
    failed = run_installed(bindir, [*command, "--params", "fail=collect"], elsewhere)
    assert failed.returncode == 1
    assert checkpoint(elsewhere) == "p2"

    second = run_installed(bindir, command, elsewhere)
    assert second.returncode == 0, second.stderr
    assert seen(elsewhere) == "p3=P3"
    assert checkpoint(elsewhere) == "p3"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("runner", [*RUNNERS, "dask"])
def test_a_node_downstream_confirms_what_another_worker_loaded(project: Path, runner: str) -> None:
    # Under ParallelRunner and DaskRunner 'read' and 'publish' run in different
    # workers: what 'read' loaded must reach the copy of 'raw' that 'publish' confirms.
    args = ["--runner", "dask", "--runner-args", DASK_ARGS] if runner == "dask" else RUNNERS[runner]
    chain = {"KILNFLOW_TEST_SHAPE": "chain"}

    first = run(project, *args, **chain)
    assert first.returncode == 0, first.stderr
    assert seen(project) == "p1=P1,p2=P2"
    assert checkpoint(project) == "p2"

    add_partitions(project, "p3")
    failed = run(project, *args, "--params", "fail=publish", **chain)
    assert failed.returncode == 1
    assert 'resume with --from-nodes "read"' in failed.stderr
    assert checkpoint(project) == "p2"

    second = run(project, *args, **chain)
    assert second.returncode == 0, second.stderr
    assert seen(project) == "p3=P3"
    assert checkpoint(project) == "p3"


# A failed, interrupted or refused run moves nothing ------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("failing", ["collect", "check"])
def test_a_failed_run_confirms_nothing_so_the_next_run_sees_the_same_partitions(
    project: Path, runner: str, failing: str
) -> None:
    # 'collect' fails itself; when 'check' fails, 'collect' never runs.
    failed = run(project, *RUNNERS[runner], "--params", f"fail={failing}")

    assert failed.returncode == 1
    assert f"Node {failing!r} failed with RuntimeError: {failing} failed on purpose" in (
        failed.stderr
    )
    assert checkpoint(project) is None
    assert last_record(project)["outcome"] == "failed"

    again = run(project, *RUNNERS[runner])
    assert again.returncode == 0, again.stderr
    assert seen(project) == "p1=P1,p2=P2"
    assert checkpoint(project) == "p2"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("runner", ["sequential", "parallel"])
def test_an_interrupted_run_confirms_nothing(project: Path, tmp_path: Path, runner: str) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    process = subprocess.Popen(
        [str(SCRIPTS / "kilnflow"), "run", *RUNNERS[runner], "--params", "fail=hang"],
        cwd=project,
        env={**os.environ, "KILNFLOW_TEST_MARKERS": str(markers)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (markers / "collect").exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the node never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "Interrupted by SIGTERM." in stderr
    assert checkpoint(project) is None
    assert last_record(project)["outcome"] == "interrupted"


def test_a_confirm_that_fails_after_the_node_succeeded_fails_the_run(project: Path) -> None:
    result = run(project, "--env", "broken")

    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "Error: Node 'collect' failed with DatasetError: its outputs were saved but confirming "
        "'raw' failed ("
    ), line
    assert "its checkpoint did not move, so the next run loads the same data again" in line
    assert seen(project) == "p1=P1,p2=P2"
    record = last_record(project)
    assert record["outcome"] == "failed"
    assert "Node 'collect' failed" in record["exception"]["message"]
    assert "collect" not in record["node_durations"]

    again = run(project)
    assert again.returncode == 0, again.stderr
    assert seen(project) == "p1=P1,p2=P2"


@pytest.mark.parametrize(
    ("confirms", "expected"),
    [
        (
            "rwa",
            "Error: Node 'collect' confirms 'rwa', which is not in the catalog. Did you mean "
            "'raw'? Declare it in the catalog or fix the node's confirms.",
        ),
        (
            "seen",
            "Error: Node 'collect' confirms 'seen', a TextDataset with no checkpoint to move; "
            "confirm a dataset such as a partitions.IncrementalDataset, or drop it from the "
            "node's confirms.",
        ),
    ],
)
def test_confirming_what_has_no_checkpoint_fails_before_any_node_runs(
    project: Path, confirms: str, expected: str
) -> None:
    result = run(project, KILNFLOW_TEST_CONFIRMS=confirms)

    assert error_line(result) == expected
    assert not (project / "data" / "out").exists()
    assert checkpoint(project) is None


# The Python API ------------------------------------------------------------------------


def parts_of(parts: dict[str, str]) -> str:
    return ",".join(sorted(parts))


def passed_on(text: str) -> str:
    return text


def incremental_catalog(tmp_path: Path, *names: str) -> DataCatalog:
    datasets: dict[str, Any] = {}
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        for pid in ("a", "b"):
            (folder / pid).write_text(pid)
        datasets[name] = IncrementalDataset(folder, "TextDataset")
    return DataCatalog(datasets)


def test_a_namespaced_node_confirms_its_namespaced_dataset(tmp_path: Path) -> None:
    base = Pipeline([node(parts_of, "raw", "out", name="collect", confirms="raw")])
    europe = pipeline(base, namespace="eu")
    shared = pipeline(base, namespace="us", inputs={"raw": "landing"})
    assert europe.nodes[0].confirms == ("eu.raw",)
    assert shared.nodes[0].confirms == ("landing",)

    catalog = incremental_catalog(tmp_path, "eu.raw", "landing")
    outputs = SequentialRunner().run(europe + shared, catalog)

    assert outputs == {"eu.out": "a,b", "us.out": "a,b"}
    assert (tmp_path / "eu.raw" / "CHECKPOINT").read_text() == "b"
    assert (tmp_path / "landing" / "CHECKPOINT").read_text() == "b"


@pytest.mark.parametrize("runner", [SequentialRunner, ThreadRunner])
def test_a_node_downstream_may_confirm_what_an_earlier_node_read(
    tmp_path: Path, runner: Any
) -> None:
    # The checkpoint moves only once the whole chain has succeeded.
    chain = Pipeline(
        [
            node(parts_of, "raw", "ids", name="read"),
            node(passed_on, "ids", "out", name="publish", confirms="raw"),
        ]
    )
    catalog = incremental_catalog(tmp_path, "raw")

    assert runner().run(chain, catalog) == {"out": "a,b"}
    assert (tmp_path / "raw" / "CHECKPOINT").read_text() == "b"


@pytest.mark.parametrize("runner", [SequentialRunner, ThreadRunner, ParallelRunner])
def test_a_checkpoint_may_not_move_before_another_reader_succeeded(
    tmp_path: Path, runner: Any
) -> None:
    # 'audit' reads 'raw' too but 'collect' does not wait for it: were 'audit' to fail
    # after 'collect' confirmed, the next run would never give it those partitions.
    both = Pipeline(
        [
            node(parts_of, "raw", "out", name="collect", confirms="raw"),
            node(parts_of, "raw", "audit_log", name="audit"),
        ]
    )
    catalog = incremental_catalog(tmp_path, "raw")

    with pytest.raises(RunnerError) as caught:
        runner().run(both, catalog)

    assert str(caught.value) == (
        "Node 'collect' confirms 'raw', which node 'audit' also reads without 'collect' "
        "waiting for it, so the checkpoint could move before 'audit' succeeded and its "
        "partitions be lost; confirm 'raw' from a node downstream of every node that reads it."
    )
    assert not (tmp_path / "raw" / "CHECKPOINT").exists()


def test_confirming_what_no_node_of_the_run_reads_is_refused(tmp_path: Path) -> None:
    # Run alone (``--nodes publish``), the node would confirm nothing and the
    # checkpoint would silently stay.
    chain = Pipeline(
        [
            node(parts_of, "raw", "ids", name="read"),
            node(passed_on, "ids", "out", name="publish", confirms="raw"),
        ]
    )
    catalog = incremental_catalog(tmp_path, "raw")
    catalog.add("ids", TextDataset(tmp_path / "ids.txt"))

    with pytest.raises(RunnerError) as caught:
        SequentialRunner().run(chain.filter(node_names=["publish"]), catalog)

    assert str(caught.value) == (
        "Node 'publish' confirms 'raw', which no node of this run reads, so there is nothing "
        "to confirm and its checkpoint would stay; run the nodes that read 'raw' too."
    )


def refuse(text: str) -> str:
    raise RuntimeError("publishing failed on purpose")


def test_resuming_a_failed_confirming_node_reruns_the_nodes_that_read_its_data(
    tmp_path: Path,
) -> None:
    chain = Pipeline(
        [
            node(parts_of, "raw", "ids", name="read"),
            node(refuse, "ids", "out", name="publish", confirms="raw"),
        ]
    )
    catalog = incremental_catalog(tmp_path, "raw")
    catalog.add("ids", TextDataset(tmp_path / "ids.txt"))

    with pytest.raises(NodeFailedError) as caught:
        SequentialRunner().run(chain, catalog)

    # 'ids' was saved, yet resuming at 'publish' alone would load nothing to confirm.
    assert list(caught.value.resume_nodes) == ["read"]
    assert 'resume with --from-nodes "read"' in str(caught.value)
    assert not (tmp_path / "raw" / "CHECKPOINT").exists()


def audit_and_receive(parts: dict[str, str], folder: str) -> str:
    # A partition arrives while the run is under way, after this node's load.
    Path(folder, "c").write_text("c")
    return parts_of(parts)


def summarise_parts(parts: dict[str, str], audited: str) -> str:
    return f"{audited}|{parts_of(parts)}"


@pytest.mark.parametrize("runner", [SequentialRunner, ParallelRunner])
def test_a_partition_only_some_readers_saw_is_not_confirmed(tmp_path: Path, runner: Any) -> None:
    both = Pipeline(
        [
            node(audit_and_receive, ["raw", "params:folder"], "audited", name="audit"),
            node(summarise_parts, ["raw", "audited"], "out", name="summary", confirms="raw"),
        ]
    )
    catalog = incremental_catalog(tmp_path, "raw")
    catalog.add_parameters({"folder": str(tmp_path / "raw")})

    assert runner().run(both, catalog) == {"out": "a,b|a,b,c"}

    # 'audit' never saw 'c': the next run must give it 'c' again.
    assert (tmp_path / "raw" / "CHECKPOINT").read_text() == "b"
    assert IncrementalDataset(tmp_path / "raw", "TextDataset").load() == {"c": "c"}


def test_a_confirmed_memory_dataset_is_refused_before_any_node_runs(tmp_path: Path) -> None:
    ran = tmp_path / "ran"

    def mark(_: object) -> str:
        ran.touch()
        return "x"

    chain = Pipeline(
        [node(mark, "params:x", "ids", name="first"), node(mark, "ids", "out", confirms="ids")]
    )
    catalog = DataCatalog({"out": TextDataset(tmp_path / "out.txt")})
    catalog.add_parameters({"x": 1})

    with pytest.raises(RunnerError, match=r"confirms 'ids', a MemoryDataset with no checkpoint"):
        SequentialRunner().run(chain, catalog)
    assert not ran.exists()


# Building nodes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confirms", "expected"),
    [
        (
            3,
            "Node for function 'parts_of': confirms must be a dataset name or a list of dataset "
            "names, not int; pass confirms='name' or confirms=['a', 'b'].",
        ),
        (
            {"raw"},
            "Node for function 'parts_of': confirms must be a dataset name or a list of dataset "
            "names, not set; pass confirms='name' or confirms=['a', 'b'].",
        ),
        (
            ["raw", 1],
            "Node for function 'parts_of': every name in confirms must be a non-empty string, "
            "got 1; fix the node's confirms.",
        ),
        (
            "",
            "Node for function 'parts_of': every name in confirms must be a non-empty string, "
            "got ''; fix the node's confirms.",
        ),
        (
            "params:x",
            "Node for function 'parts_of': confirms names the parameter 'params:x', which has "
            "no checkpoint; confirm a dataset such as a partitions.IncrementalDataset instead.",
        ),
    ],
)
def test_bad_confirms_values_are_refused_when_the_node_is_built(
    confirms: Any, expected: str
) -> None:
    with pytest.raises(PipelineError) as caught:
        node(parts_of, "raw", "out", confirms=confirms)
    assert str(caught.value) == expected


def test_confirms_is_part_of_what_defines_and_shows_a_node() -> None:
    plain = node(parts_of, "raw", "out", name="collect")
    confirming = node(parts_of, "raw", "out", name="collect", confirms=["raw", "raw"])

    assert confirming.confirms == ("raw",)
    assert plain.confirms == ()
    assert confirming != plain
    assert confirming == node(parts_of, "raw", "out", name="collect", confirms="raw")
    assert confirming.tag("daily").confirms == ("raw",)
    assert repr(confirming) == "Node(parts_of, 'raw', 'out', name='collect', confirms=['raw'])"
    assert str(confirming) == "collect: parts_of(raw) -> out (confirms raw)"
    assert "  1. collect: parts_of(raw) -> out (confirms raw)" in Pipeline([confirming]).describe()
    # A derived name does not change when a node starts confirming.
    assert node(parts_of, "raw", "out", confirms="raw").name == node(parts_of, "raw", "out").name


def test_pipeline_describe_shows_what_a_node_confirms(project: Path) -> None:
    import json

    text = run_cli("pipeline", "describe", "ingest", cwd=project).stdout
    assert "collect: raw, ok, params:fail -> seen (confirms raw)" in text
    graph = json.loads(
        run_cli("pipeline", "describe", "ingest", "--format", "json", cwd=project).stdout
    )
    confirms = {each["name"]: each["confirms"] for each in graph["nodes"]}
    assert confirms == {"check": [], "collect": ["raw"]}


def test_the_viewer_shows_what_a_node_confirms(project: Path, tmp_path: Path) -> None:
    from chromium import chromium

    run_cli("run", cwd=project)
    run_cli("viz", "--output", "viz.html", cwd=project)

    with chromium(tmp_path / "profile") as page:
        page.open((project / "viz.html").as_uri())
        page.wait_for("document.querySelectorAll('.v.node').length === 2")
        page.click('.v[data-id="node:collect"]')
        collect = page.evaluate("document.getElementById('details').textContent")
        page.click('.v[data-id="node:check"]')
        check = page.evaluate("document.getElementById('details').textContent")

    assert "confirmsraw" in collect
    assert "confirms" not in check


# Deployment tasks ------------------------------------------------------------------


def test_a_deployment_task_holds_a_confirming_node_with_the_nodes_reading_its_data() -> None:
    from kilnflow.deploy import group_nodes
    from kilnflow.errors import PackagingError

    chain = Pipeline(
        [
            node(parts_of, "raw", "ids", name="read"),
            node(passed_on, "ids", "out", name="publish", confirms="raw"),
            node(passed_on, "out", "final", name="report"),
        ]
    )

    tasks = group_nodes(chain, lambda name: False)

    assert [(task.name, task.nodes, task.upstream) for task in tasks] == [
        ("read__publish", ["read", "publish"], []),
        ("report", ["report"], ["read__publish"]),
    ]
    with pytest.raises(PackagingError) as caught:
        group_nodes(chain, lambda name: False, by="none")
    assert str(caught.value) == (
        "Node 'publish' confirms 'raw', which node 'read' reads; a task confirms only what it "
        "loaded itself, so they must share a task: group with --group-by memory."
    )
