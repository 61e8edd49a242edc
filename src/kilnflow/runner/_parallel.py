"""Nodes in a pool of warm worker processes that set themselves up for the project.

Workers start with ``forkserver`` where the platform has it (Linux and most
Unixes) and the nodes import libraries the server can hold, else ``spawn``
(a server holding nothing only adds its own start to the run): either way a
worker is a fresh interpreter that inherits no state of the parent, so a run
behaves the same everywhere. Each worker runs the run's *worker initialiser*
once. A session passes one that configures the project and re-creates its
hooks from ``settings.HOOKS`` by importing the settings module in the worker,
so hook objects need not be picklable; without one, the hook objects
registered in the parent are pickled to every worker. Either way a hook's
state lives per worker process.

Warm workers: before the run, the runner reads which modules the nodes will
import (:func:`~kilnflow.runner._task.worker_imports`: pandas, scikit-learn,
...). With ``forkserver`` the fork server imports those libraries once and
every worker is forked from it already holding them; the project's own
modules are imported by each worker, fresh, so edited code is never stale.
A session starts the server earlier, through :meth:`ParallelRunner.warming`,
before it imports the project's pipelines, so that the server's imports and
its own happen at once. With ``spawn`` each worker imports them all when it
starts. Workers start when a node needs one and none is idle, so a run never
starts more workers than it has nodes running at once (nor more than
``max_workers``). A worker sees the parent's environment variables as they
are when the run starts.

Native thread pools: libraries such as OpenBLAS, MKL and OpenMP start a
thread per CPU in every process, so ``n`` workers on ``n`` CPUs would run
``n * n`` threads that wait for each other. Workers get their share of the
CPUs instead (``OMP_NUM_THREADS`` and its kin; a variable set already
wins), and a fork server the one of the run that started it, since the
libraries read it only when they load. The fork server imports with the
cyclic garbage collector off and each worker freezes what it inherits
(:mod:`kilnflow.runner._collector_off`): imports are quicker, and a
worker's collections neither scan nor write the objects it shares with the
server.

Stopping: Ctrl-C or SIGTERM in the parent ends the workers (SIGTERM, then
SIGKILL after a grace period), which remove the temporary files of saves
under way. The pool's own bookkeeping is never interrupted halfway: a stop
signal arriving while the pool starts a worker or is being stopped waits
until that step is done (see :class:`~kilnflow.runner._signals.HeldSignals`).

Data between nodes: memory data travels as pickles. A worker sends a node's
memory outputs back pickled, and the parent keeps those bytes and hands them
as they are to the nodes that read them, so it never unpickles (or imports
the libraries of) data that only passes through; it unpickles only the
run's free outputs, which it returns. The worker reads and writes every
other dataset itself. In the worker, hooks see a plain ``DataCatalog``
holding only that node's datasets.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import closing, contextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from kilnflow.errors import RunnerError, did_you_mean
from kilnflow.pipeline._node import base_name
from kilnflow.runner._base import AbstractRunner, cpu_count
from kilnflow.runner._logs import forward_records, records_listener
from kilnflow.runner._signals import HeldSignals
from kilnflow.runner._task import (
    THREADS_HINT,
    WORKER,
    Task,
    WorkerImports,
    WorkerInit,
    check_picklable,
    default_worker_init,
    end_on_stop_signal,
    import_quietly,
    keep_loaded_marks,
    predicted_imports,
    reason,
    worker_imports,
)

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.connection import Connection

    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = ["START_METHOD_ENV", "ParallelRunner"]

#: Environment variable choosing the start method when none is passed.
START_METHOD_ENV = "KILNFLOW_MP_START_METHOD"

#: What native libraries (OpenMP, OpenBLAS, MKL, Apple's Accelerate, numexpr) size
#: their thread pools from, once, when they load.
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: Imported by a fork server before its libraries, see that module.
_COLLECTOR_OFF = "kilnflow.runner._collector_off"


def _pickle_dump(obj: Any, file: Any) -> None:
    import pickle

    pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)


def _start_worker(
    worker_init: WorkerInit,
    parent_alive: Connection,
    records: Any,
    level: int,
    environment: Mapping[str, str],
    imports: WorkerImports,
) -> None:
    """Initialise a pool process: the parent alone handles Ctrl-C and shows log records.

    The worker takes the parent's ``environment`` of this run (a fork server
    holds the one of its own start). Records of ``level`` and above go to the
    queue ``records``, which the parent reads into its own loggers (before
    the project is set up, so the worker adds no handler of its own). A
    failed set-up is remembered and reported by the first task (an error
    raised here would only break the pool, with no reason given). Last, the
    worker imports what its nodes will, so its first node starts warm. It
    sets up with the collector off, as the fork server imports, and freezes
    the result, see :mod:`kilnflow.runner._collector_off`.
    """
    if os.environ != environment:
        os.environ.clear()
        os.environ.update(environment)
    forward_records(records, level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_on_stop_signal()
    threading.Thread(
        target=_end_with_parent, args=(parent_alive,), name="kilnflow-parent-watch", daemon=True
    ).start()
    gc.disable()  # already off in a worker forked from the fork server
    try:
        with suppress(Exception):
            WORKER.set_up(worker_init)
        import_quietly((*imports.libraries, *imports.project))
    finally:
        # What the worker holds now lives as long as it does: collections skip it,
        # and the pages it shares with the fork server stay shared.
        gc.freeze()
        gc.enable()


def _end_with_parent(parent_alive: Connection) -> None:
    """End this worker as soon as the run's parent is gone, however the parent ended.

    A parent killed outright (SIGKILL, out of memory) cannot stop its pool;
    its workers would otherwise wait for work forever, holding the
    multiprocessing resource tracker (and a fork server) alive with them.
    The parent holds the only writing end of ``parent_alive`` and never
    writes: the pipe reaches its end when the parent's process is gone. The
    worker's own parent process is no guide, since a fork server outlives runs.
    """
    from multiprocessing.connection import wait

    wait([parent_alive])
    os.kill(os.getpid(), signal.SIGTERM)


def _run_in_worker(
    task: Task, inputs: Mapping[str, bytes]
) -> tuple[float, dict[str, bytes], dict[str, Any]]:
    import pickle

    duration, outputs, marks = task.run({name: pickle.loads(data) for name, data in inputs.items()})
    pickled = {name: _pickled_output(task.node, name, data) for name, data in outputs.items()}
    return duration, pickled, marks


def _pickled_output(node: Node, name: str, data: Any) -> bytes:
    import pickle

    try:
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise RunnerError(
            f"Node {node.name!r} output {name!r} ({type(data).__name__}) cannot be pickled to "
            f"send it back from the worker process ({reason(exc)}): save it with a file "
            f"dataset in the catalog, {THREADS_HINT}."
        ) from exc


def _start_method(requested: str | None) -> str:
    import multiprocessing

    method, source = requested, "start_method"
    if method is None:
        method, source = os.environ.get(START_METHOD_ENV), f"${START_METHOD_ENV}"
    available = multiprocessing.get_all_start_methods()
    if not method:
        return "forkserver" if "forkserver" in available else "spawn"
    if method not in available:
        raise RunnerError(
            f"ParallelRunner {source} {method!r} is not available here."
            f"{did_you_mean(method, available, or_list=True)}"
        )
    return method


#: How long a fork server that failed to import its libraries may take to end.
_FORK_SERVER_RESTART_SECONDS = 10.0


def _worker_environment(max_workers: int) -> dict[str, str]:
    """This process's environment, with native thread pools sized to a worker's share of the CPUs.

    Each worker's BLAS or OpenMP pool would otherwise start a thread per
    CPU, so that ``n`` workers on ``n`` CPUs run ``n * n`` threads that wait
    for each other. A variable set already, by the user, is kept.
    """
    share = str(max(1, cpu_count() // max_workers))
    return {**dict.fromkeys(_THREAD_VARIABLES, share), **os.environ}


@contextmanager
def _server_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """Have a fork server that starts within the block take ``environment``.

    The server inherits this process's environment as it starts, and its
    libraries size their thread pools while it imports them, before any
    worker could change it. The variables this process lacks are set only
    for that moment.
    """
    added = {name: value for name, value in environment.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _start_fork_server(
    context: Any, libraries: tuple[str, ...], environment: Mapping[str, str]
) -> None:
    """Have this process's fork server running, holding ``libraries`` if it starts now.

    The fork server is one per process and keeps the modules and the
    environment it started with; a later run whose nodes need other modules
    has its workers import them. A
    library that raises anything but ``ImportError`` while the server imports
    it (where a node guards the import with ``try``) would end the server, so
    a server that fails to start a first process is started again without
    the libraries: workers then import them themselves, ignoring failures.
    """
    _preload(context, libraries)
    try:
        with _server_environment(environment):
            _fork_one(context)
        return
    except (OSError, EOFError):
        _preload(context, ())
    except BaseException:
        # A stop while the server imports: it would only see the parent gone
        # once its imports are done, however long they take.
        _end_fork_server()
        raise
    # The failed server is started again once it has ended, which takes a moment.
    deadline = time.monotonic() + _FORK_SERVER_RESTART_SECONDS
    while True:
        try:
            with _server_environment(environment):
                _fork_one(context)
            return
        except (OSError, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _preload(context: Any, libraries: tuple[str, ...]) -> None:
    """What a fork server started from now on imports: the main module, then the rest in order.

    The main module comes first whatever its place in the list.
    """
    context.set_forkserver_preload(["__main__", _COLLECTOR_OFF, __name__, *libraries])


def _worth_a_server(libraries: tuple[str, ...]) -> bool:
    """Whether a library outside Python's own and Kilnflow is imported: only those cost."""
    cheap = {*sys.stdlib_module_names, "kilnflow"}
    return any(name.partition(".")[0] not in cheap for name in libraries)


