"""What a Dask cluster must have installed for a run, checked before any task is sent.

The scheduler unpickles the task graph, which names the project's node
functions and Kilnflow's classes, and every worker imports them to run the
tasks. Without the same packages there, Dask fails with "Error during
deserialization of the task graph" or "lost dependencies" and never says
which machine lacks what. One call to the scheduler and one to the workers
compare what they have installed with this process.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from kilnflow.errors import RunnerError

if TYPE_CHECKING:
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Pipeline

__all__ = ["check_cluster", "packages_of"]

#: Per package: its version where known, or why it cannot be imported.
Installed = dict[str, tuple[str | None, str | None]]


def packages_of(pipeline: Pipeline, catalog: DataCatalog) -> dict[str, bool]:
    """Top-level packages the tasks name, each with whether its version must match this process's.

    Kilnflow's and the nodes' functions' (the project's code) must be the same
    version everywhere; the packages of dataset classes need only import.
    """
    stdlib = set(sys.stdlib_module_names) | {"builtins", "__main__"}
    exact = {"kilnflow"}
    for node in pipeline.nodes:
        func: Any = node.func
        while isinstance(func, partial):
            func = func.func
        exact.add((getattr(func, "__module__", None) or "builtins").partition(".")[0])
    present = {type(catalog.get(name)).__module__.partition(".")[0] for name in pipeline.datasets()}
    packages = dict.fromkeys(present - stdlib, False)
    packages.update(dict.fromkeys(exact - stdlib, True))
    return dict(sorted(packages.items()))


def _make_probe() -> Callable[[list[str]], Installed]:
    """The function the scheduler and workers run: defined inside, so it is sent by value.

    A machine without Kilnflow must still be able to unpickle it, so it uses
    the standard library only.
    """

    def installed(packages: list[str]) -> Installed:
        import importlib
        import importlib.metadata
        import os

        found: Installed = {}
        for name in packages:
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                found[name] = (None, f"{type(exc).__name__}: {exc}")
                continue
            version = getattr(module, "__version__", None)
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                pass
            else:
                # Installed from that distribution, not run from a source tree beside it.
                where = os.path.realpath(str(distribution.locate_file("")))
                if os.path.realpath(module.__file__ or "").startswith(where + os.sep):
                    version = distribution.version
            found[name] = (None if version is None else str(version), None)
        return found

    return installed


def _install(package: str, version: str | None, exact: bool) -> str:
    """What to pip install for ``package``: the wheel ``kilnflow package`` builds, if exact."""
    if not exact:
        return package
    name = re.sub(r"[-_.]+", "_", package).lower()
    return f"{name}-{version or '*'}-py3-none-any.whl"


def _note(
    lacking: dict[str, list[str]],
    where: str,
    found: Installed,
    expected: Installed,
    packages: Mapping[str, bool],
    installs: dict[str, str],
) -> None:
    """Add to ``lacking`` (what is wrong -> the machines it is wrong on) what ``where`` lacks."""
    for package, (version, _) in expected.items():
        there, error = found.get(package, (None, "not checked"))
        if error is not None:
            what = f"cannot import {package!r} ({error})"
        elif packages[package] and version is not None and there != version:
            what = f"has {package} {there} where this run has {version}"
        else:
            continue
        lacking.setdefault(what, []).append(where)
        installs[package] = _install(package, version, packages[package])


def check_cluster(client: Any, packages: Mapping[str, bool], *, workers: bool) -> int:
    """Fail before the run when the scheduler (or, with ``workers``, a worker) lacks a package.

    A package is lacking when it cannot be imported there or, for those
    ``packages`` maps to True, is another version than this process's.
    Returns how many workers were checked.
    """
    probe = _make_probe()
    names = list(packages)
    expected = probe(names)
    lacking: dict[str, list[str]] = {}
    installs: dict[str, str] = {}
    found: dict[str, Installed] = {}
    if workers:
        found = client.run(probe, names)
        for address, installed in sorted(found.items()):
            _note(lacking, f"worker {address}", installed, expected, packages, installs)
    else:
        on_scheduler = client.run_on_scheduler(probe, names)
        _note(lacking, "the scheduler", on_scheduler, expected, packages, installs)
    problems = [f"{', '.join(where)} {what}" for what, where in lacking.items()]
    if problems:
        raise RunnerError(
            f"The Dask cluster at {client.scheduler.address} cannot run this pipeline's "
            f"tasks: {'; '.join(problems)}; install the same wheels on the scheduler and on "
            f"every worker (pip install {' '.join(installs.values())}), then run again."
        )
    return len(found)
