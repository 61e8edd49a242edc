"""Nodes in a pool of worker processes that set themselves up for the project.

Workers start with ``spawn`` by default: a fresh interpreter that inherits
nothing, so a run behaves the same on Linux, macOS and Windows. Each worker
runs the run's *worker initialiser* once. A session passes one that
configures the project and re-creates its hooks from ``settings.HOOKS`` by
importing the settings module in the worker, so hook objects need not be
picklable; without one, the hook objects registered in the parent are
pickled to every worker. Either way a hook's state lives per worker process.

Stopping: Ctrl-C or SIGTERM in the parent ends the workers (SIGTERM, then
SIGKILL after a grace period), which remove the temporary files of saves
under way. The pool's own bookkeeping is never interrupted halfway: a stop
signal arriving while the pool starts a worker or is being stopped waits
until that step is done (see :class:`~kilnflow.runner._signals.HeldSignals`).

Data between nodes: the parent loads a node's memory inputs and sends them
with the node's :class:`~kilnflow.runner._task.Task`; the worker reads and
writes every other dataset itself, and sends memory outputs back, which the
parent saves into its catalog. In the worker, hooks see a plain
``DataCatalog`` holding only that node's datasets.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from kilnflow.errors import RunnerError, did_you_mean
from kilnflow.runner._base import AbstractRunner, cpu_count
from kilnflow.runner._logs import forward_records, records_listener
from kilnflow.runner._signals import HeldSignals
from kilnflow.runner._task import (
    THREADS_HINT,
    WORKER,
    Task,
    WorkerInit,
    check_picklable,
    default_worker_init,
    end_on_stop_signal,
    reason,
)

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = ["START_METHOD_ENV", "ParallelRunner"]

#: Environment variable choosing the start method when none is passed.
START_METHOD_ENV = "KILNFLOW_MP_START_METHOD"


def _pickle_dump(obj: Any, file: Any) -> None:
    import pickle

    pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)


def _start_worker(worker_init: WorkerInit, records: Any, level: int) -> None:
    """Initialise a pool process: the parent alone handles Ctrl-C and shows log records.

    Records of ``level`` and above go to the queue ``records``, which the
    parent reads into its own loggers (before the project is set up, so the
    worker adds no handler of its own). A failed set-up is remembered and
    reported by the first task (an error raised here would only break the
    pool, with no reason given).
    """
    forward_records(records, level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_on_stop_signal()
    threading.Thread(
        target=_end_with_parent, args=(os.getppid(),), name="kilnflow-parent-watch", daemon=True
    ).start()
    with suppress(Exception):
        WORKER.set_up(worker_init)


def _end_with_parent(parent: int) -> None:
    """End this worker soon after its parent is gone, however the parent ended.

    A parent killed outright (SIGKILL, out of memory) cannot stop its pool;
    its workers would otherwise wait for work forever, holding the
    multiprocessing resource tracker alive with them.
    """
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _run_in_worker(task: Task, inputs: Mapping[str, Any]) -> tuple[float, dict[str, bytes]]:
    duration, outputs = task.run(inputs)
    return duration, {
        name: _pickled_output(task.node, name, data) for name, data in outputs.items()
    }


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
        method, source = os.environ.get(START_METHOD_ENV) or "spawn", f"${START_METHOD_ENV}"
    available = multiprocessing.get_all_start_methods()
    if method not in available:
        raise RunnerError(
            f"ParallelRunner {source} {method!r} is not available here."
            f"{did_you_mean(method, available, or_list=True)}"
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


# The pool's module loads multiprocessing, which a run that never uses it need not import.
class ParallelRunner(AbstractRunner["ProcessPoolExecutor"]):
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
        self._signals = HeldSignals()

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

    @contextmanager
    def _executor(self) -> Iterator[ProcessPoolExecutor]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        assert self._worker_init is not None, "_prepare sets the worker initialiser"
        context = multiprocessing.get_context(self.start_method)
        with self._signals.installed():
            with self._signals.held():
                records = context.Queue()
                listener = records_listener(records)
                pool = ProcessPoolExecutor(
                    self.max_workers,
                    mp_context=context,
                    initializer=partial(
                        _start_worker,
                        self._worker_init,
                        records,
                        logging.getLogger().getEffectiveLevel(),
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
                raise
            finally:
                self._in_flight = {}
            pool.shutdown(wait=True)
            # The workers have ended, so every record they logged is in the queue.
            listener.stop()

    def _submit(
        self,
        executor: ProcessPoolExecutor,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        task = Task.of(node, catalog, session_id)
        inputs = {name: catalog.load(name) for name in task.memory_inputs}
        with self._signals.held():
            future = executor.submit(_run_in_worker, task, inputs)
        self._in_flight[future] = node.name
        return future

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
