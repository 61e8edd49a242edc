"""Runner overhead and speed-up: ``python bench/runners.py [--repeats N]``.

Scheduling overhead: a fan-out/fan-in of 100 and 1,000 trivial nodes (one
source, parallel identity nodes, one sink) over memory datasets. "start" is
a one-node run (pool or plugin set-up included); "per node" is the extra
time each further node costs, ``(t(N) - t(1)) / (N - 1)``. The Dask cluster
(one worker process per CPU) is started once, outside the timings.

Speed-up: 8 CPU-bound nodes of about 0.5 s each, against SequentialRunner.
Every figure is the best of a few repeats.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from kilnflow.io import DataCatalog, MemoryDataset
from kilnflow.pipeline import Pipeline, node
from kilnflow.runner import (
    AbstractRunner,
    DaskRunner,
    ParallelRunner,
    SequentialRunner,
    ThreadRunner,
)

SIZES = (100, 1_000)
CPU_NODES = 8
CPU_SECONDS = 0.5
CPUS = os.cpu_count() or 1


def source() -> int:
    return 0


def identity(value: Any) -> Any:
    return value


def gather(*values: Any) -> int:
    return len(values)


def burn(loops: int) -> int:
    """Pure-Python CPU work that holds the GIL and allocates nothing.

    As in the suite's ``burn`` (bench/kfbench/sources.py): a loop that
    allocated ints ran up to 12% faster or slower with the heap's layout, so
    the speed-up depended on which process a node happened to run in.
    """
    total = 0
    for _ in repeat(None, loops):
        total = (total * 3 + 5) % 7
    return total


def fan(size: int) -> Pipeline:
    if size == 1:
        return Pipeline([node(source, None, "out", name="source")])
    middle = [node(identity, "src", f"m{i}", name=f"n{i}") for i in range(size - 2)]
    return Pipeline(
        [
            node(source, None, "src", name="source"),
            *middle,
            node(gather, [f"m{i}" for i in range(size - 2)], "out", name="sink"),
        ]
    )


def cpu_bound(loops: int) -> Pipeline:
    return Pipeline(
        [node(burn, "params:loops", f"burnt{i}", name=f"burn{i}") for i in range(CPU_NODES)]
    )


def best(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def loops_for(seconds: float) -> int:
    """How many ``burn`` loops take about ``seconds`` on this machine."""
    loops = 100_000
    while (elapsed := best(3, lambda loops=loops: burn(loops))) < 0.05:
        loops *= 4
    return int(loops * seconds / elapsed)


def runners(client: Any) -> dict[str, Callable[[], AbstractRunner]]:
    return {
        "SequentialRunner": SequentialRunner,
        "ThreadRunner": ThreadRunner,
        "ParallelRunner": ParallelRunner,
        "DaskRunner": lambda: DaskRunner(client=client),
    }


def overhead(client: Any, repeats: int) -> None:
    print(f"Scheduling overhead, fan-out/fan-in of trivial nodes ({CPUS} CPUs)")
    header = f"{'runner':<18} {'start':>9}"
    header += "".join(f" {f'{size:,} nodes':>13} {'per node':>10}" for size in SIZES)
    print(header)
    for label, make in runners(client).items():
        one = best(repeats, lambda make=make: make().run(fan(1), DataCatalog()))
        row = f"{label:<18} {one * 1000:>7.1f}ms"
        for size in SIZES:
            pipe = fan(size)
            total = best(repeats, lambda make=make, pipe=pipe: make().run(pipe, DataCatalog()))
            per_node = (total - one) / (size - 1)
            row += f" {total:>12.3f}s {per_node * 1e6:>8.0f}us"
        print(row)


def speed_up(client: Any, repeats: int) -> None:
    loops = loops_for(CPU_SECONDS)
    pipe = cpu_bound(loops)

    def catalog() -> DataCatalog:
        return DataCatalog({"params:loops": MemoryDataset(loops)})

    print(f"\nSpeed-up, {CPU_NODES} CPU-bound nodes of ~{CPU_SECONDS}s ({CPUS} CPUs)")
    print(f"{'runner':<18} {'seconds':>8} {'speed-up':>9}")
    baseline = None
    for label, make in runners(client).items():
        seconds = best(repeats, lambda make=make: make().run(pipe, catalog()))
        baseline = baseline or seconds
        print(f"{label:<18} {seconds:>8.2f} {baseline / seconds:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=CPUS, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        overhead(client, args.repeats)
        speed_up(client, max(1, args.repeats - 1))


if __name__ == "__main__":
    main()