def _launch_fork_server(
    context: Any, libraries: tuple[str, ...], environment: Mapping[str, str]
) -> bool:
    """Start this process's fork server importing ``libraries``, without waiting for it.

    Returns whether a server started now; one already running keeps what it holds.
    """
    from multiprocessing import forkserver

    before = _fork_server_pid()
    _preload(context, libraries)
    with _server_environment(environment):
        forkserver.ensure_running()
    return _fork_server_pid() != before


def _end_fork_server() -> None:
    """End this process's fork server now; the next run starts a new one."""
    pid = _fork_server_pid()
    if pid is not None:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _fork_server_pid() -> int | None:
    from multiprocessing import forkserver

    # The module offers no public way to stop its server or learn its pid.
    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    return pid if isinstance(pid, int) else None


def _fork_one(context: Any) -> None:
    """Start one process; returns once the fork server has imported its modules.

    The server hands out a process only when its imports are done, and the
    start fails if the server died instead. Waiting for the process to end
    as well would add its exit to the run's start: it ends by itself, and
    the server collects it.
    """
    context.Process(target=int, name="kilnflow-fork-server-check").start()


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


# The pool's module loads multiprocessing, which a run that never uses it need not import.
class ParallelRunner(AbstractRunner["ProcessPoolExecutor"]):
    """Runs nodes in worker processes, each set up for the project, for CPU-bound work.

    ``max_workers`` defaults to the CPUs this process may use; workers start
    only as nodes need them. ``start_method`` is ``spawn``, ``forkserver`` or
    ``fork``; by default ``$KILNFLOW_MP_START_METHOD``, else ``forkserver``
    where available, else ``spawn``. Nodes, datasets and memory
    data must be picklable, which is checked before any node runs. A worker
    that dies fails the run at once with an error naming its node; Ctrl-C
    ends the workers.
    """

    def __init__(self, max_workers: int | None = None, start_method: str | None = None) -> None:
        super().__init__(max_workers=max_workers if max_workers is not None else cpu_count())
        #: How worker processes start (``forkserver`` by default may become ``spawn``
        #: for a run whose nodes import no library, see the module's docstring).
        self.start_method = _start_method(start_method)
        self._start_chosen = bool(start_method or os.environ.get(START_METHOD_ENV))
        self._worker_init: WorkerInit | None = None
        self._imports = WorkerImports((), ())
        self._in_flight: dict[Future[Any], str] = {}
        self._signals = HeldSignals()
        self._catalog: DataCatalog | None = None
        self._free_outputs: frozenset[str] = frozenset()
        # Pickles of memory data, as workers sent them back (``_held``: not yet in
        # the catalog, by the dataset a transcoded name stands for, with the name
        # it was saved as) or as first sent from the catalog (``_sent``).
        self._held: dict[str, tuple[str, bytes]] = {}
        self._sent: dict[str, bytes] = {}
        # A fork server started by :meth:`warming` that no run has used yet.
        self._early_server = False

    @contextmanager
    def warming(self, modules: Iterable[str]) -> Iterator[None]:
        """Start the fork server now, importing what ``modules`` will, beside this process.

        Node modules usually import pandas at their top, so this process
        imports it while it builds the pipeline; a server started only once
        the pipeline is known would import it again afterwards, and the run
        would wait for both. The libraries are read from the modules' code
        without running it (:func:`~kilnflow.runner._task.predicted_imports`);
        the run still works out exactly what its nodes import, and workers
        import what the server lacks. A server that the run does not use
        (its nodes import no library, or it failed or was stopped first) is
        ended: the registry may name libraries of other pipelines.
        """
        if self.start_method == "forkserver":
            import multiprocessing

            libraries = predicted_imports(modules)
            if self._start_chosen or _worth_a_server(libraries):
                context = multiprocessing.get_context("forkserver")
                self._early_server = _launch_fork_server(
                    context, libraries, _worker_environment(self.max_workers)
                )
        try:
            yield
        finally:
            self._end_early_server()

    def _end_early_server(self) -> None:
        if self._early_server:
            _end_fork_server()
        self._early_server = False

    def _prepare(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager,
        worker_init: WorkerInit | None,
    ) -> None:
        init = worker_init or default_worker_init(hook_manager, _pickle_dump)
        check_picklable(pipeline, catalog, _pickle_dump, type(self).__name__, init)
        self._worker_init = init
        self._imports = worker_imports(pipeline, catalog, init)
        self._catalog = catalog
        self._free_outputs = frozenset(pipeline.outputs())

    @contextmanager
    def _executor(self) -> Iterator[ProcessPoolExecutor]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        assert self._worker_init is not None, "_prepare sets the worker initialiser"
        method = self.start_method
        needs_server = self._start_chosen or _worth_a_server(self._imports.libraries)
        if method == "forkserver" and not needs_server:
            method = "spawn"
            self._end_early_server()  # its imports would only compete with the nodes
        context = multiprocessing.get_context(method)
        environment = _worker_environment(self.max_workers)
        parent_alive, alive = context.Pipe(duplex=False)
        with self._signals.installed(), closing(alive), closing(parent_alive):
            if method == "forkserver":
                # Not held: a stop while the server imports (which may take long) ends
                # the run at once, and the process checking the server ends by itself.
                _start_fork_server(context, self._imports.libraries, environment)
                self._early_server = False  # in use: it serves later runs, as any server
            with self._signals.held():
                records = context.Queue()
                listener = records_listener(records)
                pool = ProcessPoolExecutor(
                    self.max_workers,
                    mp_context=context,
                    initializer=partial(
                        _start_worker,
                        self._worker_init,
                        parent_alive,
                        records,
                        logging.getLogger().getEffectiveLevel(),
                        environment,
                        self._imports,
                    ),
                )
            self._in_flight = {}
            try:
                yield pool
            except BaseException:
                # The listener's thread is a daemon: a worker killed midway through
                # sending a record must not keep this process from ending.
                with self._signals.held():
                    _stop_now(pool)
                self._held = {}  # a stopped run ends promptly, without unpickling
                raise
            finally:
                self._in_flight = {}
                self._sent = {}
            pool.shutdown(wait=True)
            # The workers have ended, so every record they logged is in the queue.
            listener.stop()
            self._keep_held_data()

    def _keep_held_data(self) -> None:
        """Put memory data still held as pickles into the catalog, as nodes run in turn leave it.

        Only a failed run leaves any: its unfinished nodes' inputs, for hooks
        and callers that inspect the catalog afterwards.
        """
        held, self._held = self._held, {}
        if self._catalog is not None:
            import pickle

            for name, payload in held.values():
                self._catalog.save(name, pickle.loads(payload))

    def _submit(
        self,
        executor: ProcessPoolExecutor,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        task = Task.of(node, catalog, session_id)
        inputs = {name: self._pickled_input(catalog, name) for name in task.memory_inputs}
        with self._signals.held():
            future = executor.submit(_run_in_worker, task, inputs)
        self._in_flight[future] = node.name
        return future

    def _pickled_input(self, catalog: DataCatalog, name: str) -> bytes:
        """Memory data for a worker: as a worker sent it, or pickled from the catalog once."""
        import pickle

        held = self._held.get(base_name(name))
        payload = held[1] if held is not None else self._sent.get(name)
        if payload is None:
            payload = pickle.dumps(catalog.load(name), protocol=pickle.HIGHEST_PROTOCOL)
            self._sent[name] = payload
        return payload

    def _finish(
        self,
        executor: ProcessPoolExecutor,
        future: Future[Any],
        node: Node,
        catalog: DataCatalog,
    ) -> float:
        import pickle
        from concurrent.futures.process import BrokenProcessPool

        duration: float
        outputs: dict[str, bytes]
        marks: dict[str, Any]
        try:
            duration, outputs, marks = future.result()
        except BrokenProcessPool as exc:
            raise BrokenProcessPool(self._died_message()) from exc
        finally:
            self._in_flight.pop(future, None)
        for name, payload in outputs.items():
            if name in self._free_outputs:
                catalog.save(name, pickle.loads(payload))
            else:
                self._held[base_name(name)] = (name, payload)
        keep_loaded_marks(catalog, marks)
        return duration

    def _release(self, executor: ProcessPoolExecutor, catalog: DataCatalog, name: str) -> None:
        # As in the catalog, a transcoded name frees nothing: other views may have readers.
        if base_name(name) == name:
            self._held.pop(name, None)
            self._sent.pop(name, None)
        super()._release(executor, catalog, name)

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
