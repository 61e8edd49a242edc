"""The table, the targets of the benchmark issue, and run metadata."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass
from typing import Any

from kfbench.cases import Plan
from kfbench.measure import Case
from kfbench.projects import CPU_NODES, FRAMEWORKS, HEAVY_MODULES, KEDRO_PINS, REPO, Setup, call


def fmt_time(seconds: float | None, lower: bool = False) -> str:
    if seconds is None:
        return "n/a"
    text = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return f">{text}" if lower else text


def fmt_side(case: Case, framework: str) -> str:
    side = case.sides[framework]
    if side.skipped:
        return "n/a (skipped)"
    error = case.error(framework)
    if error:
        return "FAILED"
    good = case.good(framework)
    median = case.median(framework)
    lower = case.lower_bound(framework)
    spread = ""
    if len(good) > 1:
        low, high = min(s.seconds for s in good), max(s.seconds for s in good)
        spread = f" [{fmt_time(low)}..{fmt_time(high)}]"
    rss = max(s.rss_mb for s in good)
    return f"{fmt_time(median, lower)}{spread} {rss:.0f}MB"


def fmt_ratio(case: Case) -> str:
    ratio = case.ratio()
    if ratio is None:
        return "n/a"
    return f"{'>' if case.lower_bound('kedro') else ''}{ratio:.1f}x"


TABLE_HEADER = (
    f"{'case':<18} {'Kilnflow: median [min..max] peak RSS':<40} "
    f"{'Kedro: median [min..max] peak RSS':<40} Kedro/Kilnflow"
)


def case_lines(case: Case, previous: Case | None) -> list[str]:
    lines = [f"-- {case.group}"] if previous is None or previous.group != case.group else []
    lines.append(f"   {case.title}")
    lines.append(
        f"{case.id:<18} {fmt_side(case, 'kilnflow'):<40} "
        f"{fmt_side(case, 'kedro'):<40} {fmt_ratio(case)}"
    )
    for framework in FRAMEWORKS:
        if case.error(framework):
            lines.append(f"   {framework} failed: {case.error(framework)}")
    return lines


@dataclass
class Target:
    name: str
    need: str
    measured: str
    status: str  # PASS, FAIL or n/a


def ratio_target(cases: dict[str, Case], case_id: str, need: float, name: str) -> Target:
    case = cases[case_id]
    ratio = case.ratio()
    if ratio is None:
        return Target(name, f">= {need:g}x", fmt_ratio(case), "n/a")
    if case.lower_bound("kedro") and ratio < need:
        return Target(name, f">= {need:g}x", fmt_ratio(case), "n/a")
    return Target(name, f">= {need:g}x", fmt_ratio(case), "PASS" if ratio >= need else "FAIL")


def realistic_targets(cases: dict[str, Case]) -> list[Target]:
    """ParallelRunner on a real workload: worth using on 2 cores, and ahead of Kedro's."""
    seq, par = (
        cases["real.sequential"].median("kilnflow"),
        cases["real.parallel"].median("kilnflow"),
    )
    name = "realistic project: ParallelRunner speed-up over SequentialRunner"
    if seq and par:
        speed_up = Target(name, ">= 1.0x", f"{seq / par:.2f}x", "PASS" if seq >= par else "FAIL")
    else:
        speed_up = Target(name, ">= 1.0x", "n/a", "n/a")
    versus = ratio_target(
        cases, "real.parallel", 1.5, "realistic project: ParallelRunner faster than Kedro's"
    )
    floor = cases.get("real.imports")
    if floor is not None:
        # What each run spends beyond importing its nodes' libraries once, which none can skip.
        beyond = []
        for framework in FRAMEWORKS:
            run, imports = cases["real.parallel"].median(framework), floor.median(framework)
            if run is None or imports is None:
                break
            beyond.append(f"{framework} {fmt_time(run - imports)}")
        else:
            versus.measured += f" (beyond imports: {', '.join(beyond)})"
    return [speed_up, versus]


def partial_targets(cases: dict[str, Case]) -> list[Target]:
    """The targets a partial run (``--only``) can judge: those whose cases all ran."""
    if {"real.sequential", "real.parallel"} <= set(cases):
        return realistic_targets(cases)
    return []


def memory_target(cases: dict[str, Case], case_id: str, limit_mb: float) -> Target:
    """Peak RSS of Kilnflow's largest sample of a case, against an absolute limit."""
    good = cases[case_id].good("kilnflow")
    name = f"peak memory, {case_id} (whole run)"
    if not good:
        return Target(name, f"< {limit_mb:g} MB", "n/a", "n/a")
    peak = max(sample.rss_mb for sample in good)
    return Target(
        name, f"< {limit_mb:g} MB", f"{peak:.0f} MB", "PASS" if peak < limit_mb else "FAIL"
    )


