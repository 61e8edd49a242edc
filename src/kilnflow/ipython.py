"""IPython and Jupyter: ``%load_ext kilnflow.ipython``, then ``%reload_kilnflow``.

Loading the extension inside a project folder loads the project at once.
``%reload_kilnflow [PATH | PACKAGE] [--env ENV] [--params k=v,...]``
bootstraps the project at PATH (or the one holding the working directory),
or configures an installed PACKAGE when there is no project folder, re-imports
its code so edits take effect, and puts ``session``, ``context``,
``catalog``, ``pipelines`` and ``params`` into the notebook's namespace.
Kilnflow's logs (node progress) and the project's own loggers show in the
notebook.
"""

from __future__ import annotations

import argparse
import functools
import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from kilnflow.session import Session

__all__ = ["load_ipython_extension", "reload_kilnflow", "unload_ipython_extension"]


class _CellHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the current ``sys.stderr``, which a kernel routes to the running cell."""

    def __init__(self) -> None:
        super().__init__()
        from kilnflow._redact import RedactingFormatter

        self.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        self.stream = sys.stderr
        super().emit(record)


_handler = _CellHandler()
#: Loggers the extension shows in the notebook, with the level each had before.
_shown: dict[str, int] = {}


def _show_logs(name: str) -> None:
    if name in _shown:
        return
    logger = logging.getLogger(name)
    _shown[name] = logger.level
    logger.addHandler(_handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%reload_kilnflow``; inside a project folder, load the project too."""
    from kilnflow.project import find_project_root

    ipython.register_magic_function(_magic, magic_kind="line", magic_name="reload_kilnflow")
    _show_logs("kilnflow")
    if find_project_root(Path.cwd()) is not None:
        reload_kilnflow("", ipython)
    else:
        print(
            "Kilnflow loaded: run %reload_kilnflow PATH for a project folder, or "
            "%reload_kilnflow PACKAGE for an installed project."
        )


def unload_ipython_extension(ipython: Any) -> None:
    """Stop showing logs in the notebook (``%unload_ext kilnflow.ipython``)."""
    del ipython
    for name, level in _shown.items():
        logger = logging.getLogger(name)
        logger.removeHandler(_handler)
        logger.setLevel(level)
    _shown.clear()


def _magic(line: str) -> None:
    from IPython import get_ipython

    reload_kilnflow(line, get_ipython())


_USAGE = "usage: %reload_kilnflow [PATH | PACKAGE] [--env ENV] [--params k=v,...]"


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
    from kilnflow.project import (
        bootstrap_project,
        configure_project,
        forget_project_code,
        package_name,
        pipelines,
        read_metadata,
    )

    arguments = _arguments(line)
    extra_params = _extra_params(arguments.params)
    root, package = _target(arguments.path)
    previous = ipython.user_ns.get("session")
    if previous is not None and hasattr(previous, "close"):
        previous.close()
    if root is not None:
        forget_project_code(read_metadata(root).package_name)
        bootstrap_project(root)
    else:
        assert package is not None
        forget_project_code(package)
        configure_project(package)
    _show_logs(package_name())
    session = _notebook_session().create(
        env=arguments.env, extra_params=extra_params, save_on_close=False
    )
    context = session.load_context()
    injected = {
        "session": session,
        "context": context,
        "catalog": context.catalog,
        "pipelines": dict(pipelines),
        "params": context.params,
    }
    ipython.push(injected)
    where = f"from {root}" if root is not None else "installed package"
    print(
        f"Kilnflow project {session.package_name} loaded ({where}, env: "
        f"{session.env or 'default'}); defined {', '.join(injected)}."
    )
    return injected


def _target(argument: str | None) -> tuple[Path | None, str | None]:
    """(project folder, None) for a path, (None, package) for an installed package."""
    import importlib.util

    from kilnflow.errors import ProjectError
    from kilnflow.project import find_project_root

    start = Path(argument).expanduser() if argument else Path.cwd()
    root = find_project_root(start.resolve())
    if root is not None:
        return root, None
    if argument and argument.replace(".", "_").isidentifier() and not start.exists():
        try:
            found = importlib.util.find_spec(argument) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return None, argument
    raise ProjectError(
        f"No Kilnflow project in {start} or its parents, and no installed package of that "
        "name: pass the project folder (%reload_kilnflow ~/work/my-project) or an installed "
        "project's package (%reload_kilnflow my_project)."
    )


@functools.cache
def _notebook_session() -> type[Session]:
    from kilnflow.session import Session

    class NotebookSession(Session):
        """A session whose errors about running again point to ``%reload_kilnflow``."""

        new_session_hint = "call %reload_kilnflow for a new session"

    return NotebookSession


def __dir__() -> list[str]:
    return __all__
