"""How long the viewer takes to draw big pipelines in headless Chromium.

Target (issue 14): a 5,000-node pipeline renders in under 3 s. The page
records ``performance.now()`` once its graph is laid out and in the DOM
(``data-rendered-ms``: from navigation start, so HTML parsing, the model's
JSON, the layout and building the SVG all count); Chromium's ``--dump-dom``
returns the page after that. Run: ``python bench/viz_render.py [--nodes N]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kilnflow.pipeline import Pipeline, node
from kilnflow.viz import pipeline_graph, render_page

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chromium import HEADLESS  # the tests' browser flags: one list for both

FLAGS = [*HEADLESS, "--dump-dom"]


def _step(*values: Any) -> Any:
    return values[0]


def tangled(count: int) -> Pipeline:
    """One long chain whose nodes also read an output far upstream and a parameter."""
    nodes = []
    for index in range(count):
        inputs = [f"params:p{index % 10}"]
        if index:
            inputs.append(f"out_{index - 1}")
        if index > 3:
            inputs.append(f"out_{index // 3}")
        nodes.append(node(_step, inputs, f"out_{index}", name=f"n{index}"))
    return Pipeline(nodes)


def wide(count: int, chains: int = 50) -> Pipeline:
    """``chains`` parallel chains that share one source and meet in one final node."""
    length = count // chains
    nodes = [
        node(
            _step,
            "source" if step == 0 else f"c{chain}_{step - 1}",
            f"c{chain}_{step}",
            name=f"c{chain}_n{step}",
        )
        for chain in range(chains)
        for step in range(length)
    ]
    return Pipeline(nodes)


def measure(page: Path, profile: Path, binary: str) -> tuple[float, float]:
    """(ms the page reports, wall seconds of the whole browser run)."""
    start = time.perf_counter()
    dom = subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    wall = time.perf_counter() - start
    match = re.search(r'data-rendered-ms="(\d+)"', dom)
    if not match:
        raise SystemExit(f"the page did not finish rendering: {dom[-500:]}")
    return float(match.group(1)), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        print("chromium is not installed (apt-get install -y chromium)")
        return 1
    with tempfile.TemporaryDirectory() as folder:
        for name, build in (("tangled", tangled), ("wide", wide)):
            pipeline = build(arguments.nodes)
            model = pipeline_graph(pipeline, name)
            model["project"] = {"package": "bench", "mode": "project"}
            model["run"] = None
            page = Path(folder) / f"{name}.html"
            page.write_text(render_page(model), "utf-8")
            samples = [
                measure(page, Path(folder) / f"profile-{name}-{i}", binary)
                for i in range(arguments.repeat)
            ]
            rendered = statistics.median(ms for ms, _ in samples)
            wall = statistics.median(seconds for _, seconds in samples)
            vertices = len(model["nodes"]) + len(model["datasets"])
            verdict = "ok" if rendered < 3000 else "OVER the 3 s target"
            print(
                f"{name:8} {len(model['nodes']):>6} nodes, {vertices:>6} vertices, "
                f"{len(model['edges']):>6} edges, page {page.stat().st_size / 1e6:.1f} MB: "
                f"rendered in {rendered:.0f} ms (browser run {wall:.1f} s)  {verdict}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
