"""Remote execution in one place: what a worker runs for a node, and with what state.

Every runner runs a node through :func:`run_node`, which loads its inputs,
runs it and saves its outputs between the node and dataset hooks. Runners
that run nodes in other processes (``ParallelRunner``, ``DaskRunner``) wrap
a node in a :class:`Task`: the node, the datasets the worker reads and
writes itself, and the session id. The parent checks before a run that
every task can be sent (:func:`check_picklable`); the worker runs
:meth:`Task.run` with the hooks its process was set up with
(:data:`WORKER`, one :class:`WorkerState` per process). How tasks and
memory data travel is left to each runner's executor. A worker can start
warm: :func:`worker_imports` names the modules a pipeline's nodes will
import, so a pool can import them before the first task arrives.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from types import CodeType
from typing import TYPE_CHECKING, Any

from kilnflow.errors import RunnerError

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.io import AbstractDataset, DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = [
    "THREADS_HINT",
    "WORKER",
    "Dump",
    "Task",
    "WorkerImports",
    "WorkerInit",
    "WorkerState",
    "check_picklable",
    "default_worker_init",
    "end_on_stop_signal",
    "import_quietly",
    "keep_loaded_marks",
    "predicted_imports",
    "reason",
    "run_node",
    "worker_imports",
]

#: Sets up a fresh worker process for the project and returns its hook manager.
#: Whoever builds the runner (the session) provides it, picklable, so the runner
#: layer never needs to know about projects.
WorkerInit = Callable[[], "HookManager"]

#: Writes a pickle of an object to a file-like sink, raising if it cannot.
Dump = Callable[[Any, Any], None]

#: The way out offered whenever something cannot be sent to a worker.
THREADS_HINT = "or use ThreadRunner, which runs nodes in this process and pickles nothing"


def reason(exc: BaseException) -> str:
    """An exception as ``Type: message``, for errors that wrap it."""
    return f"{type(exc).__name__}: {exc}"


def run_node(
    node: Node, catalog: DataCatalog, hook_manager: HookManager, session_id: str | None
) -> float:
    """Load a node's inputs, run it, save its outputs; return its duration in seconds.

    Hooks see every load, run and save, wherever this function executes.
    """
    hooks = hook_manager.hook
    start = time.perf_counter()
    inputs: dict[str, Any] = {}
    for name in node.inputs:
        if name in inputs:
            continue
        hooks.before_dataset_loaded(dataset_name=name, node=node)
        data = catalog.load(name)
        hooks.after_dataset_loaded(dataset_name=name, data=data, node=node)
        inputs[name] = data
    for replaced in hooks.before_node_run(
        node=node, catalog=catalog, inputs=inputs, session_id=session_id
    ):
        inputs.update(_checked_replacement(node, replaced))
    try:
        outputs = node.run(inputs)
    except Exception as exc:
        hooks.on_node_error(
            error=exc, node=node, catalog=catalog, inputs=inputs, session_id=session_id
        )
        raise
    hooks.after_node_run(
        node=node, catalog=catalog, inputs=inputs, outputs=outputs, session_id=session_id
    )
    for name, data in outputs.items():
        hooks.before_dataset_saved(dataset_name=name, data=data, node=node)
        catalog.save(name, data)
        hooks.after_dataset_saved(dataset_name=name, data=data, node=node)
    for name in node.confirms:
        _confirm(catalog, name)
    return time.perf_counter() - start


def _confirm(catalog: DataCatalog, name: str) -> None:
    """Move ``name``'s checkpoint; a failure says the data will be processed again."""
    from kilnflow.errors import DatasetError

    try:
        catalog.confirm(name)
    except Exception as exc:
        raise DatasetError(
            f"its outputs were saved but confirming {name!r} failed ({reason(exc)}); its "
            "checkpoint did not move, so the next run loads the same data again"
        ) from exc


def _checked_replacement(node: Node, replaced: object) -> dict[str, Any]:
    if replaced is None:
        return {}
    if not isinstance(replaced, dict) or not set(replaced) <= set(node.inputs):
        raise RunnerError(
            f"A before_node_run hook returned {replaced!r} for node {node.name!r}; it must "
            f"return None or a dict whose keys are among the node's inputs {list(node.inputs)}."
        )
    return replaced


