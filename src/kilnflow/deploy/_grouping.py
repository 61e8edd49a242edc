"""Turn a pipeline's nodes into deployment tasks.

Data in memory cannot cross a task boundary: each task is a separate
process, often on another machine. Grouping "by memory" puts nodes linked
through memory datasets into one task; grouping "none" makes every node a
task and refuses a memory dataset between two of them. A node that confirms
a dataset shares a task with every node reading it, since only the process
that loaded the partitions knows which ones to confirm.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kilnflow.errors import PackagingError
from kilnflow.pipeline import Node, Pipeline

__all__ = ["GROUP_BY", "Task", "group_nodes"]

#: The grouping strategies ``group_nodes`` knows.
GROUP_BY = ("memory", "none")


@dataclass
class Task:
    """One deployment task: nodes that run together in one session."""

    #: Identifier usable as an Airflow task id.
    name: str
    #: Node names, in the pipeline's run order.
    nodes: list[str]
    #: Names of the tasks that must finish first.
    upstream: list[str] = field(default_factory=list)


def group_nodes(
    pipeline: Pipeline, is_memory: Callable[[str], bool], by: str = "memory"
) -> list[Task]:
    """Group ``pipeline``'s nodes into tasks, in an order that respects dependencies."""
    if by not in GROUP_BY:
        raise PackagingError(f"Unknown grouping {by!r}; use one of {', '.join(GROUP_BY)}.")
    nodes = pipeline.nodes
    producer = {name: node for node in nodes for name in node.outputs}
    parent: dict[Node, Node] = {node: node for node in nodes}

    def root(node: Node) -> Node:
        while parent[node] is not node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for node in nodes:
        for name in node.inputs:
            source = producer.get(name)
            if source is None or not is_memory(name):
                continue
            if by == "none":
                raise PackagingError(
                    f"Dataset {name!r} passes from node {source.name!r} to node {node.name!r} "
                    "in memory, which cannot cross tasks: declare it in the catalog with a "
                    "persistent type (e.g. PickleDataset), or group with --group-by memory."
                )
            parent[root(node)] = root(source)
    for node in nodes:
        for name in node.confirms:
            for reader in pipeline.readers(name):
                if reader is node:
                    continue
                if by == "none":
                    raise PackagingError(
                        f"Node {node.name!r} confirms {name!r}, which node {reader.name!r} "
                        "reads; a task confirms only what it loaded itself, so they must "
                        "share a task: group with --group-by memory."
                    )
                parent[root(node)] = root(reader)
    _merge_cycles(pipeline, root, parent)
    members: dict[Node, list[Node]] = {}
    for node in nodes:
        members.setdefault(root(node), []).append(node)
    names = _task_names(list(members.values()))
    tasks: dict[Node, Task] = {
        leader: Task(name=names[index], nodes=[node.name for node in group])
        for index, (leader, group) in enumerate(members.items())
    }
    for leader, group in members.items():
        upstream = {
            tasks[root(each)].name
            for node in group
            for each in pipeline.node_dependencies[node]
            if root(each) is not leader
        }
        tasks[leader].upstream = sorted(upstream)
    return list(tasks.values())


def _merge_cycles(
    pipeline: Pipeline, root: Callable[[Node], Node], parent: dict[Node, Node]
) -> None:
    """Merge groups that would depend on each other in a cycle.

    Two nodes joined by memory may sit on either side of a third node that
    uses persisted data; the three must then share one task.
    """
    while True:
        edges: dict[Node, set[Node]] = {}
        for node, parents in pipeline.node_dependencies.items():
            for each in parents:
                if root(each) is not root(node):
                    edges.setdefault(root(each), set()).add(root(node))
        cycle = _find_cycle(edges)
        if not cycle:
            return
        for member in cycle[1:]:
            parent[root(member)] = root(cycle[0])


def _find_cycle(edges: dict[Node, set[Node]]) -> list[Node]:
    state: dict[Node, int] = {}
    for start in sorted(edges, key=lambda node: node.name):
        if start in state:
            continue
        stack: list[tuple[Node, list[Node]]] = [(start, sorted(edges.get(start, ()), key=_name))]
        path = [start]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            child = pending.pop()
            if state.get(child) == 1:
                return path[path.index(child) :]
            if child not in state:
                state[child] = 1
                path.append(child)
                stack.append((child, sorted(edges.get(child, ()), key=_name)))
    return []


def _name(node: Node) -> str:
    return node.name


def _task_names(groups: list[list[Node]]) -> list[str]:
    """Readable, unique task ids: the node names joined, made safe for Airflow."""
    names: list[str] = []
    for group in groups:
        joined = "__".join(node.name for node in group)
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", joined).strip("_")[:200] or "task"
        name, counter = base, 2
        while name in names:
            name, counter = f"{base}_{counter}", counter + 1
        names.append(name)
    return names
