"""The scheduling loop every runner shares."""

from __future__ import annotations

import heapq
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from kilnflow.errors import (
    MissingInputsError,
    NodeFailedError,
    RunnerError,
    WorkersLostError,
    did_you_mean,
)
from kilnflow.runner._progress import Progress, log_progress
from kilnflow.runner._signals import stop_signals_interrupt
from kilnflow.runner._task import WorkerInit, run_node

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline

__all__ = ["AbstractRunner", "cpu_count"]

#: The executor a runner submits nodes to.
ExecutorT = TypeVar("ExecutorT", bound=Executor)


def cpu_count() -> int:
    """CPUs this process may use (its affinity where the OS tells), at least 1."""
    counted = getattr(os, "process_cpu_count", None)  # python >= 3.13
    if counted is not None:
        found: int | None = counted()
    elif hasattr(os, "sched_getaffinity"):
        found = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows before python 3.13
        found = os.cpu_count()
    return found or 1


class AbstractRunner(ABC, Generic[ExecutorT]):
    """Runs a pipeline against a catalog; subclasses choose where nodes execute.

    The loop checks free inputs first, submits a node as soon as its parents
    finished, releases intermediate datasets once their last consumer is done,
    and on failure stops submitting, lets running nodes finish, and raises
    :class:`NodeFailedError` naming the nodes to resume from. SIGTERM stops
    a run as Ctrl-C does (:class:`~kilnflow.errors.Interrupted`).

    A subclass provides :meth:`_executor`, typed by the executor it yields
    (``AbstractRunner[ThreadPoolExecutor]``), and may refine the parent-side steps
    around it: :meth:`_prepare` (checks before anything runs), :meth:`_submit`,
    :meth:`_finish` (a node's result back in this process) and :meth:`_release`.
    A runner runs one pipeline at a time.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise RunnerError(f"max_workers must be 1 or more, got {max_workers}.")
        self._max_workers = max_workers
        #: Seconds each node of the last run took, by node name.
        self.node_durations: dict[str, float] = {}
        #: Nodes of the last run that ran more than once (a worker was lost), with why.
        self.rerun_nodes: dict[str, str] = {}

    @property
    def max_workers(self) -> int:
        """How many nodes may run at once."""
        return self._max_workers or 1

    def warming(self, modules: Iterable[str]) -> AbstractContextManager[None]:
        """A context in which the caller imports ``modules`` and then runs what they build.

        A session enters it before importing the project's pipelines, so a
        runner whose workers will import the same libraries may start them
        while this process imports (ParallelRunner starts its fork server).
        By default it does nothing.
        """
        return nullcontext()

    @abstractmethod
    def _executor(self) -> AbstractContextManager[ExecutorT]:
        """Return a context manager yielding the executor nodes are submitted to."""

    def _prepare(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager,
        worker_init: WorkerInit | None,
    ) -> None:
        """Check and set up what the run needs before any node starts."""

    def _submit(
        self,
        executor: ExecutorT,
        node: Node,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
    ) -> Future[Any]:
        """Start ``node``; the future's result is what :meth:`_finish` reads."""
        return executor.submit(run_node, node, catalog, hook_manager, session_id)

    def _finish(
        self, executor: ExecutorT, future: Future[Any], node: Node, catalog: DataCatalog
    ) -> float:
        """Return the duration of the finished ``node``, or raise its error.

        Runs in this process for every finished node. An ``Exception`` fails
        the node; anything else (``SystemExit``, ``KeyboardInterrupt``) ends
        the run at once, as it would with nodes run in turn.
        """
        duration: float = future.result()
        return duration

    def _release(self, executor: ExecutorT, catalog: DataCatalog, name: str) -> None:
        """Free dataset ``name``: no node of this run reads it any more."""
        catalog.release(name)

    def run(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager | None = None,
        session_id: str | None = None,
        *,
        worker_init: WorkerInit | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Run every node of ``pipeline``; return the data of its free memory outputs.

        ``worker_init`` sets up each worker process of runners that run nodes
        in other processes; runners that run nodes in this process ignore it
        and call ``hook_manager`` directly. ``progress`` shows completed nodes
        (the caller knows whether a person is watching); by default each is logged.
        """
        if hook_manager is None:
            from kilnflow.hooks import create_hook_manager

            hook_manager = create_hook_manager()
        missing = sorted(name for name in pipeline.inputs() if not catalog.can_load(name))
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise MissingInputsError(
                f"The pipeline's free inputs {names} are not in the catalog: declare them "
                "in the catalog, or add the nodes that produce them."
            )
        for name in pipeline.datasets():
            catalog.get(name)  # constructed now, so a missing library fails before any node
        _check_confirms(pipeline, catalog)
        self.node_durations = {}
        self.rerun_nodes = {}
        with stop_signals_interrupt():
            self._prepare(pipeline, catalog, hook_manager, worker_init)
            self._schedule(pipeline, catalog, hook_manager, session_id, progress or log_progress)
        return {name: catalog.load(name) for name in pipeline.outputs() if catalog.is_memory(name)}

    def _schedule(
        self,
        pipeline: Pipeline,
        catalog: DataCatalog,
        hook_manager: HookManager,
        session_id: str | None,
        progress: Progress,
    ) -> None:
        nodes = pipeline.nodes
        order = {node: index for index, node in enumerate(nodes)}
        children: dict[Node, list[Node]] = {node: [] for node in nodes}
        waiting_on: dict[Node, int] = {}
        for node, parents in pipeline.node_dependencies.items():
            waiting_on[node] = len(parents)
            for parent in parents:
                children[parent].append(node)
        ready = [order[node] for node in nodes if not waiting_on[node]]
        readers = Counter(name for node in nodes for name in set(node.inputs))
        releasable = pipeline.all_outputs() - pipeline.outputs()
        running: dict[Future[Any], Node] = {}
        done: set[Node] = set()
        failure: tuple[Node, Exception] | None = None

        with self._executor() as executor, progress(len(nodes)) as advance:
            while ready or running:
                while ready and failure is None and len(running) < self.max_workers:
                    node = nodes[heapq.heappop(ready)]
                    future = self._submit(executor, node, catalog, hook_manager, session_id)
                    running[future] = node
                if not running:
                    break
                for future in _completed(running):
                    node = running.pop(future)
                    try:
                        duration = self._finish(executor, future, node, catalog)
                    except Exception as exc:
                        failure = failure or (node, exc)
                        continue
                    done.add(node)
                    self.node_durations[node.name] = duration
                    advance(node.name)
                    for child in children[node]:
                        waiting_on[child] -= 1
                        if not waiting_on[child]:
                            heapq.heappush(ready, order[child])
                    for name in set(node.inputs):
                        readers[name] -= 1
                        if not readers[name] and name in releasable:
                            self._release(executor, catalog, name)
        if failure is not None:
            failed, error = failure
            resume = _resume_nodes(pipeline, done, catalog)
            resume_hint = f'then resume with --from-nodes "{",".join(resume)}".'
            if isinstance(error, WorkersLostError):
                # The cluster, not the node, failed: its message says what to fix.
                message = f"Node {failed.name!r} failed because {error}, {resume_hint}"
            else:
                message = (
                    f"Node {failed.name!r} failed with {type(error).__name__}: {error}. "
                    f"Fix it, {resume_hint}"
                )
            raise NodeFailedError(
                message,
                node_name=failed.name,
                resume_nodes=resume,
            ) from error


def _check_confirms(pipeline: Pipeline, catalog: DataCatalog) -> None:
    """Fail before any node runs when a node confirms what has no checkpoint to move."""
    used = pipeline.datasets()
    for node in pipeline.nodes:
        for name in node.confirms:
            dataset = catalog.get(name)
            if dataset is None and name not in used:
                known = {*catalog.list(), *used}
                raise RunnerError(
                    f"Node {node.name!r} confirms {name!r}, which is not in the catalog."
                    f"{did_you_mean(name, known)} Declare it in the catalog or fix the "
                    "node's confirms."
                )
            if not callable(getattr(dataset, "confirm", None)):
                kind = "MemoryDataset" if dataset is None else type(dataset).__name__
                raise RunnerError(
                    f"Node {node.name!r} confirms {name!r}, a {kind} with no checkpoint to "
                    "move; confirm a dataset such as a partitions.IncrementalDataset, or drop "
                    "it from the node's confirms."
                )
            _check_confirmed_after_readers(pipeline, node, name)


def _check_confirmed_after_readers(pipeline: Pipeline, node: Node, name: str) -> None:
    """A checkpoint may move only once every node of the run that read its data succeeded.

    Otherwise a reader failing after the confirm would lose the partitions
    it was given: the next run starts after them.
    """
    readers = pipeline.readers(name)
    if not readers:
        raise RunnerError(
            f"Node {node.name!r} confirms {name!r}, which no node of this run reads, so "
            "there is nothing to confirm and its checkpoint would stay; run the nodes that "
            f"read {name!r} too."
        )
    upstream = set(pipeline.to_nodes(node.name).nodes)
    for reader in readers:
        if reader not in upstream:
            raise RunnerError(
                f"Node {node.name!r} confirms {name!r}, which node {reader.name!r} also reads "
                f"without {node.name!r} waiting for it, so the checkpoint could move before "
                f"{reader.name!r} succeeded and its partitions be lost; confirm {name!r} from "
                f"a node downstream of every node that reads it."
            )


def _completed(running: dict[Future[Any], Node]) -> Iterator[Future[Any]]:
    """Yield finished futures, waiting only when none has finished yet."""
    finished = [future for future in running if future.done()]
    if not finished:
        finished = list(wait(running, return_when=FIRST_COMPLETED).done)
    yield from finished


def _resume_nodes(pipeline: Pipeline, done: Iterable[Node], catalog: DataCatalog) -> list[str]:
    """Smallest set of nodes whose ``--from-nodes`` run finishes the pipeline.

    Unfinished nodes must run again; so must any finished node whose output
    only lived in memory and is still needed, since that data is gone after
    the process exits, and any finished node that read a dataset an
    unfinished node confirms. The answer is the roots of that set.
    """
    finished = set(done)
    producer = {name: node for node in pipeline.nodes for name in node.outputs}
    rerun = {node for node in pipeline.nodes if node not in finished}
    stack = list(rerun)
    while stack:
        node = stack.pop()
        needed = [
            producer[name] for name in node.inputs if name in producer and catalog.is_memory(name)
        ]
        # A confirm moves the checkpoint past what this run loaded: only a run that
        # loads the same partitions again may confirm them.
        needed += [reader for name in node.confirms for reader in pipeline.readers(name)]
        for parent in needed:
            if parent not in rerun:
                rerun.add(parent)
                stack.append(parent)
    roots = [
        node.name
        for node in pipeline.nodes
        if node in rerun and not (pipeline.node_dependencies[node] & rerun)
    ]
    return sorted(roots)
