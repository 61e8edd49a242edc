"""Nodes in a pool of worker processes that set themselves up for the project.

Workers start with ``spawn`` by default: a fresh interpreter that inherits
nothing, so a run behaves the same on Linux, macOS and Windows. Each worker
runs the run's *worker initialiser* once. A session passes one that
configures the project and re-creates its hooks from ``settings.HOOKS`` by
importing the settings module in the worker, so hook objects need not be
picklable; without one, the hook objects registered in the parent are
pickled to every worker. Either way a hook's state lives per worker process.

Data between nodes: the parent loads a node's memory inputs and sends them
with the node; the worker reads and writes every other dataset itself, and
sends memory outputs back, which the parent saves into its catalog. In the
worker, hooks see a plain ``DataCatalog`` holding only that node's datasets.

Helpers used by other runners that run nodes outside this process live here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from kilnflow.errors import RunnerError, did_you_mean
from kilnflow.runner._base import AbstractRunner, WorkerInit, cpu_count, run_node

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from kilnflow.hooks import HookManager
    from kilnflow.io import AbstractDataset, DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = [
    "START_METHOD_ENV",
    "ParallelRunner",
    "check_picklable",
    "default_worker_init",
    "run_elsewhere",
    "worker_datasets",
]

#: Environment variable choosing the start method when none is passed.
START_METHOD_ENV = "KILNFLOW_MP_START_METHOD"

#: Writes a pickle of an object to a file-like sink, raising if it cannot.
Dump = Callable[[Any, Any], None]

_THREADS_HINT = "or use ThreadRunner, which runs nodes in this process and pickles nothing"

# Per worker process: the hooks its initialiser built, or why it could not.
_worker_hooks: HookManager | None = None
_worker_setup_error: str | None = None


class _Sink:
    """A file that discards what is written: pickling checks need no bytes."""

    def write(self, data: bytes) -> int:
        return len(data)


def _pickle_dump(obj: Any, file: Any) -> None:
    import pickle

    pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


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
                f"pickled ({_reason(exc)}): define its function at the top level of an "
                f"importable module (not a lambda or a function inside a function), "
                f"{_THREADS_HINT}."
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
                f"be pickled ({_reason(exc)}): save it with a file dataset in the catalog "
                f"instead, {_THREADS_HINT}."
            ) from exc
    try:
        dump(worker_init, sink)
    except Exception as exc:
        raise RunnerError(
            f"{runner} cannot send its worker initialiser {worker_init!r} to its workers "
            f"because it cannot be pickled ({_reason(exc)}): pass a module-level function "
            f"or a functools.partial of one, {_THREADS_HINT}."
        ) from exc


def default_worker_init(hook_manager: HookManager) -> WorkerInit:
    """Re-register the parent's hook objects in each worker (copies, by pickling).

    Used when a runner is given no worker initialiser, so that hooks run in
    workers instead of being silently lost.
    """
    plugins = tuple(hook_manager.list_name_plugin())
    sink = _Sink()
    for name, plugin in plugins:
        try:
            _pickle_dump(plugin, sink)
        except Exception as exc:
            raise RunnerError(
                f"Hook {type(plugin).__qualname__!r} ({name}) cannot be pickled to the worker "
                f"processes ({_reason(exc)}): run the pipeline through a Session, whose "
                "workers re-create hooks from the project's settings, pass worker_init, "
                f"{_THREADS_HINT}."
            ) from exc
    return partial(_hook_manager_of, plugins)


def _hook_manager_of(plugins: tuple[tuple[str, object], ...]) -> HookManager:
    from kilnflow.hooks import create_hook_manager

    manager = create_hook_manager()
    for name, plugin in plugins:
        manager.register(plugin, name=name)
    return manager


def worker_datasets(node: Node, catalog: DataCatalog) -> dict[str, AbstractDataset]:
    """The node's datasets that a worker loads or saves itself: all but memory ones."""
    datasets: dict[str, AbstractDataset] = {}
    for name in dict.fromkeys((*node.inputs, *node.outputs)):
        dataset = catalog.get(name)
        if dataset is not None and not catalog.is_memory(name):
            datasets[name] = dataset
    return datasets


def run_elsewhere(
    node: Node,
    datasets: Mapping[str, AbstractDataset],
    inputs: Mapping[str, Any],
    session_id: str | None,
    hook_manager: HookManager,
) -> tuple[float, dict[str, Any]]:
    """Run ``node`` in a worker; return its duration and its memory outputs.

    The worker's catalog holds the node's own datasets and its memory inputs
    as given, so hooks see every load and save just as in the parent.
    """
    from kilnflow.io import DataCatalog, MemoryDataset

    catalog = DataCatalog(datasets)
    for name, data in inputs.items():
        catalog.add(name, MemoryDataset(data, copy_mode="assign"))
    memory_outputs = [name for name in node.outputs if name not in datasets]
    for name in memory_outputs:
        catalog.add(name, MemoryDataset(copy_mode="assign"))
    duration = run_node(node, catalog, hook_manager, session_id)
    return duration, {name: catalog.load(name) for name in memory_outputs}