def evaluate(cases: dict[str, Case], extra: dict[str, Any]) -> list[Target]:
    targets = [
        ratio_target(cases, "cli.help", 10, "kilnflow --help faster than kedro --help"),
    ]
    heavy = extra["modules"]["kilnflow"]["import kilnflow"]["heavy"]
    targets.append(
        Target(
            f"import kilnflow loads no {'/'.join(HEAVY_MODULES)}",
            "none",
            ", ".join(heavy) or "none",
            "FAIL" if heavy else "PASS",
        )
    )
    targets += [
        ratio_target(cases, "e2e.project", 8, "end-to-end 10 nodes, project mode, faster"),
        ratio_target(cases, "e2e.packaged", 8, "end-to-end 10 nodes, packaged, faster"),
    ]
    for shape in ("chain", "fan"):
        small, big = cases[f"seq.{shape}_1000"], cases[f"seq.{shape}_10000"]
        kf_small, kf_big = small.median("kilnflow"), big.median("kilnflow")
        if kf_small and kf_big:
            growth = kf_big / kf_small
            targets.append(
                Target(
                    f"sequential, 1,000 -> 10,000 nodes ({shape}): growth",
                    "<= 12x",
                    f"{growth:.1f}x",
                    "PASS" if growth <= 12 else "FAIL",
                )
            )
        else:
            targets.append(Target(f"sequential growth ({shape})", "<= 12x", "n/a", "n/a"))
    targets += [
        ratio_target(cases, "cli.chain_1000", 20, "kilnflow run, 1,000-node chain, faster"),
        ratio_target(cases, "cli.chain_5000", 100, "kilnflow run, 5,000-node chain, faster"),
        ratio_target(cases, "parallel.fan_100", 10, "ParallelRunner, 100 trivial nodes, faster"),
    ]
    seq, par = cases["cpu.sequential"].median("kilnflow"), cases["cpu.parallel"].median("kilnflow")
    cpus = os.cpu_count() or 1
    if seq and par:
        speed_up = seq / par
        targets.append(
            Target(
                f"ParallelRunner speed-up, {CPU_NODES} CPU-bound nodes, {cpus} CPUs",
                ">= 1.7x",
                f"{speed_up:.2f}x",
                "PASS" if speed_up >= 1.7 else "FAIL",
            )
        )
    else:
        targets.append(Target("ParallelRunner speed-up", ">= 1.7x", "n/a", "n/a"))
    targets += realistic_targets(cases)
    targets.append(memory_target(cases, "seq.chain_10000", 100))
    package = ratio_target(cases, "package", 5, "kilnflow package faster than kedro package")
    offline = extra["offline_package"]
    if offline.get("checked"):
        kf_ok = offline["kilnflow"]["ok"]
        package.name += ", offline"
        package.measured += f", offline {'ok' if kf_ok else 'FAILED'}"
        if not kf_ok:
            package.status = "FAIL"
    else:
        package.measured += ", offline not checked"
    targets.append(package)
    fresh = extra["fresh_venv"]
    share = fresh["kilnflow"]["packages"] / fresh["kedro"]["packages"]
    targets.append(
        Target(
            "fresh venv + packaged project: packages, share of Kedro's",
            "<= 1/4",
            f"{fresh['kilnflow']['packages']}/{fresh['kedro']['packages']} = {share:.2f}",
            "PASS" if share <= 0.25 else "FAIL",
        )
    )
    return targets


def extra_lines(extra: dict[str, Any]) -> list[str]:
    modules, fresh, offline = extra["modules"], extra["fresh_venv"], extra["offline_package"]
    lines = ["-- 6 modules and installs"]
    for framework in FRAMEWORKS:
        for label, data in modules[framework].items():
            lines.append(
                f"   {label:<34} {data['count']:>4} modules, heavy: "
                f"{', '.join(data['heavy']) or 'none'}"
            )
    for framework in FRAMEWORKS:
        lines.append(
            f"   fresh venv + packaged {framework:<11} {fresh[framework]['packages']:>4} packages, "
            f"{fresh[framework]['site_packages_mb']:.0f} MB site-packages"
        )
    if offline.get("checked"):
        for framework in FRAMEWORKS:
            result = offline[framework]
            state = "ok" if result["ok"] else f"FAILED ({result['error']})"
            lines.append(f"   {framework} package, no network: {state}, {result['seconds']:.1f} s")
    else:
        lines.append(f"   packaging without network: not checked, {offline['why']}")
    return lines


def target_lines(targets: list[Target]) -> list[str]:
    width = max([24, *(len(t.measured) for t in targets)])
    lines = [f"{'target (ratios: Kedro/Kilnflow)':<66} {'need':<8} {'measured':<{width}} result"]
    lines += [f"{t.name:<66} {t.need:<8} {t.measured:<{width}} {t.status}" for t in targets]
    failed = [t.name for t in targets if t.status == "FAIL"]
    unmeasured = [t.name for t in targets if t.status == "n/a"]
    summary = f"{len(targets) - len(failed) - len(unmeasured)} of {len(targets)} targets hold"
    if unmeasured:
        summary += f"; not measured in this run: {'; '.join(unmeasured)}"
    if failed:
        summary += f"; FAILING: {'; '.join(failed)}"
    lines.append(summary)
    return lines


def meta(setup: Setup, plan: Plan, loops: int) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    version = call(
        [setup.kilnflow.python, "-c", "import kilnflow; print(kilnflow.__version__)"]
    ).strip()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "kilnflow_version": version,
        "kilnflow_tree": setup.tree,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
        "kedro_pins": list(KEDRO_PINS),
        "quick": plan.quick,
        "kedro_cap_seconds": plan.kedro_cap,
        "cpu_loops": loops,
    }
