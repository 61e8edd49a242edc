"""The ``kilnflow`` command: a group whose subcommands load on first use.

Only this module turns exceptions into exit codes; everything below raises.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from kilnflow._version import __version__
from kilnflow.cli._commands import COMMANDS

__all__ = ["cli", "main", "report_errors"]


class _LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute, _ = target
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="kilnflow")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Kilnflow: data-pipeline projects that run the same from source and as a wheel."""
    # Imported here, not at the top: ``kilnflow --help`` never gets this far, and
    # importing logging would cost it more than all of Kilnflow's own modules.
    from kilnflow.cli._logging import configure_logging, verbosity_of

    verbosity = verbosity_of(verbose, quiet)
    ctx.ensure_object(dict)["verbosity"] = verbosity
    configure_logging(verbosity)


def report_errors(command: click.Command, argv: Sequence[str] | None, prog_name: str) -> Any:
    """Invoke ``command``; turn failures into one line on stderr and an exit code.

    Called with explicit ``argv`` (from Python, a notebook, a task), it returns
    the command's result, such as a run's outputs. Called as a script
    (``argv`` is None) it returns None, because console-script wrappers pass
    the return value to ``sys.exit``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or "-v" in args
    try:
        result = command.main(args, prog_name=prog_name, standalone_mode=False, obj={"argv": args})
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and SIGTERM, see cli/_signals.py) into Abort.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted(exc.__cause__, script=argv is None)
        click.echo("Aborted.", err=True)
        raise SystemExit(130) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        _interrupted(exc, script=argv is None)
    except Exception as exc:
        from kilnflow._redact import Redactor
        from kilnflow.errors import KilnflowError

        # Messages quote paths, URLs and values: stderr often ends up in CI logs.
        rule = Redactor()
        secrets = rule.argument_secrets(args)
        if verbose:
            import traceback

            click.echo(rule.text(traceback.format_exc(), secrets), err=True, nl=False)
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, KilnflowError):
            message = f"{type(exc).__name__}: {message}"
            if not verbose:
                message += " (run with --verbose for the traceback)"
        click.echo(f"Error: {rule.text(message, secrets)}", err=True)
        raise SystemExit(1) from None
    if argv is not None:
        return result
    if isinstance(result, int) and result:
        raise SystemExit(result)
    return None


def _interrupted(error: KeyboardInterrupt, *, script: bool) -> NoReturn:
    """Say which signal stopped the command and exit with its status (130, 143)."""
    from kilnflow.cli._signals import exit_interrupted
    from kilnflow.errors import Interrupted

    name = error.signal_name if isinstance(error, Interrupted) else "SIGINT"
    click.echo(f"Interrupted by {name}.", err=True)
    if script:
        exit_interrupted(error)
    raise SystemExit(error.exit_code if isinstance(error, Interrupted) else 130) from None


def main(argv: Sequence[str] | None = None) -> Any:
    """Run the ``kilnflow`` command with ``argv`` (default: this process's arguments)."""
    return report_errors(cli, argv, "kilnflow")
