"""One-off checks: modules loaded, offline packaging, fresh venv sizes, calibration."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

from kfbench.projects import (
    BENCH,
    CPU_SECONDS,
    HEAVY_MODULES,
    KD_PACKAGE,
    KF_PACKAGE,
    NODES_SOURCE,
    Setup,
    Venv,
    call,
    child_env,
)


def loaded_modules(venv: Venv, statement: str) -> dict[str, Any]:
    """Modules a statement loads, and which of the heavy ones among them."""
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{statement}\n"
        "print('MODULES', json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    output = call([venv.python, "-c", code], cwd=BENCH / "run").splitlines()
    loaded = json.loads(next(line for line in output if line.startswith("MODULES "))[8:])
    tops = {name.partition(".")[0] for name in loaded}
    return {"count": len(loaded), "heavy": [name for name in HEAVY_MODULES if name in tops]}


def offline_package(setup: Setup) -> dict[str, Any]:
    """Package each project with no network at all (a fresh network namespace)."""
    unshare = shutil.which("unshare")
    probe = (
        subprocess.run([unshare or "unshare", "-n", "true"], capture_output=True, check=False)
        if unshare
        else None
    )
    if probe is None or probe.returncode != 0:
        return {"checked": False, "why": "unshare -n is not available (needs root or userns)"}
    results: dict[str, Any] = {"checked": True}
    commands = {
        "kilnflow": (
            [setup.kilnflow.bin / "kilnflow", "package"],
            setup.kf_project,
            setup.kilnflow.bin,
        ),
        "kedro": ([setup.kedro.bin / "kedro", "package"], setup.kd_project, setup.kedro.bin),
    }
    for framework, (command, cwd, bin_dir) in commands.items():
        started = time.perf_counter()
        try:
            done = subprocess.run(
                ["unshare", "-n", *map(str, command)],
                cwd=cwd,
                env=child_env(bin_dir),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            results[framework] = {"ok": False, "seconds": 300.0, "error": "timed out"}
            continue
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        results[framework] = {
            "ok": done.returncode == 0,
            "seconds": round(time.perf_counter() - started, 3),
            "error": None if done.returncode == 0 else " | ".join(tail),
        }
    return results


def fresh_counts(setup: Setup) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    for framework, venv in setup.fresh.items():
        package = KF_PACKAGE if framework == "kilnflow" else KD_PACKAGE
        call([venv.python, "-m", package, "--help"], cwd=setup.run_dir)
        names = venv.package_list()
        counts[framework] = {
            "packages": len(names),
            "site_packages_mb": round(venv.site_packages_mb(), 1),
            "names": names,
        }
    return counts


def calibrate() -> int:
    """How many ``burn`` loops take about CPU_SECONDS here (same interpreter as the venvs).

    The fastest of three timings counts: a busy moment only slows a timing,
    and one slow timing made the nodes of a whole run shorter than meant,
    which shrinks what any runner can gain over running them in turn.
    """
    namespace: dict[str, Any] = {}
    exec(compile(NODES_SOURCE, "nodes.py", "exec"), namespace)
    burn = namespace["burn"]
    loops = 100_000
    while True:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            burn(loops)
            timings.append(time.perf_counter() - started)
        if min(timings) >= 0.1:
            return int(loops * CPU_SECONDS / min(timings))
        loops *= 2