def _start_worker(worker_init: WorkerInit) -> None:
    """Initialise a pool process: the parent alone handles Ctrl-C."""
    global _worker_hooks, _worker_setup_error  # noqa: PLW0603 - state of this worker process
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _worker_hooks = worker_init()
    except Exception as exc:
        _worker_setup_error = _reason(exc)


def _run_in_worker(
    node: Node,
    datasets: Mapping[str, AbstractDataset],
    inputs: Mapping[str, Any],
    session_id: str | None,
) -> tuple[float, dict[str, bytes]]:
    if _worker_setup_error is not None or _worker_hooks is None:
        raise RunnerError(
            f"Worker process {os.getpid()} could not set itself up for the project "
            f"({_worker_setup_error}); fix that, or check that the project's package is "
            "importable by the worker processes."
        )
    duration, outputs = run_elsewhere(node, datasets, inputs, session_id, _worker_hooks)
    return duration, {name: _pickled_output(node, name, data) for name, data in outputs.items()}


def _pickled_output(node: Node, name: str, data: Any) -> bytes:
    import pickle

    try:
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise RunnerError(
            f"Node {node.name!r} output {name!r} ({type(data).__name__}) cannot be pickled to "
            f"send it back from the worker process ({_reason(exc)}): save it with a file "
            f"dataset in the catalog, {_THREADS_HINT}."
        ) from exc


def _start_method(requested: str | None) -> str:
    import multiprocessing

    method, source = requested, "start_method"
    if method is None:
        method, source = os.environ.get(START_METHOD_ENV) or "spawn", f"${START_METHOD_ENV}"
    available = multiprocessing.get_all_start_methods()
    if method not in available:
        raise RunnerError(
            f"ParallelRunner {source} {method!r} is not available here."
            f"{did_you_mean(method, available)} Use one of {', '.join(available)}."
        )
    return method


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the worker processes without waiting for nodes."""
    terminate = getattr(pool, "terminate_workers", None)  # python >= 3.14
    if terminate is not None:
        terminate()
        return
    # Before 3.14 the pool offers no public way to reach its processes.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()


class ParallelRunner(AbstractRunner):
    """Runs nodes in worker processes, each set up for the project, for CPU-bound work.

    ``max_workers`` defaults to the CPUs this process may use.
    ``start_method`` is ``spawn``, ``forkserver`` or ``fork``; by default
    ``$KILNFLOW_MP_START_METHOD``, else ``spawn``. Nodes, datasets and memory
    data must be picklable, which is checked before any node runs. A worker
    that dies fails the run at once with an error naming its node; Ctrl-C
    ends the workers.
    """

    def __init__(self, max_workers: int | None = None, start_method: str | None = None) -> None:
        super().__init__(max_workers=max_workers if max_workers is not None else cpu_count())
        #: How worker processes start.
        self.start_method = _start_method(start_method)
        self._worker_init: WorkerInit | None = None
        self._in_flight: dict[Future[Any], str] = {}

    def _prepare(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager,
        worker_init: WorkerInit | None,
    ) -> None:
        init = worker_init if worker_init is not None else default_worker_init(hook_manager)
        check_picklable(pipeline, catalog, _pickle_dump, type(self).__name__, init)
        self._worker_init = init

    @contextmanager
    def _executor(self) -> Iterator[Executor]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        assert self._worker_init is not None, "_prepare sets the worker initialiser"
        pool = ProcessPoolExecutor(
            self.max_workers,
            mp_context=multiprocessing.get_context(self.start_method),
            initializer=partial(_start_worker, self._worker_init),
        )
        self._in_flight = {}
        try:
            yield pool
        except BaseException:
            _stop_now(pool)
            raise
        finally:
            self._in_flight = {}
        pool.shutdown(wait=True)

    def _submit(
        self,
        executor: Executor,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        datasets = worker_datasets(node, catalog)
        inputs = {
            name: catalog.load(name) for name in dict.fromkeys(node.inputs) if name not in datasets
        }
        future = executor.submit(_run_in_worker, node, datasets, inputs, session_id)
        self._in_flight[future] = node.name
        return future

    def _finish(
        self, executor: Executor, future: Future[Any], node: Node, catalog: DataCatalog
    ) -> float:
        import pickle
        from concurrent.futures.process import BrokenProcessPool

        duration: float
        outputs: dict[str, bytes]
        try:
            duration, outputs = future.result()
        except BrokenProcessPool as exc:
            raise BrokenProcessPool(self._died_message()) from exc
        finally:
            self._in_flight.pop(future, None)
        for name, payload in outputs.items():
            catalog.save(name, pickle.loads(payload))
        return duration

    def _died_message(self) -> str:
        from concurrent.futures.process import BrokenProcessPool

        lost = [
            name
            for future, name in self._in_flight.items()
            if future.done() and isinstance(future.exception(), BrokenProcessPool)
        ]
        running = " or ".join(repr(name) for name in lost)
        return (
            f"the worker process running {running} died: the operating system killed it "
            "(for example when out of memory), native code crashed, or the node called "
            "os._exit; the pool was stopped"
        )
