"""What the suite measures: every case, Kilnflow and Kedro side by side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfbench.measure import Case, Side
from kfbench.projects import CHILD, CPU_NODES, CPU_SECONDS, KD_PACKAGE, KF_PACKAGE, Setup, Venv
from kfbench.sources import REALISTIC_LIBRARIES


def inprocess(framework: str, setup: Setup, pipeline: str, runner: str, **params: Any) -> list[str]:
    venv = setup.kilnflow if framework == "kilnflow" else setup.kedro
    project = setup.kf_project if framework == "kilnflow" else setup.kd_project
    spec = {
        "framework": framework,
        "project": str(project),
        "pipeline": pipeline,
        "runner": runner,
        "params": params,
    }
    return [str(venv.python), str(CHILD), json.dumps(spec)]


@dataclass
class Plan:
    """Repeats and caps for a full or a quick run."""

    quick: bool
    kedro_cap: float

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def build_cases(setup: Setup, plan: Plan, loops: int) -> list[Case]:
    kf, kd = setup.kilnflow, setup.kedro
    kfp, kdp = setup.kf_project, setup.kd_project
    n = plan.n
    cap = plan.kedro_cap or None
    skip_quick = "skipped with --quick (minutes for Kedro)" if plan.quick else None

    def side(venv: Venv, command: Sequence[str | Path], cwd: Path, repeats: int, **kw: Any) -> Side:
        return Side([str(part) for part in command], cwd, venv.bin, repeats, **kw)

    def pair(kf_side: Side, kd_side: Side) -> dict[str, Side]:
        return {"kilnflow": kf_side, "kedro": kd_side}

    run = setup.run_dir
    cases = [
        Case(
            "cli.help",
            "1 CLI start",
            "kilnflow --help | kedro --help (in the project)",
            pair(
                side(kf, [kf.bin / "kilnflow", "--help"], kfp, n(10, 3)),
                side(kd, [kd.bin / "kedro", "--help"], kdp, n(10, 3)),
            ),
        ),
        Case(
            "cli.packaged_help",
            "1 CLI start",
            "python -m <pkg> --help (installed wheels)",
            pair(
                side(kf, [kf.python, "-m", KF_PACKAGE, "--help"], run, n(10, 3)),
                side(kd, [kd.python, "-m", KD_PACKAGE, "--help"], run, n(10, 3)),
            ),
        ),
    ]
    # The two 8x targets are read off runs of a fraction of a second, on machines whose
    # speed drifts from one second to the next: more samples steady their medians.
    e2e = n(15, 3)
    cases += [
        Case(
            "e2e.project",
            "2 end-to-end runs",
            "kilnflow run -p chain_10 | kedro run --pipelines chain_10",
            pair(
                side(kf, [kf.bin / "kilnflow", "run", "-p", "chain_10"], kfp, e2e),
                side(kd, [kd.bin / "kedro", "run", "--pipelines", "chain_10"], kdp, e2e),
            ),
        ),
        Case(
            "e2e.packaged",
            "2 end-to-end runs",
            "python -m <pkg> -p chain_10 (Kedro: --conf-source conf tar.gz)",
            pair(
                side(kf, [kf.python, "-m", KF_PACKAGE, "-p", "chain_10"], run, e2e),
                side(
                    kd,
                    [
                        kd.python,
                        "-m",
                        KD_PACKAGE,
                        "--pipelines",
                        "chain_10",
                        "--conf-source",
                        setup.kd_conf_archive,
                    ],
                    run,
                    e2e,
                ),
            ),
        ),
        Case(
            "e2e.files",
            "2 end-to-end runs",
            "files pipeline (JSON in, 3 nodes, JSON + text out), project mode",
            pair(
                side(kf, [kf.bin / "kilnflow", "run", "-p", "files"], kfp, n(5, 2)),
                side(kd, [kd.bin / "kedro", "run", "--pipelines", "files"], kdp, n(5, 2)),
            ),
        ),
    ]
    for shape in ("chain", "fan"):
        for size in (100, 1_000, 5_000, 10_000):
            name = f"{shape}_{size}"
            big = size >= 5_000
            kd_side = side(
                kd,
                inprocess("kedro", setup, name, "sequential"),
                kdp,
                1 if big else n(3, 2) if size >= 1_000 else n(5, 3),
                warmup=size < 1_000,
                inner="inprocess",
                timeout=cap if size >= 10_000 else 600.0,
                skipped=skip_quick if big else None,
            )
            cases.append(
                Case(
                    f"seq.{name}",
                    "3 sequential, in-process",
                    f"{name}: bootstrap + session create + run, SequentialRunner",
                    pair(
                        side(
                            kf,
                            inprocess("kilnflow", setup, name, "sequential"),
                            kfp,
                            n(5, 3) if size <= 1_000 else n(3, 2),
                            inner="inprocess",
                        ),
                        kd_side,
                    ),
                )
            )
    for size in (1_000, 5_000):
        big = size >= 5_000
        cases.append(
            Case(
                f"cli.chain_{size}",
                "3 sequential, CLI",
                f"kilnflow run -p chain_{size} | kedro run --pipelines chain_{size}",
                pair(
                    side(
                        kf,
                        [kf.bin / "kilnflow", "run", "-p", f"chain_{size}"],
                        kfp,
                        n(5, 3) if not big else n(3, 2),
                    ),
                    side(
                        kd,
                        [kd.bin / "kedro", "run", "--pipelines", f"chain_{size}"],
                        kdp,
                        1 if big else n(3, 2),
                        warmup=False,
                        timeout=600.0,
                        skipped=skip_quick if big else None,
                    ),
                ),
            )
        )
    for size in (100, 1_000):
        for runner in ("thread", "parallel"):
            slow = size >= 1_000 or runner == "parallel"
            capped = size >= 1_000 and runner == "parallel"
            cases.append(
                Case(
                    f"{runner}.fan_{size}",
                    "4 runners, in-process",
                    f"fan_{size}: {runner.capitalize()}Runner (default workers)",
                    pair(
                        side(
                            kf,
                            inprocess("kilnflow", setup, f"fan_{size}", runner),
                            kfp,
                            n(5, 3) if size < 1_000 else n(3, 2),
                            inner="inprocess",
                        ),
                        side(
                            kd,
                            inprocess("kedro", setup, f"fan_{size}", runner),
                            kdp,
                            1 if capped else n(3, 2),
                            warmup=not slow,
                            inner="inprocess",
                            timeout=cap if capped else 600.0,
                            skipped=skip_quick if capped else None,
                        ),
                    ),
                )
            )
    # Workloads whose runners are compared: case prefix, pipeline, title, runtime params.
    workloads = (
        ("cpu", f"cpu_{CPU_NODES}", f"cpu_{CPU_NODES} (~{CPU_SECONDS} s each)", {"loops": loops}),
        ("real", "realistic", "realistic (pandas + 4 scikit-learn models)", {}),
        ("real_top", "realistic_top", "realistic, libraries imported at the nodes' module top", {}),
    )
    for prefix, pipeline, title, params in workloads:
        for runner in ("sequential", "parallel"):
            cases.append(
                Case(
                    f"{prefix}.{runner}",
                    "4 runners, in-process",
                    f"{title}: {runner.capitalize()}Runner",
                    pair(
                        side(
                            kf,
                            inprocess("kilnflow", setup, pipeline, runner, **params),
                            kfp,
                            n(7, 2),
                            warmup=False,
                            inner="inprocess",
                        ),
                        side(
                            kd,
                            inprocess("kedro", setup, pipeline, runner, **params),
                            kdp,
                            n(7, 2),
                            warmup=False,
                            inner="inprocess",
                        ),
                    ),
                )
            )
    # What no runner can avoid: the training nodes need these libraries in their process.
    floor = [f"import {', '.join(REALISTIC_LIBRARIES)}"]
    cases.append(
        Case(
            "real.imports",
            "4 runners, in-process",
            "realistic: importing its nodes' libraries in a fresh process (the floor under both)",
            pair(
                side(kf, [kf.python, "-c", *floor], run, n(7, 3)),
                side(kd, [kd.python, "-c", *floor], run, n(7, 3)),
            ),
        )
    )
    cases.append(
        Case(
            "package",
            "5 packaging",
            "kilnflow package | kedro package (wheel + conf archive)",
            pair(
                side(kf, [kf.bin / "kilnflow", "package"], kfp, n(5, 2)),
                side(kd, [kd.bin / "kedro", "package"], kdp, n(5, 2)),
            ),
        )
    )
    for case_id, kf_module, kd_module in (
        ("import.package", "kilnflow", "kedro"),
        ("import.cli", "kilnflow.cli", "kedro.framework.cli"),
    ):
        cases.append(
            Case(
                case_id,
                "6 import (python -X importtime: sum of self times, modules added)",
                f"import {kf_module} | import {kd_module}",
                pair(
                    side(
                        kf,
                        [kf.python, "-X", "importtime", "-c", f"import {kf_module}"],
                        run,
                        n(10, 3),
                        inner="importtime",
                    ),
                    side(
                        kd,
                        [kd.python, "-X", "importtime", "-c", f"import {kd_module}"],
                        run,
                        n(10, 3),
                        inner="importtime",
                    ),
                ),
            )
        )
    return cases
