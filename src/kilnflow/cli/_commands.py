"""The ``kilnflow`` group's commands and its help text, in a module without click.

The console script prints :data:`HELP` itself (see ``_entry``) and the click
group (``_main``) loads each command from :data:`COMMANDS` when it is used.
:data:`HELP` is the text click renders from these and the group's options on
a terminal at least 80 columns wide (click wraps at 78 there); a test compares
the two, so a changed command or option shows up as a failing test.
"""

from __future__ import annotations

__all__ = ["COMMANDS", "HELP"]

#: Subcommand name -> (module, attribute, one-line help shown by --help).
COMMANDS = {
    "new": ("kilnflow.cli._new", "new", "Create a new project from the starter template."),
    "run": ("kilnflow.cli._run", "run", "Run a pipeline of the project in this folder."),
    "info": ("kilnflow.cli._info", "info", "Show Kilnflow, the project and installed projects."),
    "pipeline": ("kilnflow.cli._info", "pipeline", "List, describe, create and delete pipelines."),
    "catalog": ("kilnflow.cli._info", "catalog", "Inspect the project's data catalog."),
    "session": ("kilnflow.cli._session", "session", "List, show, compare and rerun sessions."),
    "package": ("kilnflow.cli._package", "package", "Build the project's wheel (offline)."),
    "airflow": ("kilnflow.cli._deploy", "airflow", "Deploy the wheel as an Airflow DAG."),
    "docker": ("kilnflow.cli._deploy", "docker", "Write a Dockerfile for the project's wheel."),
    "viz": ("kilnflow.cli._viz", "viz", "Draw a pipeline and its latest run as HTML, or serve it."),
}

#: What click prints for ``kilnflow --help`` on a terminal at least 80 columns wide.
HELP = """\
Usage: kilnflow [OPTIONS] COMMAND [ARGS]...

  Kilnflow: data-pipeline projects that run the same from source and as a
  wheel.

Options:
  -V, --version  Show the version and exit.
  -v, --verbose  Show tracebacks and debug logs.
  -q, --quiet    Show only warnings and errors.
  -h, --help     Show this message and exit.

Commands:
  airflow   Deploy the wheel as an Airflow DAG.
  catalog   Inspect the project's data catalog.
  docker    Write a Dockerfile for the project's wheel.
  info      Show Kilnflow, the project and installed projects.
  new       Create a new project from the starter template.
  package   Build the project's wheel (offline).
  pipeline  List, describe, create and delete pipelines.
  run       Run a pipeline of the project in this folder.
  session   List, show, compare and rerun sessions.
  viz       Draw a pipeline and its latest run as HTML, or serve it.
"""