@dataclass(frozen=True)
class Task:
    """One node as a worker runs it: the node, the datasets it handles itself, the session.

    Memory datasets are not part of the task: the runner sends their data
    with it (its *inputs*) and takes the node's memory outputs back. A
    dataset the node confirms without reading it travels with the mark of
    what another worker loaded from it (see :func:`_loaded_marks`).
    """

    node: Node
    #: The node's datasets that the worker loads or saves itself: all but memory ones.
    datasets: Mapping[str, AbstractDataset]
    session_id: str | None

    @classmethod
    def of(cls, node: Node, catalog: DataCatalog, session_id: str | None) -> Task:
        """The task of ``node``, whose datasets come from ``catalog``."""
        datasets: dict[str, AbstractDataset] = {}
        for name in dict.fromkeys((*node.inputs, *node.outputs, *node.confirms)):
            dataset = catalog.get(name)
            if dataset is not None and not catalog.is_memory(name):
                datasets[name] = dataset
        return cls(node, datasets, session_id)

    @property
    def memory_inputs(self) -> list[str]:
        """Inputs whose data the runner must send with the task, once each."""
        return [name for name in dict.fromkeys(self.node.inputs) if name not in self.datasets]

    @property
    def memory_outputs(self) -> list[str]:
        """Outputs whose data the worker hands back instead of saving."""
        return [name for name in self.node.outputs if name not in self.datasets]

    def run(
        self, inputs: Mapping[str, Any], hook_manager: HookManager | None = None
    ) -> tuple[float, dict[str, Any], dict[str, Any]]:
        """Run the node in this worker; return its duration, memory outputs and loaded marks.

        The worker's catalog holds the task's datasets and the memory inputs
        as given, so hooks see every load and save just as in the parent.
        Hooks are this worker's (:data:`WORKER`) unless ``hook_manager`` is given.
        """
        from kilnflow.io import DataCatalog, MemoryDataset

        hooks = hook_manager if hook_manager is not None else WORKER.hooks()
        catalog = DataCatalog(self.datasets)
        for name, data in inputs.items():
            catalog.add(name, MemoryDataset(data, copy_mode="assign"))
        for name in self.memory_outputs:
            catalog.add(name, MemoryDataset(copy_mode="assign"))
        duration = run_node(self.node, catalog, hooks, self.session_id)
        outputs = {name: catalog.load(name) for name in self.memory_outputs}
        return duration, outputs, _loaded_marks(self.node, self.datasets)


def _loaded_marks(node: Node, datasets: Mapping[str, AbstractDataset]) -> dict[str, Any]:
    """What each confirmable input of ``node`` loaded, as its ``loaded_mark()`` says.

    The parent gives the marks to its own datasets (:func:`keep_loaded_marks`),
    so a later node that confirms one without reading it, in another worker,
    records what was loaded here.
    """
    marks: dict[str, Any] = {}
    for name in dict.fromkeys(node.inputs):
        mark = getattr(datasets.get(name), "loaded_mark", None)
        value = mark() if callable(mark) else None
        if value is not None:
            marks[name] = value
    return marks


def keep_loaded_marks(catalog: DataCatalog, marks: Mapping[str, Any]) -> None:
    """Give the marks a worker's datasets loaded to the parent's copies of them."""
    for name, mark in marks.items():
        remember = getattr(catalog.get(name), "set_loaded_mark", None)
        if callable(remember):
            remember(mark)


class WorkerState:
    """What one worker process was set up with: the project's hooks, or why it could not be."""

    def __init__(self) -> None:
        self._hooks: HookManager | None = None
        self._error: str | None = None

    def set_up(self, worker_init: WorkerInit) -> None:
        """Run ``worker_init`` for this process, remembering its hooks or its failure."""
        try:
            self._hooks = worker_init()
        except Exception as exc:
            self._error = reason(exc)
            raise
        self._error = None

    def hooks(self) -> HookManager:
        """The hooks this worker was set up with; an error saying why when it was not."""
        if self._hooks is not None and self._error is None:
            return self._hooks
        if self._error is not None:
            raise RunnerError(
                f"Worker process {os.getpid()} could not set itself up for the project "
                f"({self._error}); fix that, or check that the project's package is "
                "importable by the worker processes."
            )
        raise RunnerError(
            f"Worker process {os.getpid()} was not set up by Kilnflow, so the node's hooks "
            "cannot run; run the pipeline with ParallelRunner or DaskRunner, which set up "
            "their workers."
        )


#: The state of this process when it is a worker; unused in the parent.
WORKER = WorkerState()


def end_on_stop_signal() -> None:
    """Make SIGTERM end this worker process at once, without files of unfinished saves.

    The parent terminates its workers when the run is stopped; a save under
    way in a worker must not leave its temporary file behind. Only the main
    thread may set signal handlers; elsewhere this does nothing.
    """
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _end_now)


def _end_now(signal_number: int, frame: object) -> None:
    import signal

    from kilnflow._atomic import discard_unfinished_writes

    discard_unfinished_writes()
    signal.signal(signal_number, signal.SIG_DFL)
    os.kill(os.getpid(), signal_number)


class _Sink:
    """A file that discards what is written: pickling checks need no bytes."""

    def write(self, data: bytes) -> int:
        return len(data)


