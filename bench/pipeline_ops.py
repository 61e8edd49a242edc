"""Time building, sorting, filtering and running large pipelines: ``python bench/pipeline_ops.py``.

Two shapes at 1,000 and 10,000 trivial nodes: a chain (each node reads the
previous node's output) and a fan-out/fan-in (one source, N parallel nodes,
one sink reading them all). Every figure is the best of a few repeats; the
last one is a whole in-process SequentialRunner run over memory datasets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Node, Pipeline, node, pipeline
from kilnflow.runner import SequentialRunner

REPEATS = 5
SIZES = (1_000, 10_000)


def identity(value: Any) -> Any:
    return value


def source() -> int:
    return 0


def gather(*values: Any) -> int:
    return len(values)


def chain(size: int) -> list[Node]:
    return [
        node(
            identity,
            f"d{index}",
            f"d{index + 1}",
            name=f"n{index}",
            tags="even" if index % 2 == 0 else "odd",
            namespace=f"ns{index % 10}",
        )
        for index in range(size)
    ]


def fan(size: int) -> list[Node]:
    middle = [
        node(
            identity,
            "src",
            f"m{index}",
            name=f"n{index}",
            tags="even" if index % 2 == 0 else "odd",
            namespace=f"ns{index % 10}",
        )
        for index in range(size - 2)
    ]
    ends = [
        node(source, None, "src", name="source", tags="even"),
        node(gather, [f"m{index}" for index in range(size - 2)], "out", name="sink", tags="odd"),
    ]
    return middle + ends


def best(func: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(label: str, make: Callable[[int], list[Node]], size: int) -> None:
    nodes = make(size)
    built = Pipeline(nodes)
    order = built.nodes
    first_name, middle_name, last_name = order[0].name, order[len(order) // 2].name, order[-1].name
    middle_input = order[len(order) // 2].inputs[0]
    last_output = order[-1].outputs[0]
    cases: list[tuple[str, Callable[[], object]]] = [
        ("create nodes", lambda: make(size)),
        ("Pipeline() validate + sort", lambda: Pipeline(nodes)),
        ("grouped_nodes (fresh)", lambda: Pipeline(nodes).grouped_nodes),
        ("inputs/outputs (fresh)", lambda: (Pipeline(nodes).inputs(), Pipeline(nodes).outputs())),
        ("only_nodes_with_tags", lambda: built.only_nodes_with_tags("even")),
        ("only_nodes (3 names)", lambda: built.only_nodes(first_name, middle_name, last_name)),
        ("from_nodes (middle)", lambda: built.from_nodes(middle_name)),
        ("to_nodes (middle)", lambda: built.to_nodes(middle_name)),
        ("from_inputs (middle)", lambda: built.from_inputs(middle_input)),
        ("to_outputs (last)", lambda: built.to_outputs(last_output)),
        ("only_nodes_with_namespace", lambda: built.only_nodes_with_namespace("ns3")),
        (
            "filter(tags, to_outputs, ns)",
            lambda: built.filter(tags=["even"], to_outputs=[last_output], node_namespace="ns4"),
        ),
        ("pipeline(namespace=)", lambda: pipeline(built, namespace="outer")),
        ("p + p", lambda: built + built),
        (
            "SequentialRunner.run",
            lambda: SequentialRunner().run(
                built, DataCatalog({name: MemoryDataset(0) for name in built.inputs()})
            ),
        ),
    ]
    print(f"\n{label}, {size:,} nodes (best of {REPEATS})")
    for name, case in cases:
        print(f"  {name:<30} {best(case) * 1000:9.2f} ms")


def main() -> None:
    for size in SIZES:
        measure("chain", chain, size)
        measure("fan-out/fan-in", fan, size)


if __name__ == "__main__":
    main()
