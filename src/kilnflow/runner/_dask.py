"""Nodes as tasks on a Dask cluster whose workers set themselves up for the project.

A worker plugin runs the run's worker initialiser on every worker, present
or joining later, so node and dataset hooks run on the workers (re-created
there from the project's settings when a session runs the pipeline).
Memory outputs stay on the cluster: a consumer task receives its producers'
futures, so data moves between workers, not through this process; only the
pipeline's free memory outputs are gathered here. Other datasets are read
and written by the workers themselves, so their paths must be reachable
from every worker.

``dask.distributed`` is imported only when a run starts.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from contextlib import ExitStack, contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from kilnflow.errors import RunnerError, WorkersLostError
from kilnflow.runner._base import AbstractRunner
from kilnflow.runner._dask_check import check_cluster, packages_of
from kilnflow.runner._task import (
    WORKER,
    Task,
    WorkerInit,
    check_picklable,
    default_worker_init,
    end_on_stop_signal,
    keep_loaded_marks,
)

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = ["DaskRunner"]

logger = logging.getLogger("kilnflow.runner")

_T = TypeVar("_T")
_INSTALL = 'DaskRunner needs dask.distributed: pip install "kilnflow[dask]".'
_PLUGIN_NAME = "kilnflow-project"
#: Event topic on which each task says which worker started it.
_STARTED_TOPIC = "kilnflow-node-started"

#: Where a memory dataset lives on the cluster: a future, and the output name
#: to pick from that node's result (None when the future holds the data itself).
_Remote = tuple[Any, str | None]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise RunnerError(_INSTALL) from exc
    return distributed


def _cloudpickle_dump(obj: Any, file: Any) -> None:
    import cloudpickle  # type: ignore[import-untyped]

    cloudpickle.dump(obj, file)


def _set_up_worker(worker_init: WorkerInit, level: int) -> None:
    """Set up this worker process through this module's own worker state.

    The plugin is sent by value; a call to a module-level function reaches the
    worker's :data:`WORKER`, not a copy of it sent along with the plugin.
    """
    end_on_stop_signal()
    logging.getLogger().setLevel(level)
    WORKER.set_up(worker_init)


def _close_worker() -> None:
    """Remove the temporary files of saves that a closing worker will never finish.

    A stopped run closes its cluster while tasks may still be saving; their
    threads cannot be stopped, and their files must not stay half-written.
    """
    from kilnflow._atomic import discard_unfinished_writes

    discard_unfinished_writes()


def _project_plugin(worker_init: WorkerInit, level: int) -> Any:
    """A worker plugin that runs ``worker_init`` on every worker, logging at ``level``.

    The class is made here because it must subclass distributed's
    ``WorkerPlugin``, which is not imported with this module; cloudpickle
    sends it to the workers by value.
    """
    from distributed import WorkerPlugin

    class ProjectWorkerPlugin(WorkerPlugin):
        def __init__(self, init: WorkerInit, level: int) -> None:
            self.init = init
            self.level = level

        def setup(self, worker: Any) -> None:
            _set_up_worker(self.init, self.level)

        def teardown(self, worker: Any) -> None:
            _close_worker()

    return ProjectWorkerPlugin(worker_init, level)


def _run_task(
    task: Task, inputs: Mapping[str, tuple[Any, str | None]]
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Run one node's task on a worker; the futures in ``inputs`` arrive resolved."""
    from distributed import get_client, get_worker

    # Through the scheduler before the node runs (a worker's own events are sent
    # later, and lost if the node kills it), so a run that Dask repeats is seen.
    address = get_worker().address
    get_client().log_event(_STARTED_TOPIC, {"node": task.node.name, "worker": address})
    data = {
        name: value if output is None else value[1][output]
        for name, (value, output) in inputs.items()
    }
    return task.run(data)


def _stop_forwarding(client: Any) -> None:
    """Undo ``forward_logging``; a cluster already gone has nothing left to undo."""
    with suppress(Exception):
        client.unforward_logging()


