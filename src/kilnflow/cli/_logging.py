"""Logging for commands: users' own records visible, set up only when a command runs.

Importing Kilnflow configures nothing, so a library user's logging is left
alone. A command (``kilnflow ...``, ``python -m <package>``) calls
:func:`configure_logging` twice: once when it starts, with Kilnflow's
default, and again for a run once the project's configuration is known, so
``conf/logging.yml`` (or ``$KILNFLOW_LOGGING_CONFIG``) takes over.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kilnflow._redact import RedactingFormatter, redact_handler_output
from kilnflow.errors import ConfigError

if TYPE_CHECKING:
    from kilnflow.project import ConfSource

__all__ = ["LOGGING_CONFIG_ENV", "QUIET", "VERBOSE", "configure_logging", "verbosity_of"]

#: Environment variable naming a logging YAML file that replaces ``conf/logging.yml``.
LOGGING_CONFIG_ENV = "KILNFLOW_LOGGING_CONFIG"
#: Verbosity given by ``-q/--quiet``: warnings and errors only.
QUIET = -1
#: Verbosity given by ``-v/--verbose``: debug records of every logger.
VERBOSE = 1

_HANDLER_NAME = "kilnflow"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_LEVELS = {QUIET: logging.WARNING, 0: logging.INFO, VERBOSE: logging.DEBUG}


def verbosity_of(verbose: bool, quiet: bool, ctx: click.Context | None = None) -> int:
    """``-v``/``-q`` as one number, joined with what the ``kilnflow`` group was given."""
    if verbose and quiet:
        raise click.UsageError("-v/--verbose and -q/--quiet contradict each other; pass one.")
    verbosity = VERBOSE if verbose else QUIET if quiet else 0
    obj = ctx.find_root().obj if ctx is not None else None
    if not verbosity and isinstance(obj, dict):
        verbosity = obj.get("verbosity", 0)
    return verbosity


def configure_logging(verbosity: int = 0, conf_source: ConfSource | None = None) -> None:
    """Set up logging for a command at ``verbosity`` (QUIET, 0 or VERBOSE).

    A logging file (``$KILNFLOW_LOGGING_CONFIG``, else ``logging.yml`` at the
    top of ``conf_source``) is applied with :func:`logging.config.dictConfig`;
    ``-q``/``-v`` then lower or raise its levels. Without one, the root
    logger gets one handler at INFO, so records of every logger, the
    project's included, are shown with time, level and logger name.
    """
    level = _LEVELS[max(QUIET, min(VERBOSE, verbosity))]
    config = _file_config(conf_source)
    if config is None:
        _configure_default(level)
        return
    _remove_default_handler()
    _apply(*config)
    if verbosity:
        _force_level(level)


def _logging_file(conf_source: ConfSource | None) -> tuple[str, bytes] | None:
    """``(how to name it, its bytes)`` of the logging file to apply, if any."""
    override = os.environ.get(LOGGING_CONFIG_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{LOGGING_CONFIG_ENV}={override} is not a file; point it at a logging YAML "
                "file or unset it."
            )
        return str(path), path.read_bytes()
    if conf_source is None:
        return None
    if isinstance(conf_source, (str, os.PathLike)):
        root = Path(conf_source)
        if not root.is_dir():  # an archive: its logging is set with the variable instead
            return None
        candidate = root / "logging.yml"
        return (str(candidate), candidate.read_bytes()) if candidate.is_file() else None
    packaged = conf_source / "logging.yml"
    if not packaged.is_file():
        return None
    return f"logging.yml packaged in {conf_source}", packaged.read_bytes()


def _file_config(conf_source: ConfSource | None) -> tuple[str, dict[str, Any]] | None:
    """The logging file's configuration; a file that is all comments counts as none."""
    found = _logging_file(conf_source)
    if found is None:
        return None
    where, data = found
    # The starter's logging.yml is all comments: that needs no YAML parser (PyYAML
    # costs a short run more than everything else it does).
    if all(not line.strip() or line.lstrip().startswith(b"#") for line in data.splitlines()):
        return None
    import yaml

    try:
        config = yaml.safe_load(data)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{where}{line}: invalid YAML ({exc.problem or exc.context}); fix the syntax."
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML; fix the syntax.") from exc
    if config is None:
        return None
    if not isinstance(config, dict):
        raise ConfigError(
            f"{where} must hold a mapping in logging.config.dictConfig's format "
            "(version: 1, handlers:, loggers:, root:); fix or remove the file."
        )
    return where, config


def _apply(where: str, config: dict[str, Any]) -> None:
    """Apply the user's file; its handlers then hide URL passwords as Kilnflow's own do.

    A file handler with a plain formatter would otherwise write a dataset's
    ``s3://key:secret@bucket`` path, quoted in a record or a traceback, to disk.
    """
    import logging.config

    config.setdefault("version", 1)
    # Loggers Kilnflow already created must keep working under the user's configuration.
    config.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"{where} is not a valid logging configuration ({exc}: {cause}); fix it following "
            "logging.config.dictConfig's format, or remove it to get Kilnflow's default."
        ) from exc
    for each in _loggers():
        for handler in each.handlers:
            redact_handler_output(handler)


def _loggers() -> list[logging.Logger]:
    """The root logger and every logger created so far."""
    root = logging.getLogger()
    children = root.manager.loggerDict.values()
    return [root, *(item for item in children if isinstance(item, logging.Logger))]


def _force_level(level: int) -> None:
    """Apply ``-q``/``-v`` over a logging file.

    Quiet raises every level the file set below WARNING; verbose lowers every
    logger and handler to DEBUG, so no level in the file hides a record.
    """
    root = logging.getLogger()
    for each in _loggers():
        if each is root or each.level != logging.NOTSET:
            each.setLevel(level if level == logging.DEBUG else max(level, each.level))
        if level == logging.DEBUG:
            for handler in each.handlers:
                handler.setLevel(level)


def _configure_default(level: int) -> None:
    """One handler on the root logger, unless the host process has its own.

    A notebook, an Airflow worker or a test runner that configured logging
    keeps its handlers; Kilnflow then only sets the level, so records still
    flow to them.
    """
    _remove_default_handler()
    root = logging.getLogger()
    if not root.handlers:
        handler = _terminal_handler() if sys.stderr.isatty() else _plain_handler()
        handler.set_name(_HANDLER_NAME)
        root.addHandler(handler)
    root.setLevel(level)


def _remove_default_handler() -> None:
    root = logging.getLogger()
    for handler in [each for each in root.handlers if each.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()


def _plain_handler() -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(_FORMAT, _DATE_FORMAT))
    return handler


def _terminal_handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True),
        show_path=False,
        markup=False,
        log_time_format="[%X]",
    )
    handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
    return handler
