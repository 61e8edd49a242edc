"""``kilnflow viz`` and ``pipeline describe --format``, checked in a real Chromium.

The project is the starter example plus a namespaced pipeline (``checks``)
with tags, parameters and catalog ``metadata:``; runs are real ``kilnflow
run`` subprocesses, so the viewer reads what a user's store holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chromium import Page, chromium, stop
from conftest import SCRIPTS, fresh_venv, outside_environment, run_cli

REPO = Path(__file__).resolve().parents[1]

CHECKS = '''
"""Checks on the station summary, reusable under any namespace."""

from kilnflow.pipeline import Pipeline, node, pipeline


def count_stations(summary):
    return len(summary)


def describe_count(count, label):
    if label == "boom":
        raise RuntimeError("the checks were told to fail")
    return f"{label}: {count} stations"


def create_pipeline():
    inner = Pipeline(
        [
            node(count_stations, "summary", "count", name="count"),
            node(describe_count, ["count", "params:label"], "description", name="describe"),
        ]
    )
    return pipeline(
        inner,
        inputs={"summary": "station_summary"},
        parameters={"label": "checks.label"},
        namespace="checks",
        tags="checks",
    )
'''

CATALOG_EXTRA = """
checks.description:
  type: TextDataset
  filepath: data/reporting/checks.txt
  metadata:
    owner: data-quality
    description: How many stations reported
