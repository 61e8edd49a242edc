"""One exception tree for the whole library.

Catch ``KilnflowError`` to handle anything Kilnflow raises on purpose; every
message names the node, dataset, file or key at fault and the next step::

    KilnflowError
     ├── PipelineError               invalid nodes, pipelines and filters
     │    ├── CircularDependencyError
     │    └── OutputNotUniqueError
     ├── DatasetError                dataset construction, load and save
     │    ├── DatasetNotFoundError
     │    └── VersionNotFoundError
     ├── ConfigError                 configuration files and their values
     │    └── MissingConfigError
     ├── RunnerError                 scheduling and running nodes
     │    ├── MissingInputsError
     │    ├── NodeFailedError        carries the failed node and a resume hint
     │    └── WorkersLostError       the workers running a node died or left
     ├── HookError                   hook specs and hook registration
     ├── ProjectError                pyproject metadata, settings, registries
     │    └── PackageNameNotFoundError   (also a ValueError)
     ├── SessionError                session lifecycle and stores
     └── PackagingError              wheel builds and deployment artefacts

A stop signal is not an error: :class:`Interrupted` is a
``KeyboardInterrupt`` (so ``except Exception`` never swallows it) naming the
signal, SIGINT or SIGTERM, that ended the run.

Warnings about likely mistakes that need not stop a run are
``KilnflowWarning``s.

Only the CLI turns these into exit codes; library code raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "CircularDependencyError",
    "ConfigError",
    "DatasetError",
    "DatasetNotFoundError",
    "HookError",
    "Interrupted",
    "KilnflowError",
    "KilnflowWarning",
    "MissingConfigError",
    "MissingInputsError",
    "NodeFailedError",
    "OutputNotUniqueError",
    "PackageNameNotFoundError",
    "PackagingError",
    "PipelineError",
    "ProjectError",
    "RunnerError",
    "SessionError",
    "VersionNotFoundError",
    "WorkersLostError",
    "did_you_mean",
]


class KilnflowError(Exception):
    """Root of every error Kilnflow raises on purpose."""


class PipelineError(KilnflowError):
    """A node or pipeline is malformed, or a filter selects nothing valid."""


class CircularDependencyError(PipelineError):
    """Nodes depend on each other in a cycle."""


class OutputNotUniqueError(PipelineError):
    """Two nodes write the same dataset."""


class DatasetError(KilnflowError):
    """A dataset cannot be built, loaded or saved."""


class DatasetNotFoundError(DatasetError):
    """The catalog has no dataset of that name and no factory matches it."""


class VersionNotFoundError(DatasetError):
    """A versioned dataset has no version to load."""


class ConfigError(KilnflowError):
    """Configuration files are unreadable or their values are wrong."""


class MissingConfigError(ConfigError):
    """An environment or configuration source does not exist."""


class RunnerError(KilnflowError):
    """A pipeline cannot be scheduled or a run failed."""


class MissingInputsError(RunnerError):
    """Free inputs of a pipeline do not exist before the run starts."""


class NodeFailedError(RunnerError):
    """A node raised during a run; the original exception is chained.

    ``node_name`` is the failed node and ``resume_nodes`` the nodes a rerun
    must start from to finish the pipeline without redoing completed work.
    """

    def __init__(self, message: str, node_name: str, resume_nodes: Sequence[str]) -> None:
        super().__init__(message)
        #: Name of the node whose function raised.
        self.node_name = node_name
        #: Nodes to pass to ``--from-nodes`` to resume the run.
        self.resume_nodes = tuple(resume_nodes)


class WorkersLostError(RunnerError):
    """The workers running a node died or left, so it could not finish; not the node's error.

    Its message completes "Node 'x' failed because ...": what was lost and the next step.
    """


class HookError(KilnflowError):
    """Hook implementations cannot be registered."""


class ProjectError(KilnflowError):
    """A project's metadata, settings or pipeline registry is wrong."""


class PackageNameNotFoundError(ProjectError, ValueError):
    """This process asked for project state before configuring a project.

    Also a ``ValueError``, so code written against the incumbent's behaviour
    keeps catching it.
    """


class SessionError(KilnflowError):
    """A session is used against its lifecycle, or its store fails."""


class PackagingError(KilnflowError):
    """A project cannot be packaged or deployed."""


class Interrupted(KeyboardInterrupt):
    """A stop signal ended the run, handled as Ctrl-C is: runners stop and workers end."""

    def __init__(self, signal_number: int) -> None:
        import signal

        #: The signal's name, such as ``SIGTERM``.
        self.signal_name = signal.Signals(signal_number).name
        super().__init__(self.signal_name)
        #: The shell's exit status for a process that a signal stopped: 128 plus its number.
        self.exit_code = 128 + signal_number


class KilnflowWarning(UserWarning):
    """A likely mistake that does not stop the run, such as a misspelt setting."""


def did_you_mean(
    name: str, candidates: Iterable[str], *, limit: int = 3, or_list: bool = False
) -> str:
    """Return ``" Did you mean 'x'?"`` for close matches of ``name``, else ``""``.

    With ``or_list``, a name like none of them gets ``" Use one of a, b."``
    instead, for short closed lists. Shared so that every "unknown X" message
    suggests fixes the same way.
    """
    from difflib import get_close_matches

    choices = sorted(set(candidates))
    matches = get_close_matches(name, choices, n=limit, cutoff=0.6)
    if matches:
        return f" Did you mean {' or '.join(repr(m) for m in matches)}?"
    return f" Use one of {', '.join(choices)}." if or_list else ""


def __dir__() -> list[str]:
    return __all__