def _summary(result: tuple[float, dict[str, Any], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """What the parent needs of a task's result: its duration and loaded marks."""
    return result[0], result[2]


def _settle(future: Future[Any], error: BaseException | None, result: Any = None) -> None:
    """Complete ``future`` unless the lost-workers watch already failed it."""
    with suppress(InvalidStateError):
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _lost_workers(exc: BaseException, distributed: Any, started: int) -> str | None:
    """Why Dask gave up on a node because of its workers, or None when it did not."""
    if isinstance(exc, distributed.KilledWorker):
        allowed = getattr(exc, "allowed_failures", None)
        died = started if allowed is None else allowed + 1
        return (
            f"the Dask workers running it died {died} times, so the scheduler gave up on it "
            f"(distributed.scheduler.allowed-failures is {allowed}): look in the worker logs "
            "for why they died (an out-of-memory kill is the usual cause), give the workers "
            "more memory or raise allowed-failures on the scheduler"
        )
    no_worker = getattr(distributed.scheduler, "NoWorkerError", None)
    if no_worker is not None and isinstance(exc, no_worker):
        return (
            "the Dask cluster had no worker left to run it for longer than the scheduler's "
            "distributed.scheduler.no-workers-timeout: look in the worker logs for why they "
            "died (an out-of-memory kill is the usual cause), start workers with more memory"
        )
    if isinstance(exc, CancelledError):
        why = getattr(exc, "reason", None) or str(exc) or "no reason given"
        return (
            f"the Dask scheduler dropped it ({why}), as it does when it loses data the node "
            "needs or cannot read the task: look in the scheduler's log for why ('Error "
            "during deserialization of the task graph' there means it lacks a package that "
            "this run's data or datasets need: install it on the scheduler and every worker)"
        )
    return None


class _DaskExecutor(Executor):
    """Submits to a Dask client, returning standard futures the shared loop can wait on.

    It also remembers where each memory dataset of the run lives on the cluster.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.remote: dict[str, _Remote] = {}
        #: The workers that started each node, in order: more than one when Dask re-ran it.
        self.started: dict[str, list[str]] = {}
        #: Nodes that failed because their workers were lost: no rerun to report.
        self.lost: set[str] = set()
        # Unfinished tasks only: holding finished ones would keep their data alive.
        self._running: set[Any] = set()
        self._waiting: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._stop_watching = threading.Event()
        client.subscribe_topic(_STARTED_TOPIC, self._note_start)

    def _note_start(self, event: tuple[float, Mapping[str, str]]) -> None:
        _, message = event
        self.started.setdefault(message["node"], []).append(message["worker"])

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        future: Future[_T] = Future()

        def copy_outcome(done: Any) -> None:
            try:
                result = done.result()
            except BaseException as exc:
                _settle(future, exc)
            else:
                _settle(future, None, result)
            with self._lock:
                self._waiting.discard(future)

        with self._lock:
            self._waiting.add(future)
        self.task(fn, *args, **kwargs).add_done_callback(copy_outcome)
        return future

    def watch_workers(self, timeout: float, *, seen: bool) -> None:
        """Fail every waiting node once the cluster has had no worker for ``timeout`` seconds.

        Dask itself waits for workers forever, so a run whose workers all died
        would hang; a nanny restarting a worker takes a second or two, and an
        adaptive cluster scales up again within the timeout. Until a worker has
        been ``seen``, the run waits for one as Dask does.
        """
        threading.Thread(
            target=self._watch, args=(timeout, seen), name="kilnflow-dask-workers", daemon=True
        ).start()

    def _watch(self, timeout: float, seen: bool) -> None:
        empty_since: float | None = None
        while not self._stop_watching.wait(min(1.0, timeout / 4)):
            try:
                workers = len(self.client.nthreads())
            except Exception:  # the client is closing or reconnecting; its futures tell why
                continue
            now = time.monotonic()
            seen = seen or workers > 0
            if workers or not seen:
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= timeout and not self._stop_watching.is_set():
                self._lose_all(timeout)
                return

    def _lose_all(self, timeout: float) -> None:
        error = WorkersLostError(
            f"every worker of the Dask cluster at {self.client.scheduler.address} died or "
            f"left while the run waited on it, and none joined within {timeout:g} s: look in "
            "the worker logs for why they died (an out-of-memory kill is the usual cause), "
            "start workers with more memory"
        )
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        # Failed before their tasks are cancelled, so the run sees this error, not a cancellation.
        for future in waiting:
            _settle(future, error)
        with suppress(Exception):
            self.client.cancel(list(self._running))

    def task(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Submit ``fn`` as a task that may run again elsewhere; return its Dask future."""
        name = getattr(fn, "__name__", "task").strip("_")
        task = self.client.submit(
            fn, *args, key=f"kilnflow-{name}-{uuid4().hex}", pure=False, **kwargs
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Not joined: a call to a scheduler that is gone may block the watch for a while.
        self._stop_watching.set()
        if cancel_futures:
            self.client.cancel(list(self._running))
        with suppress(Exception):
            self.client.unsubscribe_topic(_STARTED_TOPIC)
        self._running.clear()
        self.remote.clear()


class DaskRunner(AbstractRunner[_DaskExecutor]):
    """Runs nodes as tasks on a ``dask.distributed`` cluster.

    Give the ``address`` of a scheduler, or a connected ``client``; with
    neither, the run starts a ``LocalCluster`` (with ``cluster_args``) and
    closes it afterwards. A client passed in is left open. Nodes, datasets
    and memory data must be picklable by cloudpickle, which is checked
    before any node runs. The scheduler and every worker must have the
    project's package and Kilnflow installed, at this process's versions,
    which is checked before any task is sent. A run whose cluster lost
    every worker fails once none joined for ``no_workers_timeout`` seconds.
    """

    def __init__(
        self,
        address: str | None = None,
        client: Any = None,
        *,
        cluster_args: Mapping[str, Any] | None = None,
        no_workers_timeout: float = 30.0,
    ) -> None:
        if address is not None and client is not None:
            raise RunnerError(
                "DaskRunner takes a scheduler address or a client, not both; pass one."
            )
        if client is None and importlib.util.find_spec("distributed") is None:
            raise RunnerError(_INSTALL)
        seconds = isinstance(no_workers_timeout, (int, float)) and not isinstance(
            no_workers_timeout, bool
        )
        if not seconds or no_workers_timeout <= 0:
            raise RunnerError(
                f"DaskRunner's no_workers_timeout must be a number of seconds above 0, got "
                f"{no_workers_timeout!r}; it is how long a run that lost every worker waits "
                "for one."
            )
        super().__init__()
        #: Scheduler to connect to, e.g. ``tcp://10.0.0.5:8786``.
        self.address = address
        #: Connected ``distributed.Client`` to run on, if given.
        self.client = client
        self._cluster_args = dict(cluster_args or {})
        #: Seconds a run waits for a worker once its cluster lost them all, then fails.
        self.no_workers_timeout = no_workers_timeout
        self._packages: dict[str, bool] = {}
        self._worker_init: WorkerInit | None = None
        self._free_memory: frozenset[str] = frozenset()

    @property
    def max_workers(self) -> int:
        """Every ready node is submitted at once; the Dask scheduler places them."""
        return sys.maxsize

    def _prepare(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager,
        worker_init: WorkerInit | None,
    ) -> None:
        _import_distributed()
        init = worker_init or default_worker_init(hook_manager, _cloudpickle_dump)
        check_picklable(pipeline, catalog, _cloudpickle_dump, type(self).__name__, init)
        self._worker_init = init
        self._free_memory = frozenset(
            name for name in pipeline.outputs() if catalog.is_memory(name)
        )
        self._packages = packages_of(pipeline, catalog)

    @contextmanager
    def _executor(self) -> Iterator[_DaskExecutor]:
        distributed = _import_distributed()
        with ExitStack() as stack:
            client = self.client
            if client is None and self.address is None:
                cluster = stack.enter_context(distributed.LocalCluster(**self._cluster_args))
                client = stack.enter_context(distributed.Client(cluster))
            elif client is None:
                client = stack.enter_context(distributed.Client(self.address))
            # Workers' records reach this process's loggers (before the project is
            # set up there, so workers add no handler of their own).
            level = logging.getLogger().getEffectiveLevel()
            client.forward_logging(level=level)
            stack.callback(_stop_forwarding, client)
            # The scheduler unpickles the graph: check it first. Workers are checked once
            # set up, since in project mode that is what makes the project importable.
            check_cluster(client, self._packages, workers=False)
            self._set_up_workers(client, level)
            workers = check_cluster(client, self._packages, workers=True)
            executor = _DaskExecutor(client)
            executor.watch_workers(self.no_workers_timeout, seen=workers > 0)
            try:
                yield executor
            except BaseException:
                executor.shutdown(cancel_futures=True)
                raise
            self._report_reruns(executor)
            executor.shutdown()

    def _report_reruns(self, executor: _DaskExecutor) -> None:
        """Warn about nodes Dask ran again because a worker running them was lost."""
        for name, workers in executor.started.items():
            if len(workers) > 1 and name not in executor.lost:
                message = (
                    f"Dask ran node {name!r} again on worker {workers[-1]} after worker "
                    f"{', '.join(workers[:-1])}, which ran it or held its outputs, was lost "
                    "(it died or left the cluster); its outputs come from the last run, so "
                    "check that the node can run twice."
                )
                logger.warning(message)
                self.rerun_nodes[name] = message

    def _set_up_workers(self, client: Any, level: int) -> None:
        assert self._worker_init is not None, "_prepare sets the worker initialiser"
        # register_worker_plugin is the name before distributed 2023.9.
        register = getattr(client, "register_plugin", None) or client.register_worker_plugin
        try:
            register(_project_plugin(self._worker_init, level), name=_PLUGIN_NAME)
        except Exception as exc:
            raise RunnerError(
                f"The Dask workers of {client.scheduler.address} could not set themselves up "
                f"for the project ({type(exc).__name__}: {exc}): install the project's package "
                "on every worker, or see the worker logs."
            ) from exc

    def _submit(
        self,
        executor: _DaskExecutor,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        task = Task.of(node, catalog, session_id)
        inputs: dict[str, _Remote] = {}
        for name in task.memory_inputs:
            # Data from this process travels inside the task, which the scheduler keeps,
            # so a rerun elsewhere still has it after the worker holding it is lost.
            inputs[name] = executor.remote.get(name) or (catalog.load(name), None)
        remote = executor.task(_run_task, task, inputs)
        for name in task.memory_outputs:
            executor.remote[name] = (remote, name)
        # Only the duration and loaded marks come back here; the outputs stay on the cluster.
        return executor.submit(_summary, remote)

    def _finish(
        self, executor: _DaskExecutor, future: Future[Any], node: Node, catalog: DataCatalog
    ) -> float:
        try:
            duration: float
            duration, marks = future.result()
            keep_loaded_marks(catalog, marks)
            free = [name for name in node.outputs if name in self._free_memory]
            if free:
                task, _ = executor.remote[free[0]]
                outputs = task.result()[1]
                for name in free:
                    catalog.save(name, outputs[name])
        except WorkersLostError:
            executor.lost.add(node.name)
            raise
        except Exception as exc:
            started = len(executor.started.get(node.name, ()))
            why = _lost_workers(exc, _import_distributed(), started)
            if why is None:
                raise
            executor.lost.add(node.name)
            raise WorkersLostError(why) from exc
        return duration

    def _release(self, executor: _DaskExecutor, catalog: DataCatalog, name: str) -> None:
        executor.remote.pop(name, None)
        catalog.release(name)