def check_picklable(
    pipeline: Pipeline, catalog: DataCatalog, dump: Dump, runner: str, worker_init: WorkerInit
) -> None:
    """Fail before the run when a node, a dataset or existing memory data cannot be pickled.

    Only data that exists now is checked: memory outputs are checked as they
    are produced, by the worker that produced them.
    """
    sink = _Sink()
    for node in pipeline.nodes:
        try:
            dump(node, sink)
        except Exception as exc:
            raise RunnerError(
                f"{runner} cannot send node {node.name!r} to its workers because it cannot be "
                f"pickled ({reason(exc)}): define its function at the top level of an "
                f"importable module (not a lambda or a function inside a function), "
                f"{THREADS_HINT}."
            ) from exc
    inputs = pipeline.inputs()
    for name in sorted(pipeline.datasets()):
        memory = catalog.is_memory(name)
        if memory and name not in inputs:
            continue
        try:
            dump(catalog.get(name), sink)
        except Exception as exc:
            what = "its data" if memory else "its dataset object"
            raise RunnerError(
                f"{runner} cannot send dataset {name!r} to its workers because {what} cannot "
                f"be pickled ({reason(exc)}): save it with a file dataset in the catalog "
                f"instead, {THREADS_HINT}."
            ) from exc
    try:
        dump(worker_init, sink)
    except Exception as exc:
        raise RunnerError(
            f"{runner} cannot send its worker initialiser {worker_init!r} to its workers "
            f"because it cannot be pickled ({reason(exc)}): pass a module-level function "
            f"or a functools.partial of one, {THREADS_HINT}."
        ) from exc


def default_worker_init(hook_manager: HookManager, dump: Dump) -> WorkerInit:
    """Re-register the parent's hook objects in each worker (copies, by pickling).

    Used when a runner is given no worker initialiser, so that hooks run in
    workers instead of being silently lost.
    """
    plugins = tuple(hook_manager.list_name_plugin())
    sink = _Sink()
    for name, plugin in plugins:
        try:
            dump(plugin, sink)
        except Exception as exc:
            raise RunnerError(
                f"Hook {type(plugin).__qualname__!r} ({name}) cannot be pickled to the worker "
                f"processes ({reason(exc)}): run the pipeline through a Session, whose "
                "workers re-create hooks from the project's settings, pass worker_init, "
                f"{THREADS_HINT}."
            ) from exc
    return partial(_hook_manager_of, plugins)


def _hook_manager_of(plugins: tuple[tuple[str, object], ...]) -> HookManager:
    from kilnflow.hooks import create_hook_manager

    manager = create_hook_manager()
    for name, plugin in plugins:
        manager.register(plugin, name=name)
    return manager


@dataclass(frozen=True)
class WorkerImports:
    """The modules a pipeline's nodes will import in a worker, found before the run.

    ``libraries`` are everything but the project's own code: what the node
    modules import at their top level, what the node functions import inside
    their bodies, the dataset classes' modules and the worker initialiser's
    module. A process that outlives one run (a fork server) may hold them,
    since they do not change while a project is edited. ``project`` are the
    modules the node functions come from, which must be imported fresh by
    each run's workers.
    """

    libraries: tuple[str, ...]
    project: tuple[str, ...]


def worker_imports(
    pipeline: Pipeline, catalog: DataCatalog, worker_init: WorkerInit
) -> WorkerImports:
    """What the nodes of ``pipeline`` will import when they run in a worker.

    Found by reading the import instructions of the node functions and of
    their modules' top level, so nothing is imported here. A project module
    they import (``from .helpers import fit``) counts with what its own top
    level imports. The project's own top-level packages are left out of
    ``libraries``.
    """
    functions = {id(node.func): _plain_function(node.func) for node in pipeline.nodes}
    modules = dict.fromkeys(
        getattr(function, "__module__", None) for function in functions.values()
    )
    project = {name: None for name in modules if isinstance(name, str) and name != "__main__"}
    own = {name.partition(".")[0] for name in project}
    found: dict[str, None] = {}
    follow = list(project)
    for function in functions.values():
        module_name = getattr(function, "__module__", None)
        code = getattr(function, "__code__", None)
        if module_name not in project or not isinstance(code, CodeType):
            continue
        package = getattr(sys.modules.get(module_name), "__package__", None)
        package = package if isinstance(package, str) else module_name.rpartition(".")[0]
        _sort_imports(code, package, own, nested=True, follow=follow, found=found)
    found.update(dict.fromkeys(_imports_of(follow, own, nested=False)))
    for name in sorted(pipeline.datasets()):
        if not catalog.is_memory(name):
            found[type(catalog.get(name)).__module__] = None
    found[getattr(_plain_function(worker_init), "__module__", None) or "__main__"] = None
    skipped = own | {"__main__", "__future__"}
    libraries = tuple(name for name in found if name.partition(".")[0] not in skipped)
    return WorkerImports(libraries, tuple(project))


