"""``kilnflow run`` and the options it shares with packaged projects' commands."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from kilnflow.runner import AbstractRunner
    from kilnflow.session import Session

__all__ = [
    "execute_run",
    "invoked_args",
    "parse_params",
    "resolve_runner",
    "run",
    "run_options",
    "split_names",
]

_F = TypeVar("_F", bound=Callable[..., Any])

# Runner names --runner accepts besides a dotted class path.
RUNNERS = {
    "sequential": "kilnflow.runner.SequentialRunner",
    "thread": "kilnflow.runner.ThreadRunner",
    "parallel": "kilnflow.runner.ParallelRunner",
    "dask": "kilnflow.runner.DaskRunner",
}
# Class names as Kedro users write them (-r ParallelRunner) name the same runners.
_RUNNER_CLASSES = {path.rpartition(".")[2]: path for path in RUNNERS.values()}


def split_names(values: Iterable[str]) -> list[str]:
    """Split comma-separated names, keeping commas inside brackets.

    Default node names such as ``join(a,b) -> c`` contain commas, and a
    naive split would break them.
    """
    names: list[str] = []
    for value in values:
        depth, current = 0, ""
        for char in value:
            depth += char in "([{"
            depth -= char in ")]}"
            if char == "," and depth == 0:
                names.append(current.strip())
                current = ""
            else:
                current += char
        names.append(current.strip())
    return [name for name in names if name]


def parse_params(values: Iterable[str], option: str = "--params") -> dict[str, Any]:
    """Parse ``--params key=value,other.key=value`` into runtime parameters.

    ``option`` names the option in error messages (``--runner-args`` too).
    """
    from kilnflow._pairs import parse_pairs

    try:
        return parse_pairs(values, option)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None


def _load_versions(values: Iterable[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for item in split_names(values):
        dataset, sep, version = item.rpartition(":")
        if not sep or not dataset or not version:
            raise click.BadParameter(
                f"{item!r} is not dataset:version; write --load-versions cars:2026...Z-1a2b3c4d.",
                param_hint="'--load-versions'",
            )
        versions[dataset] = version
    return versions


def resolve_runner(
    name: str, max_workers: int | None = None, runner_args: Iterable[str] = ()
) -> AbstractRunner[Any]:
    """Build the runner named on the command line (a short name or a class path).

    ``--max-workers`` and ``--runner-args key=value`` (values read as YAML, so
    ``cluster_args={n_workers: 4}`` is a dict) become keyword arguments.
    """
    import importlib
    import inspect

    from kilnflow.errors import RunnerError, did_you_mean
    from kilnflow.runner import AbstractRunner

    path = RUNNERS.get(name) or _RUNNER_CLASSES.get(name, name)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise RunnerError(
            f"Unknown runner {name!r}.{did_you_mean(name, [*RUNNERS, *_RUNNER_CLASSES])} "
            "Use one of "
            f"{', '.join(RUNNERS)} or the dotted path of an AbstractRunner subclass."
        )
    try:
        runner_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise RunnerError(
            f"Runner {name!r} cannot be imported ({exc}); use one of {', '.join(RUNNERS)} or "
            "the dotted path of an AbstractRunner subclass."
        ) from exc
    if not (isinstance(runner_class, type) and issubclass(runner_class, AbstractRunner)):
        raise RunnerError(f"Runner {name!r} is not a subclass of kilnflow.runner.AbstractRunner.")
    arguments = parse_params(runner_args, option="--runner-args")
    if max_workers is not None:
        arguments["max_workers"] = max_workers
    parameters = inspect.signature(runner_class).parameters
    for key in arguments:
        if key not in parameters:
            given = "--max-workers" if key == "max_workers" else f"--runner-args {key}=..."
            accepted = ", ".join(parameters) or "no arguments"
            raise RunnerError(
                f"Runner {name!r} does not take {given}; {runner_class.__name__} takes "
                f"{accepted}.{did_you_mean(key, parameters)}"
            )
    runner: AbstractRunner[Any] = runner_class(**arguments)
    return runner


def run_options(function: _F) -> _F:
    """The options of ``kilnflow run``, shared with packaged projects' commands."""
    names = "Comma-separated; may be repeated."
    options = [
        click.option("-p", "--pipeline", help="Registered pipeline to run (default: __default__)."),
        click.option(
            "--pipelines",
            multiple=True,
            help=f"Registered pipelines to run together, as one pipeline. {names}",
        ),
        click.option("-e", "--env", help="Configuration environment (default: $KILNFLOW_ENV)."),
        click.option(
            "--params", multiple=True, help="Runtime parameters: key=value,nested.key=value."
        ),
        click.option(
            "-t", "--tags", multiple=True, help=f"Run nodes with any of these tags. {names}"
        ),
        click.option("-n", "--nodes", multiple=True, help=f"Run only these nodes. {names}"),
        click.option("--from-nodes", multiple=True, help=f"Start from these nodes. {names}"),
        click.option("--to-nodes", multiple=True, help=f"Stop after these nodes. {names}"),
        click.option("--from-inputs", multiple=True, help=f"Start from these datasets. {names}"),
        click.option("--to-outputs", multiple=True, help=f"Stop at these datasets. {names}"),
        click.option(
            "--load-versions", multiple=True, help="Versions to load: dataset:version. " + names
        ),
        click.option("--namespace", help="Run only nodes of this namespace."),
        click.option(
            "-r",
            "--runner",
            default="sequential",
            show_default=True,
            help=f"{', '.join(RUNNERS)} (or their class names, e.g. ParallelRunner), or the "
            "dotted path of a runner class.",
        ),
        click.option(
            "--max-workers",
            type=click.IntRange(min=1),
            help="How many nodes may run at once (thread and parallel runners).",
        ),
        click.option(
            "--runner-args",
            "--runner-params",
            "runner_args",
            multiple=True,
            help="Runner arguments: key=value,other=value, e.g. address=tcp://host:8786 for dask.",
        ),
        click.option(
            "--conf-source",
            help="Configuration folder or .tar.gz/.zip archive replacing the project's.",
        ),
        click.option(
            "--only-missing-outputs",
            is_flag=True,
            help="Skip nodes whose persistent outputs all exist (and nodes only they need).",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs."),
        click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def execute_run(command: str, argv: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    """Run the configured project as the options say, recording the command line."""
    from kilnflow._redact import REDACTED, Redactor
    from kilnflow.cli._logging import configure_logging, verbosity_of
    from kilnflow.cli._progress import terminal_progress
    from kilnflow.errors import NodeFailedError
    from kilnflow.project import conf_source, settings
    from kilnflow.runner._signals import stop_signals_interrupt
    from kilnflow.session import Session

    verbosity = verbosity_of(
        bool(options.get("verbose")),
        bool(options.get("quiet")),
        click.get_current_context(silent=True),
    )
    configure_logging(verbosity, conf_source(options.get("conf_source")))
    secret = Redactor(settings.SECRET_NAMES)
    recorded_args = secret.arguments(argv)
    # Bad option values fail here, before a session is recorded for a run that never was.
    runner = resolve_runner(
        options["runner"], options.get("max_workers"), options.get("runner_args") or ()
    )
    extra_params = parse_params(options.get("params") or ())
    pipeline_names = split_names(options.get("pipelines") or ())
    if pipeline_names and options.get("pipeline"):
        raise click.UsageError(
            "--pipeline and --pipelines both name pipelines to run; pass all names to --pipelines."
        )
    run_arguments: dict[str, Any] = {
        "pipeline_name": options.get("pipeline"),
        "pipeline_names": pipeline_names,
        "tags": split_names(options.get("tags") or ()),
        "runner": runner,
        "node_names": split_names(options.get("nodes") or ()),
        "from_nodes": split_names(options.get("from_nodes") or ()),
        "to_nodes": split_names(options.get("to_nodes") or ()),
        "from_inputs": split_names(options.get("from_inputs") or ()),
        "to_outputs": split_names(options.get("to_outputs") or ()),
        "load_versions": _load_versions(options.get("load_versions") or ()),
        "namespace": options.get("namespace"),
        "progress": terminal_progress(),
        "only_missing_outputs": bool(options.get("only_missing_outputs")),
    }
    with (
        stop_signals_interrupt(),
        Session.create(
            env=options.get("env"),
            extra_params=extra_params,
            conf_source=options.get("conf_source"),
            argv=secret.arguments(sys.argv),
        ) as session,
    ):
        session.store["cli"] = {
            "command": command,
            "args": recorded_args,
            "options": {
                **secret.values(options),
                "params": [secret.pairs(value) for value in options.get("params") or ()],
                "runner_args": [secret.pairs(value) for value in options.get("runner_args") or ()],
            },
        }
        # Saved now, so that a run killed midway can still be shown and rerun.
        session.store.save()
        try:
            outputs = session.run(**run_arguments)
        except NodeFailedError as exc:
            hint = resume_command(command, recorded_args, exc.resume_nodes)
            if recorded_args != list(argv):
                hint += f" (give again the values hidden as {REDACTED})"
            click.echo(f"To resume: {hint}", err=True)
            _log_summary(session, failed=True)
            raise
    _log_summary(session, failed=False)
    return outputs


def _log_summary(session: Session, *, failed: bool) -> None:
    """One line closing every run: what ran, how long, and where to find it again."""
    import logging

    store = session.store
    run = store.get("run") or {}
    nodes = len(store.get("node_durations") or {})
    logging.getLogger("kilnflow").log(
        logging.ERROR if failed else logging.INFO,
        "Pipeline %r %s: %d node%s run in %.2fs; session %s recorded in %s.",
        run.get("pipeline_name", "__default__"),
        "failed" if failed else "finished",
        nodes,
        "" if nodes == 1 else "s",
        store.get("run_seconds") or 0.0,
        session.session_id,
        store.location,
    )


def resume_command(command: str, argv: Sequence[str], nodes: Sequence[str]) -> str:
    """The command line that repeats this run from ``nodes`` on."""
    import shlex

    kept: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        if arg == "--from-nodes":
            skip_value = True
            continue
        if arg.startswith("--from-nodes="):
            continue
        kept.append(arg)
    return shlex.join([*shlex.split(command), *kept, "--from-nodes", ",".join(nodes)])


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.pass_context
def run(ctx: click.Context, /, **options: Any) -> dict[str, Any]:
    """Run a pipeline of the project found in this folder or a parent."""
    from kilnflow.project import bootstrap_here

    bootstrap_here()
    return execute_run("kilnflow", invoked_args(ctx), options)


def invoked_args(ctx: click.Context) -> list[str]:
    """The arguments the command was invoked with, as given to ``main``."""
    obj = ctx.find_root().obj
    return list(obj["argv"]) if isinstance(obj, dict) and "argv" in obj else list(sys.argv[1:])
