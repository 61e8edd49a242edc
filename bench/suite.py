"""Kilnflow against Kedro, side by side: ``python3 bench/suite.py [--quick] [--json out.json]``.

One command from a clean checkout, with only Python 3.11+ and the package
index. Everything it builds lives under ``.bench/`` (git-ignored) and is
reused while it is still valid (a marker file per environment records what
it was built from), so the first run spends a few minutes setting up and
later runs go straight to measuring:

- ``venv-kilnflow``: Kilnflow installed from this checkout (not editable);
  reinstalled when ``src/``, ``templates/`` or ``pyproject.toml`` change.
- ``venv-kedro``: ``kedro==1.7.0`` and ``kedro-datasets[json,text]``.
- ``projects/``: one project per framework with the same pipelines and the
  same data. Kilnflow's comes from ``kilnflow new --no-example``, Kedro's from
  ``kedro new --tools none --example n`` (Kedro's own template, rendered by
  Kedro). Each gets the same ``nodes.py`` and a registry that builds only the
  pipeline asked for, by name: ``chain_N`` (N trivial nodes in a line),
  ``fan_N`` (one source, N-2 parallel nodes, one sink) for N in 10, 100,
  1,000, 5,000, 10,000; ``cpu_8`` (8 CPU-bound nodes of ~0.5 s),
  ``files`` (read a JSON file, 3 nodes, write JSON and text) and
  ``realistic`` (a 10,000-row CSV through pandas features into four
  scikit-learn models trained side by side, pickled, scored and compared;
  pandas and scikit-learn are installed into both venvs; each node imports
  them when it runs), and ``realistic_top``, the same steps taken from a
  module that imports them at its top, as most projects write it. Each project
  is its own git repository, packaged with its framework's command and
  installed (without dependencies) into its framework's venv.
- ``fresh-kilnflow`` / ``fresh-kedro``: fresh venvs holding only a packaged
  project, Kilnflow's installed offline from a local wheelhouse of Kilnflow
  and its dependencies, Kedro's from the index, to count installed packages.

Every sample is a fresh process. Each case runs Kilnflow and Kedro
alternately (A B A B ...) after one warm-up run each (skipped for runs that
take seconds), and reports the median, min-max and peak RSS (``os.wait4``
rusage: the largest process of the sample's process tree, including
processes it leaves to end after it, such as a fork server and its workers,
which the suite adopts as their reaper on Linux) and the ratio
Kedro/Kilnflow. A small launcher (``kfbench/launch.py``) starts, times and
reads each sample, so that the suite's own size never counts in its RSS.
In-process cases time ``bootstrap_project`` + session create + run + close
inside the child, with each framework's own Python API and default runner
options. Kedro's slowest runs (5,000 and 10,000 nodes,
ParallelRunner on 1,000 nodes: minutes each) run once, and not at all with
``--quick`` (n/a); its 10,000-node runs and its ParallelRunner on 1,000
nodes are stopped after ``--kedro-cap`` seconds and reported as a lower
bound (">"). The last table checks every target of the benchmark
issue against the measured ratios. Timing output goes to stdout, progress to
stderr; ``--json`` writes every sample.

Telemetry is off for Kedro (``KEDRO_DISABLE_TELEMETRY=1``, ``DO_NOT_TRACK=1``);
packaged Kilnflow runs record their sessions under ``.bench/home``.

The parts live in ``bench/kfbench/``: ``sources`` (what both projects hold),
``projects`` (venvs and set-up), ``measure`` (samples and cases), ``cases``,
``checks`` (one-off checks), ``report`` (table and targets) and ``child``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kfbench.cases import Plan, build_cases
from kfbench.checks import calibrate, fresh_counts, loaded_modules, offline_package
from kfbench.measure import adopt_orphans, run_case
from kfbench.projects import FRAMEWORKS, KEDRO_PINS, log, prepare
from kfbench.report import (
    TABLE_HEADER,
    case_lines,
    evaluate,
    extra_lines,
    meta,
    partial_targets,
    target_lines,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no Kedro >1,000")
    parser.add_argument("--json", type=Path, help="write every sample to this JSON file")
    parser.add_argument(
        "--kedro-cap",
        type=float,
        default=60.0,
        help="stop Kedro's 10,000-node and 1,000-node parallel runs after this many "
        "seconds, reported as a lower bound (0: no cap; default 60)",
    )
    parser.add_argument("--only", help="run only cases whose id starts with this (debugging)")
    args = parser.parse_args(argv)
    if not hasattr(os, "wait4"):
        raise SystemExit("bench/suite.py needs a POSIX system (os.wait4).")

    started = time.perf_counter()
    # SIGTERM stops the suite as Ctrl-C does, so the sample under way is ended too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    adopt_orphans()
    setup = prepare()
    plan = Plan(quick=args.quick, kedro_cap=args.kedro_cap)
    loops = calibrate()
    info = meta(setup, plan, loops)
    log(f"[set-up] ready after {time.perf_counter() - started:.0f} s")
    header = (
        f"Kilnflow {info['kilnflow_version']} (commit {info['git_commit']}"
        f"{', dirty tree ' + setup.tree if info['git_dirty'] else ''}) vs "
        f"{KEDRO_PINS[0]} | Python {info['python']}, {info['cpus']} CPUs | "
        f"{'quick' if plan.quick else 'full'} run, {info['date']}"
    )
    print(header)
    print(
        "Medians of alternating runs (A B A B ...) after a warm-up, each in a fresh process; "
        "'>' marks a capped Kedro run (lower bound).\n",
        flush=True,
    )

    cases = build_cases(setup, plan, loops)
    if args.only:
        cases = [case for case in cases if case.id.startswith(args.only)]
    print(TABLE_HEADER, flush=True)
    for index, case in enumerate(cases):
        run_case(case)
        print("\n".join(case_lines(case, cases[index - 1] if index else None)), flush=True)
    log("[run] module lists, fresh venvs, packaging without network")
    extra = {
        "modules": {
            "kilnflow": {
                "import kilnflow": loaded_modules(setup.kilnflow, "import kilnflow"),
                "import kilnflow.cli": loaded_modules(setup.kilnflow, "import kilnflow.cli"),
            },
            "kedro": {
                "import kedro": loaded_modules(setup.kedro, "import kedro"),
                "import kedro.framework.cli": loaded_modules(
                    setup.kedro, "import kedro.framework.cli"
                ),
            },
        },
        "fresh_venv": fresh_counts(setup),
        "offline_package": offline_package(setup),
    }
    by_id = {case.id: case for case in cases}
    targets = partial_targets(by_id) if args.only else evaluate(by_id, extra)
    elapsed = time.perf_counter() - started
    lines = [*extra_lines(extra), ""]
    if targets:
        lines += target_lines(targets)
    lines.append(f"\nTotal time {elapsed / 60:.1f} min (set-up included).")
    print("\n".join(lines))
    if args.json:
        document = {
            "meta": {**info, "total_seconds": round(elapsed, 1)},
            "cases": [
                {
                    "id": case.id,
                    "group": case.group,
                    "title": case.title,
                    "ratio_kedro_over_kilnflow": case.ratio(),
                    "ratio_is_lower_bound": case.lower_bound("kedro"),
                    **{
                        framework: {
                            "command": case.sides[framework].command,
                            "skipped": case.sides[framework].skipped,
                            "median_seconds": case.median(framework),
                            "samples": [s.as_json() for s in case.samples.get(framework, [])],
                        }
                        for framework in FRAMEWORKS
                    },
                }
                for case in cases
            ],
            "extra": extra,
            "targets": [vars(target) for target in targets],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("bench/suite.py stopped; the sample under way was ended.")
