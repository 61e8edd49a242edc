"""IPython and Jupyter: ``%load_ext kilnflow.ipython``, then ``%reload_kilnflow``.

``%reload_kilnflow [PATH] [--env ENV] [--params k=v,...]`` bootstraps the
project at PATH (or the one holding the working directory), re-imports its
code so edits take effect, and puts ``session``, ``context``, ``catalog``,
``pipelines`` and ``params`` into the notebook's namespace.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["load_ipython_extension", "reload_kilnflow"]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%reload_kilnflow`` with IPython."""
    ipython.register_magic_function(_magic, magic_kind="line", magic_name="reload_kilnflow")


def _magic(line: str) -> None:
    from IPython import get_ipython

    reload_kilnflow(line, get_ipython())


_USAGE = "usage: %reload_kilnflow [PATH] [--env ENV] [--params k=v,...]"


class _Parser(argparse.ArgumentParser):
    """Raises on bad arguments: argparse would print to stderr and exit the kernel."""

    def error(self, message: str) -> NoReturn:
        from kilnflow.errors import ProjectError

        raise ProjectError(f"%reload_kilnflow: {message}; {_USAGE}.")


def _arguments(line: str) -> argparse.Namespace:
    from kilnflow.errors import ProjectError

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ProjectError(f"%reload_kilnflow {line}: {exc}; {_USAGE}.") from None
    parser = _Parser(prog="%reload_kilnflow", add_help=False)
    parser.add_argument("path", nargs="?", default=None)
    parser.add_argument("--env", "-e", default=None)
    parser.add_argument("--params", action="append", default=[])
    return parser.parse_args(words)


def _extra_params(values: list[str]) -> dict[str, Any]:
    from kilnflow._pairs import parse_pairs
    from kilnflow.errors import ProjectError

    try:
        return parse_pairs(values, "--params")
    except ValueError as exc:
        raise ProjectError(f"%reload_kilnflow --params: {exc}") from None


def reload_kilnflow(line: str, ipython: Any) -> dict[str, Any]:
    """Bootstrap (again) and inject the project's objects; return what was injected."""
    from kilnflow.errors import ProjectError
    from kilnflow.project import bootstrap_project, find_project_root, pipelines
    from kilnflow.session import Session

    arguments = _arguments(line)
    extra_params = _extra_params(arguments.params)
    start = Path(arguments.path).expanduser() if arguments.path else Path.cwd()
    root = find_project_root(start.resolve())
    if root is None:
        raise ProjectError(
            f"No Kilnflow project in {start} or its parents: pass the project folder, "
            "e.g. %reload_kilnflow ~/work/my-project."
        )
    previous = ipython.user_ns.get("session")
    if isinstance(previous, Session):
        previous.close()
    _forget_project_modules(root)
    bootstrap_project(root)
    session = Session.create(env=arguments.env, extra_params=extra_params, save_on_close=False)
    context = session.load_context()
    injected = {
        "session": session,
        "context": context,
        "catalog": context.catalog,
        "pipelines": dict(pipelines),
        "params": context.params,
    }
    ipython.push(injected)
    print(
        f"Kilnflow project {session.package_name} loaded (env: {session.env or 'default'}); "
        f"defined {', '.join(injected)}."
    )
    return injected


def _forget_project_modules(root: Path) -> None:
    """Drop the project's modules from ``sys.modules`` so edited code is imported anew."""
    from kilnflow.project import read_metadata

    package = read_metadata(root).package_name
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[name]


def __dir__() -> list[str]:
    return __all__