def import_quietly(names: Iterable[str]) -> None:
    """Import each module now, ignoring any failure: the node that needs it reports it."""
    import importlib

    for name in names:
        if name not in sys.modules:
            # Any failure is the node's to report, when it imports the module itself.
            with suppress(Exception):
                importlib.import_module(name)


def _plain_function(function: object) -> object:
    """The function under ``functools.partial`` layers and decorators' ``__wrapped__``."""
    import inspect

    while isinstance(function, partial):
        function = function.func
    if not callable(function):
        return function
    try:
        return inspect.unwrap(function)
    except ValueError:  # a chain of __wrapped__ that loops: keep the outer function
        return function


_INTEGER_LOADS = frozenset({"LOAD_CONST", "LOAD_SMALL_INT"})


def _import_instructions(
    code: CodeType, nested: bool
) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """Level, module name and names imported from it, of each import statement in ``code``."""
    import dis

    window: list[dis.Instruction] = []
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME" and len(window) == 2:
            level, names = window
            if level.opname in _INTEGER_LOADS and isinstance(level.argval, int):
                imported = names.argval if isinstance(names.argval, tuple) else ()
                yield level.argval, str(instruction.argval), tuple(map(str, imported))
        window = [*window[-1:], instruction]
    if nested:
        for constant in code.co_consts:
            if isinstance(constant, CodeType):
                yield from _import_instructions(constant, nested=True)


def predicted_imports(modules: Iterable[str]) -> tuple[str, ...]:
    """What ``modules``, and the modules of their own packages they import, will import.

    Read from compiled code before any of them runs, including a package's
    ``__init__`` (which may itself import pandas), so that another process
    can import those libraries while this one imports the project. Imports
    inside functions count, since node functions often import there. Modules
    of the packages ``modules`` belong to are followed, not listed.
    """
    roots = list(modules)
    return _imports_of(roots, {name.partition(".")[0] for name in roots}, nested=True)


def _imports_of(modules: list[str], own: set[str], nested: bool) -> tuple[str, ...]:
    """The modules outside the ``own`` packages that ``modules`` import, following own ones.

    ``nested`` counts the imports inside functions and classes too, not
    only those that importing a module runs.
    """
    found: dict[str, None] = {}
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(_parents(name))
        located = _code_before_import(name)
        if located is None:
            continue
        code, package = located
        _sort_imports(code, package, own, nested=nested, follow=pending, found=found)
    return tuple(found)


def _sort_imports(
    code: CodeType,
    package: str,
    own: set[str],
    *,
    nested: bool,
    follow: list[str],
    found: dict[str, None],
) -> None:
    """Add the modules of ``own`` packages ``code`` imports to ``follow``, the others to ``found``.

    ``from pkg import name`` may import module ``pkg.name``: for own
    packages that candidate is followed too, and dropped if no such module
    exists.
    """
    for level, target, names in _import_instructions(code, nested=nested):
        absolute = _absolute(target, level, package)
        if absolute is None:
            continue
        if absolute.partition(".")[0] in own:
            follow += [absolute, *(f"{absolute}.{name}" for name in names if name != "*")]
        else:
            found[absolute] = None


def _parents(name: str) -> Iterator[str]:
    """The packages whose ``__init__`` runs before module ``name``."""
    parts = name.split(".")
    return (".".join(parts[:end]) for end in range(1, len(parts)))


def _absolute(target: str, level: int, package: str) -> str | None:
    """The module an import statement of ``package`` names, relative or not."""
    from importlib.util import resolve_name

    try:
        return resolve_name("." * level + target, package)
    except ImportError:  # relative beyond the top-level package: it would fail to import
        return None


def _code_before_import(name: str) -> tuple[CodeType, str] | None:
    """The code of module ``name`` and the package it belongs to, found without importing.

    ``importlib.util.find_spec`` imports the parents of a dotted name; the
    path finder given the parent's folders does not.
    """
    from importlib.machinery import PathFinder
    from importlib.util import find_spec

    parts = name.split(".")
    try:
        spec = find_spec(parts[0])
        for end in range(2, len(parts) + 1):
            folders = getattr(spec, "submodule_search_locations", None)
            spec = PathFinder.find_spec(".".join(parts[:end]), folders) if folders else None
        get_code = getattr(getattr(spec, "loader", None), "get_code", None)
        code = get_code(name) if get_code is not None else None
    except Exception:  # unreadable or missing: the prediction only leaves it out
        return None
    if not isinstance(code, CodeType) or spec is None:
        return None
    return code, spec.parent or ""
