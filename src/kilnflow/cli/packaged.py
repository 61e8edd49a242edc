"""The command line of a packaged project: ``python -m <package>``.

It takes the same options as ``kilnflow run`` and runs the configured
package with its packaged configuration, whatever the working directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from kilnflow.cli._main import report_errors
from kilnflow.cli._run import execute_run, invoked_args, run_options

__all__ = ["packaged_command", "run_packaged"]


def packaged_command(package: str) -> click.Command:
    """The click command behind ``python -m <package>``."""

    @click.command(
        name=package,
        context_settings={"help_option_names": ["-h", "--help"]},
        help=f"Run the packaged Kilnflow project {package}; with no options, its "
        "default pipeline with the configuration packaged in the wheel.",
    )
    @run_options
    @click.pass_context
    def command(ctx: click.Context, /, **options: Any) -> dict[str, Any]:
        return execute_run(f"python -m {package}", invoked_args(ctx), options)

    return command


def run_packaged(package: str, argv: Sequence[str] | None = None) -> Any:
    """Run ``package`` (already configured) with command-line ``argv``.

    As a script (``argv`` is None) errors become one line and an exit code.
    Called from Python with a list, it returns the run's outputs and lets
    errors raise, so notebooks and tasks never see ``sys.exit``.
    """
    command = packaged_command(package)
    if argv is None:
        return report_errors(command, None, f"python -m {package}")
    args = list(argv)
    return command.main(args, prog_name=package, standalone_mode=False, obj={"argv": args})


def __dir__() -> list[str]:
    return __all__