"""


def viz_project(make_project: Any) -> Path:
    """The example project plus a namespaced, tagged ``checks`` pipeline."""
    project: Path = make_project("demo")
    package = project / "src" / "demo" / "pipelines" / "checks"
    package.mkdir()
    (package / "__init__.py").write_text(CHECKS)
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(catalog.read_text() + CATALOG_EXTRA)
    parameters = project / "conf" / "base" / "parameters.yml"
    parameters.write_text(parameters.read_text() + "\nchecks:\n  label: Stations\n")
    return project


def embedded_model(page: str) -> dict[str, Any]:
    match = re.search(r'<script id="kilnflow-model" type="application/json">(.*?)</script>', page)
    assert match, "the page embeds no model"
    loaded: dict[str, Any] = json.loads(match.group(1))
    return loaded


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


# -- pipeline describe --format -------------------------------------------------------


def test_describe_text_lists_nodes_in_run_order(make_project: Any) -> None:
    project = make_project("demo")

    result = run_cli("pipeline", "describe", "readings", cwd=project)

    assert result.stdout == (
        "clean: readings, params:min_valid -> clean_readings\n"
        "summarise: clean_readings -> station_summary\n"
        "report: station_summary, params:report -> report\n"
    )


def test_describe_json_is_the_graph(make_project: Any) -> None:
    project = viz_project(make_project)

    graph = json.loads(run_cli("pipeline", "describe", "--format", "json", cwd=project).stdout)

    assert [node["name"] for node in graph["nodes"]] == [
        "clean",
        "summarise",
        "checks.count",
        "checks.describe",
        "report",
    ]
    checks = by_name(graph["nodes"])["checks.describe"]
    assert checks["namespace"] == "checks"
    assert checks["label"] == "describe"
    assert checks["tags"] == ["checks"]
    assert checks["func"] == "demo.pipelines.checks.describe_count"
    datasets = by_name(graph["datasets"])
    assert datasets["params:checks.label"]["kind"] == "parameters"
    assert datasets["params:checks.label"]["namespace"] == "checks"
    assert datasets["station_summary"]["namespace"] is None
    assert datasets["readings"]["free_input"] is True
    assert datasets["report"]["free_output"] is True
    assert ["data:station_summary", "node:checks.count"] in graph["edges"]
    assert ["node:checks.describe", "data:checks.description"] in graph["edges"]
    assert graph["namespaces"] == ["checks"]
    assert graph["tags"] == ["checks", "readings"]


def test_describe_mermaid(make_project: Any) -> None:
    project = viz_project(make_project)

    result = run_cli("pipeline", "describe", "checks", "-f", "mermaid", cwd=project)

    assert result.stdout == (
        "flowchart TD\n"
        '  subgraph ns0["checks"]\n'
        '    n0["count"]\n'
        '    n1["describe"]\n'
        '    d1[("count")]\n'
        '    d2[/"params:label"/]\n'
        '    d3[("description")]\n'
        "  end\n"
        '  d0[("station_summary")]\n'
        "  d0 --> n0\n"
        "  n0 --> d1\n"
        "  d1 --> n1\n"
        "  d2 --> n1\n"
        "  n1 --> d3\n"
    )


def test_describe_dot(make_project: Any) -> None:
    project = viz_project(make_project)

    result = run_cli("pipeline", "describe", "checks", "--format", "dot", cwd=project)

    assert result.stdout == (
        'digraph "checks" {\n'
        "  rankdir=TB;\n"
        '  subgraph cluster_0 { label="checks";\n'
        '    "node:checks.count" [label="count", shape=box];\n'
        '    "node:checks.describe" [label="describe", shape=box];\n'
        '    "data:checks.count" [label="count", shape=cylinder];\n'
        '    "data:params:checks.label" [label="params:label", shape=note];\n'
        '    "data:checks.description" [label="description", shape=cylinder];\n'
        "  }\n"
        '  "data:station_summary" [label="station_summary", shape=cylinder];\n'
        '  "data:station_summary" -> "node:checks.count";\n'
        '  "node:checks.count" -> "data:checks.count";\n'
        '  "data:checks.count" -> "node:checks.describe";\n'
        '  "data:params:checks.label" -> "node:checks.describe";\n'
        '  "node:checks.describe" -> "data:checks.description";\n'
        "}\n"
    )


def test_describe_escapes_names_for_mermaid_and_dot() -> None:
    from kilnflow.pipeline import Pipeline, node
    from kilnflow.viz import describe, pipeline_graph

    graph = pipeline_graph(Pipeline([node(str, 'a "quoted" \\ name', "out")]), "odd")

    assert 'd0[("a #quot;quoted#quot; \\ name")]' in describe(graph, "mermaid")
    assert '"data:a \\"quoted\\" \\\\ name" [label="a \\"quoted\\" \\\\ name"' in describe(
        graph, "dot"
    )


def test_describe_with_an_unknown_format_is_a_clear_error(make_project: Any) -> None:
    project = make_project("demo")

    result = run_cli("pipeline", "describe", "--format", "svg", cwd=project, check=False)

    assert result.returncode == 2
    assert "'svg' is not one of 'text', 'json', 'mermaid', 'dot'" in result.stderr


# -- kilnflow viz --output ----------------------------------------------------------------


def test_viz_file_holds_the_graph_catalog_and_latest_run(make_project: Any) -> None:
    project = viz_project(make_project)
    parameters = project / "conf" / "base" / "parameters.yml"
    parameters.write_text(
        parameters.read_text().replace("report:\n", "report:\n  api_key: not-for-the-page\n", 1)
    )
    run_cli("run", cwd=project)
    run_cli("run", "--params", "checks.label=boom", cwd=project, check=False)

    result = run_cli("viz", "--output", "viz.html", cwd=project)

    page = (project / "viz.html").read_text()
    model = embedded_model(page)
    run = model["run"]
    assert f"run {run['session_id']} (failed)" in result.stdout
    assert run["outcome"] == "failed"
    assert run["failed_node"] == "checks.describe"
    assert "the checks were told to fail" in run["error"]
    nodes = by_name(model["nodes"])
    assert nodes["checks.describe"]["status"] == "failed"
    assert nodes["clean"]["status"] == "success"
    assert nodes["clean"]["duration"] >= 0
    datasets = by_name(model["datasets"])
    assert datasets["readings"]["type"] == "JSONDataset"
    assert datasets["readings"]["details"]["filepath"].endswith("data/raw/readings.json")
    assert datasets["clean_readings"]["type"] == "MemoryDataset"
    assert datasets["checks.description"]["metadata"] == {
        "owner": "data-quality",
        "description": "How many stations reported",
    }
    assert datasets["params:checks.label"]["details"] == {"value": "Stations"}
    assert datasets["params:report"]["details"]["value"]["api_key"] == "***"
    assert "not-for-the-page" not in (project / "viz.html").read_text()
    assert model["catalog_error"] is None


def test_viz_file_is_self_contained(make_project: Any) -> None:
    project = viz_project(make_project)

    run_cli("viz", "-o", "viz.html", cwd=project)

    page = (project / "viz.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", page)
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)
    assert "default-src 'none'" in page
    assert embedded_model(page)["run"] is None


def test_viz_with_a_session_shows_that_run(make_project: Any) -> None:
    project = viz_project(make_project)
    run_cli("run", "--pipeline", "readings", cwd=project)
    sessions = run_cli("session", "list", cwd=project).stdout.split()
    session_id = sessions[0]
    run_cli("run", "--pipeline", "readings", "--params", "min_valid=11", cwd=project)

    run_cli("viz", "--session", session_id[:18], "--output", "viz.html", cwd=project)

    model = embedded_model((project / "viz.html").read_text())
    assert model["pipeline"] == "readings"
    assert model["run"]["session_id"] == session_id
    assert model["run"]["outcome"] == "success"
    assert {node["status"] for node in model["nodes"]} == {"success"}


def test_viz_reads_the_catalog_of_the_env_given(make_project: Any) -> None:
    project = make_project("demo")
    (project / "conf" / "prod").mkdir()
    (project / "conf" / "prod" / "catalog.yml").write_text(
        "readings:\n  type: YAMLDataset\n  filepath: data/raw/readings.json\n"
        "  metadata:\n    source: prod sensors\n"
    )

    run_cli("viz", "--env", "prod", "-o", "viz.html", cwd=project)

    model = embedded_model((project / "viz.html").read_text())
    readings = by_name(model["datasets"])["readings"]
    assert readings["type"] == "YAMLDataset"
    assert readings["metadata"] == {"source": "prod sensors"}
    assert model["project"]["env"] == "prod"


def test_viz_escapes_names_inside_the_page() -> None:
    from kilnflow.viz import render_page

    model = {
        "pipeline": "p",
        "project": {"package": "<b>demo</b>", "mode": "project"},
        "nodes": [],
        "datasets": [{"name": "</script><script>alert(1)</script>"}],
        "edges": [],
        "namespaces": [],
        "tags": [],
        "run": None,
    }

    page = render_page(model)

    assert "</script><script>alert(1)" not in page
    assert "<title>&lt;b&gt;demo&lt;/b&gt; · p</title>" in page
    assert embedded_model(page)["datasets"][0]["name"] == "</script><script>alert(1)</script>"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["viz"], "Pass --output FILE to write the viewer to a file, or --serve"),
        (["viz", "-o", "v.html", "--serve"], "Pass --output FILE"),
        (["viz", "-o", "v.html", "--port", "9"], "--port applies only with --serve"),
        (["viz", "--serve", "--pipeline", "readings"], "chosen in the served page"),
        (["viz", "-o", "missing/v.html"], "folder missing does not exist"),
        (["viz", "-o", "v.html", "--pipeline", "readngs"], "readngs"),
        (["viz", "-o", "v.html", "--session", "2099"], "No session '2099'"),
        (["viz", "-o", "v.html", "--package", "not_installed_pkg"], "not_installed_pkg"),
        (["viz", "-o", "v.html", "--package", "kilnflow"], "'kilnflow' is Kilnflow itself"),
        (["viz", "-o", "v.html", "--package", "json"], "json.pipeline_registry does not exist"),
    ],
)
def test_viz_bad_input_is_one_clear_line_and_writes_nothing(
    make_project: Any, args: list[str], message: str
) -> None:
    project = make_project("demo")

    result = run_cli(*args, cwd=project, check=False)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(project.glob("*.html"))
    assert not list(project.glob(".*.tmp"))


def test_viz_session_of_another_pipeline_is_a_clear_error(make_project: Any) -> None:
    project = viz_project(make_project)
    run_cli("run", "--pipeline", "readings", cwd=project)
    session_id = run_cli("session", "list", cwd=project).stdout.split()[0]

    result = run_cli(
        "viz",
        "-o",
        "v.html",
        "--session",
        session_id,
        "--pipeline",
        "checks",
        cwd=project,
        check=False,
    )

    assert result.returncode == 1
    assert f"Session {session_id} ran pipeline 'readings', not 'checks'" in result.stderr
    assert not (project / "v.html").exists()


def test_viz_outside_a_project_says_to_pass_package(tmp_path: Path) -> None:
    result = run_cli("viz", "-o", "v.html", cwd=tmp_path, check=False)

    assert result.returncode == 1
    assert "pass --package NAME to view an installed project" in result.stderr


# -- in the browser -----------------------------------------------------------------------

COUNT = "document.querySelectorAll({!r}).length"


def check_rendered(page: Page) -> None:
    """Nodes, datasets and edges are drawn; the namespace starts collapsed."""
    assert page.evaluate(COUNT.format(".v.node")) == 3
    assert page.evaluate(COUNT.format(".v.dataset")) >= 4
    assert page.evaluate(COUNT.format(".v.namespace")) == 1
    assert page.evaluate(COUNT.format("path.edge")) >= 8
    assert page.evaluate(COUNT.format('.v.node[data-id="node:checks.count"]')) == 0


def test_viz_file_in_chromium(make_project: Any, tmp_path: Path) -> None:
    project = viz_project(make_project)
    run_cli("run", cwd=project)
    run_cli("run", "--params", "checks.label=boom", cwd=project, check=False)
    run_cli("viz", "--output", "viz.html", cwd=project)

    with chromium(tmp_path / "profile") as page:
        page.open((project / "viz.html").as_uri())
        check_rendered(page)
        clean = '.v[data-id="node:clean"]'
        assert page.evaluate(f"document.querySelector('{clean}').dataset.status") == "success"
        duration = page.evaluate(f"document.querySelector('{clean} .sub').textContent")
        assert re.fullmatch(r"(<1 ms|\d+ ms|\d+\.\d\d s)", duration), duration
        assert page.evaluate("document.querySelector('.v.namespace').dataset.status") == "failed"

        page.click(".v.namespace")

        page.wait_for(COUNT.format('.v.node[data-id="node:checks.describe"]'))
        failed = '.v[data-id="node:checks.describe"]'
        assert page.evaluate(f"document.querySelector('{failed}').dataset.status") == "failed"
        assert "failed" in page.evaluate(f"document.querySelector('{failed} .sub').textContent")
        assert page.evaluate(COUNT.format(".v.namespace")) == 0
        assert page.evaluate(COUNT.format(".group")) == 1
        assert "checks.describe" in page.evaluate("document.getElementById('run').textContent")

        page.click('.v[data-id="data:checks.description"]')
        details = page.evaluate("document.getElementById('details').textContent")
        assert "data-quality" in details
        assert "TextDataset" in details

        page.click('input[data-tag="readings"]')
        page.wait_for(COUNT.format(".v.node") + " === 3")
        assert page.evaluate(COUNT.format('.v[data-id="node:checks.count"]')) == 0

        page.click('input[data-tag="readings"]')
        page.wait_for(COUNT.format(".v.node") + " === 5")
        screenshot = page.screenshot(tmp_path / "viz.png")
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 20_000
    # KILNFLOW_SCREENSHOTS=docs refreshes the README's picture from this very test.
    keep = os.environ.get("KILNFLOW_SCREENSHOTS")
    if keep:
        shutil.copy(screenshot, Path(keep) / "viz.png")


# -- kilnflow viz --serve -----------------------------------------------------------------


@contextmanager
def served(cwd: Path, *args: str) -> Iterator[str]:
    """Run ``kilnflow viz --serve --port 0`` until the block ends; yield its URL."""
    with (cwd / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [str(SCRIPTS / "kilnflow"), "viz", "--serve", "--port", "0", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, f"no URL announced: {line!r} {(cwd / 'serve.log').read_text()}"
        yield match.group(0)
    finally:
        stop(process)
        process.stdout.close()


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        text: str = response.read().decode()
        return text


def wait_for_change(url: str, old: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = fetch(url)
        if new != old:
            return new
        time.sleep(0.1)
    raise AssertionError(f"{url} stayed {old!r}")


def test_viz_serve_in_chromium_reloads_on_changes(make_project: Any, tmp_path: Path) -> None:
    project = viz_project(make_project)
    run_cli("run", cwd=project)
    with served(project) as url, chromium(tmp_path / "profile") as page:
        page.open(url)
        check_rendered(page)
        sessions = page.evaluate(COUNT.format("#session-select option"))
        assert sessions == 2  # "latest" and the one recorded run
        version = fetch(url + "_version")

        nodes = project / "src" / "demo" / "pipelines" / "readings" / "__init__.py"
        nodes.write_text(nodes.read_text().replace('name="report"', 'name="write_report"'))
        wait_for_change(url + "_version", version)

        page.wait_for(COUNT.format('.v[data-id="node:write_report"]'), timeout=30)
        assert page.evaluate(COUNT.format('.v[data-id="node:report"]')) == 0
        assert page.evaluate("document.querySelector('.v.node').dataset.status") != "failed"

        catalog = project / "conf" / "base" / "catalog.yml"
        catalog.write_text(catalog.read_text().replace("type: JSONDataset", "type: YAMLDataset", 1))
        page.wait_for(
            "document.querySelector('.v[data-id=\"data:readings\"] .sub').textContent"
            " === 'YAMLDataset'",
            timeout=30,
        )

        run_cli("run", "--pipeline", "readings", cwd=project)
        page.wait_for(COUNT.format("#session-select option") + " === 3", timeout=30)
        page.evaluate(
            "(() => { const s = document.getElementById('pipeline-select');"
            " s.value = 'checks'; s.dispatchEvent(new Event('change')); })()"
        )
        page.wait_for("new URLSearchParams(location.search).get('pipeline') === 'checks'")
        page.wait_for(COUNT.format(".v.namespace") + " === 1")


def test_viz_serve_shows_broken_code_on_the_page(make_project: Any) -> None:
    project = viz_project(make_project)
    (project / "src" / "demo" / "pipelines" / "checks" / "__init__.py").write_text("def (:\n")
    registry = project / "src" / "demo" / "pipeline_registry.py"
    with served(project) as url:
        broken = embedded_model(fetch(url))
        registry.write_text(
            registry.read_text().replace("find_pipelines()", "find_pipelines(raise_errors=False)")
        )
        skipped = embedded_model(fetch(url))
    assert "Pipeline module demo.pipelines.checks cannot be loaded" in broken["error"]
    assert "SyntaxError" in broken["error"]
    assert broken["nodes"] == []
    assert [node["name"] for node in skipped["nodes"]] == ["clean", "summarise", "report"]
    assert any("demo.pipelines.checks was skipped" in text for text in skipped["warnings"])


def test_viz_serve_on_a_busy_port_is_a_clear_error(make_project: Any) -> None:
    project = make_project("demo")
    with served(project) as url:
        port = url.rsplit(":", 1)[1].strip("/")
        result = run_cli("viz", "--serve", "--port", port, cwd=project, check=False)
    assert result.returncode == 1
    assert f"Cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "pick another with --port" in result.stderr


# -- an installed wheel, no project folder -------------------------------------------------


@pytest.mark.slow
def test_viz_package_on_an_installed_wheel(
    make_project: Any, tmp_path: Path, wheelhouse: Path
) -> None:
    from kilnflow.packaging import package_project

    project = viz_project(make_project)
    wheel = package_project(project, tmp_path / "dist")
    bindir = fresh_venv(tmp_path / "venv", wheelhouse, str(wheel))
    work = tmp_path / "work"
    shutil.copytree(project / "data", work / "data")
    environment = outside_environment(KILNFLOW_HOME=str(tmp_path / "home"))
    subprocess.run(
        [str(bindir / "demo")], cwd=work, env=environment, check=True, capture_output=True
    )

    result = subprocess.run(
        [str(bindir / "kilnflow"), "viz", "--package", "demo", "-o", "viz.html"],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    model = embedded_model((work / "viz.html").read_text())
    assert model["project"] == {"package": "demo", "mode": "packaged", "path": None, "env": None}
    assert model["run"]["outcome"] == "success"
    assert by_name(model["nodes"])["checks.describe"]["status"] == "success"
    assert by_name(model["datasets"])["checks.description"]["metadata"]["owner"] == "data-quality"
    assert not (work / "conf").exists()
    with chromium(tmp_path / "profile") as page:
        page.open((work / "viz.html").as_uri())
        check_rendered(page)


def test_viz_layer_is_imported_only_by_the_cli() -> None:
    sources = REPO / "src" / "kilnflow"
    importers = sorted(
        str(path.relative_to(sources))
        for path in sources.rglob("*.py")
        if "viz" not in path.relative_to(sources).parts
        and re.search(r"^\s*(from|import) kilnflow\.viz", path.read_text(), re.MULTILINE)
    )
    assert importers == ["cli/_info.py", "cli/_viz.py"]
