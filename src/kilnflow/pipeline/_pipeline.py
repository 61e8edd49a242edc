"""Pipelines: validated, topologically sorted sets of nodes, and their filters."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

from kilnflow.errors import (
    CircularDependencyError,
    OutputNotUniqueError,
    PipelineError,
    did_you_mean,
)
from kilnflow.pipeline._node import Node, Tags, base_name, normalize_tags

__all__ = ["Pipeline"]

_REPR_NODES = 10


def _with_hint(name: str, known: Iterable[str]) -> str:
    hint = did_you_mean(name, known).strip()
    return f"{name!r} ({hint[0].lower()}{hint[1:]})" if hint else repr(name)


def _listing(names: Iterable[str], limit: int = 10) -> str:
    """Up to ``limit`` sorted names, so a message shows what could have been meant."""
    ordered = sorted(names)
    shown = ", ".join(ordered[:limit])
    return f"{shown} and {len(ordered) - limit} more" if len(ordered) > limit else shown


def _names(args: Iterable[object], label: str) -> list[str]:
    names: list[str] = []
    for name in args:
        if not isinstance(name, str):
            raise PipelineError(
                f"{label} takes names as separate string arguments, got {name!r}; "
                "unpack a list with *names."
            )
        names.append(name)
    if not names:
        raise PipelineError(f"{label} needs at least one name; pass the names to select.")
    return names


def _as_names(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _closure(start: Iterable[Node], edges: dict[Node, Any]) -> set[Node]:
    """Nodes reachable from ``start`` (inclusive) along ``edges``."""
    seen = set(start)
    stack = list(seen)
    while stack:
        for other in edges[stack.pop()]:
            if other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


class Pipeline:
    """An immutable, validated set of nodes in a deterministic run order.

    Construction flattens nested pipelines, drops repeated copies of the same
    node, and rejects two different nodes with one name, two nodes writing one
    dataset and dependency cycles. Producer/consumer indices are built once
    here; everything derived from them is cached, so building, sorting and
    filtering stay near-linear in the number of nodes.

    Deliberately not iterable: use :attr:`nodes` for the run order.
    """

    _nodes: tuple[Node, ...]
    _by_name: dict[str, Node]
    _producer: dict[str, Node]
    _parents: dict[Node, frozenset[Node]]
    _children: dict[Node, list[Node]]

    def __init__(
        self,
        nodes: Iterable[Node | Pipeline] | Pipeline | Node,
        tags: Tags = None,
    ) -> None:
        flat: list[Node] = []
        given: object = nodes  # checked at run time: callers are often untyped
        items: Iterable[object]
        if isinstance(given, (Node, Pipeline)):
            items = (given,)
        elif isinstance(given, Iterable) and not isinstance(given, (str, bytes)):
            items = given
        else:
            raise PipelineError(
                f"Pipeline() takes a list of nodes and pipelines, got {nodes!r}; "
                "build nodes with node(func, inputs, outputs)."
            )
        for item in items:
            if isinstance(item, Node):
                flat.append(item)
            elif isinstance(item, Pipeline):
                flat.extend(item._nodes)
            else:
                raise PipelineError(
                    f"Pipeline() takes nodes and pipelines, got {item!r} of type "
                    f"{type(item).__name__}; build nodes with node(func, inputs, outputs)."
                )
        extra = normalize_tags(tags, "Pipeline()")
        if extra:
            flat = [each.tag(extra) for each in flat]
        self._build(flat)

    def _build(self, flat: list[Node]) -> None:
        by_name: dict[str, Node] = {}
        for each in flat:
            known = by_name.setdefault(each.name, each)
            if known is not each and known != each:
                raise PipelineError(
                    f"The pipeline has two different nodes named {each.name!r} ({known!r} "
                    f"and {each!r}); give one of them another name=, or wrap each copy in "
                    "pipeline(..., namespace=...)."
                )
        ordered = [by_name[name] for name in sorted(by_name)]
        # Keyed by base name: ``table@pandas`` and ``table@spark`` are one dataset.
        producer: dict[str, Node] = {}
        for each in ordered:
            for dataset in each.outputs:
                writer = producer.setdefault(base_name(dataset), each)
                if writer is not each:
                    raise OutputNotUniqueError(
                        f"Nodes {writer.name!r} and {each.name!r} both write dataset "
                        f"{base_name(dataset)!r}; rename the output of one of them."
                    )
        parents: dict[Node, frozenset[Node]] = {}
        children: dict[Node, list[Node]] = {each: [] for each in ordered}
        for each in ordered:
            found = frozenset(
                producer[base] for base in map(base_name, each.inputs) if base in producer
            )
            parents[each] = found
            for parent in found:
                children[parent].append(each)
        object.__setattr__(self, "_nodes", _toposort(ordered, parents, children))
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_producer", producer)
        object.__setattr__(self, "_parents", parents)
        object.__setattr__(self, "_children", children)

    # Structure -----------------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """Nodes in run order: topological, ties broken by node name."""
        return list(self._nodes)

    @cached_property
    def _layers(self) -> tuple[tuple[Node, ...], ...]:
        depth: dict[Node, int] = {}
        layers: list[list[Node]] = []
        for each in self._nodes:
            level = max((depth[parent] for parent in self._parents[each]), default=-1) + 1
            depth[each] = level
            if level == len(layers):
                layers.append([])
            layers[level].append(each)
        return tuple(tuple(sorted(layer, key=_node_name)) for layer in layers)

    @property
    def grouped_nodes(self) -> list[list[Node]]:
        """Layers by name; every node's parents sit in earlier layers."""
        return [list(layer) for layer in self._layers]

    @property
    def node_dependencies(self) -> dict[Node, set[Node]]:
        """The parents of each node (the nodes writing what it reads), in run order."""
        return {each: set(self._parents[each]) for each in self._nodes}

    @cached_property
    def _all_inputs(self) -> frozenset[str]:
        return frozenset(name for each in self._nodes for name in each.inputs)

    @cached_property
    def _all_outputs(self) -> frozenset[str]:
        return frozenset(name for each in self._nodes for name in each.outputs)

    @cached_property
    def _consumers(self) -> dict[str, list[Node]]:
        """Readers by base name, in run order."""
        consumers: dict[str, list[Node]] = {}
        for each in self._nodes:
            for name in dict.fromkeys(map(base_name, each.inputs)):
                consumers.setdefault(name, []).append(each)
        return consumers

    @cached_property
    def _node_set(self) -> frozenset[Node]:
        return frozenset(self._nodes)

    @cached_property
    def _namespaces(self) -> frozenset[str]:
        found: set[str] = set()
        for each in self._nodes:
            if each.namespace is not None:
                parts = each.namespace.split(".")
                found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        return frozenset(found)

    @cached_property
    def _tags(self) -> frozenset[str]:
        return frozenset(tag for each in self._nodes for tag in each.tags)

    def readers(self, dataset: str) -> list[Node]:
        """The nodes reading ``dataset`` under any of its transcoded names, in run order."""
        return list(self._consumers.get(dataset, ()))

    def inputs(self) -> set[str]:
        """Free inputs: datasets read but written by no node (they must exist before a run).

        A transcoded name (``table@pandas``) is free only if no node writes its
        base dataset under any name.
        """
        return {name for name in self._all_inputs if base_name(name) not in self._producer}

    def outputs(self) -> set[str]:
        """Free outputs: datasets written but read by no node (under any transcoding)."""
        return {name for name in self._all_outputs if base_name(name) not in self._consumers}

    def all_inputs(self) -> set[str]:
        return set(self._all_inputs)

    def all_outputs(self) -> set[str]:
        return set(self._all_outputs)

    def datasets(self) -> set[str]:
        return set(self._all_inputs | self._all_outputs)

    # Filters -------------------------------------------------------------------

    def _unknown(self, label: str, unknown: list[str], known: Iterable[str], what: str) -> None:
        if unknown:
            candidates = list(known)
            listed = ", ".join(_with_hint(name, candidates) for name in unknown)
            raise PipelineError(f"{label}: {listed} {what}.")

    def _select_names(self, names: list[str], label: str) -> set[Node]:
        unknown = [name for name in names if name not in self._by_name]
        self._unknown(
            label,
            unknown,
            self._by_name,
            f"is not a node of this pipeline; its nodes are {_listing(self._by_name)}",
        )
        return {self._by_name[name] for name in names}

    def _select_tags(self, tags: list[str], label: str) -> set[Node]:
        wanted = set(tags)
        selected = {each for each in self._nodes if not wanted.isdisjoint(each.tags)}
        if not selected:
            listed = ", ".join(_with_hint(tag, self._tags) for tag in tags)
            raise PipelineError(
                f"{label}: no node of this pipeline has any of the tags {listed}; "
                "check the tags given to node() and Pipeline()."
            )
        return selected

    def _select_from_nodes(self, names: list[str], label: str) -> set[Node]:
        return _closure(self._select_names(names, label), self._children)

    def _select_to_nodes(self, names: list[str], label: str) -> set[Node]:
        return _closure(self._select_names(names, label), self._parents)

    def _select_from_inputs(self, datasets: list[str], label: str) -> set[Node]:
        consumers = self._consumers
        unknown = [name for name in datasets if base_name(name) not in consumers]
        self._unknown(
            label, unknown, consumers, "is read by no node of this pipeline; pass datasets it reads"
        )
        return _closure(
            (c for name in datasets for c in consumers[base_name(name)]), self._children
        )

    def _select_to_outputs(self, datasets: list[str], label: str) -> set[Node]:
        unknown = [name for name in datasets if base_name(name) not in self._producer]
        self._unknown(
            label,
            unknown,
            self._producer,
            "is written by no node of this pipeline; pass datasets it produces",
        )
        return _closure((self._producer[base_name(name)] for name in datasets), self._parents)

    def _select_namespace(self, namespace: str, label: str) -> set[Node]:
        if not isinstance(namespace, str):
            raise PipelineError(f"{label} takes one namespace string, got {namespace!r}.")
        self._unknown(
            label,
            [] if namespace in self._namespaces else [namespace],
            self._namespaces,
            "is not a namespace of this pipeline; pass a namespace its nodes use",
        )
        prefix = f"{namespace}."
        return {
            each
            for each in self._nodes
            if each.namespace is not None
            and (each.namespace == namespace or each.namespace.startswith(prefix))
        }

    def only_nodes_with_tags(self, *tags: str) -> Pipeline:
        """Nodes carrying any of ``tags``."""
        label = "only_nodes_with_tags()"
        return Pipeline(self._select_tags(_names(tags, label), label))

    def only_nodes(self, *names: str) -> Pipeline:
        """Exactly the named nodes."""
        label = "only_nodes()"
        return Pipeline(self._select_names(_names(names, label), label))

    def from_nodes(self, *names: str) -> Pipeline:
        """The named nodes and everything downstream of them."""
        label = "from_nodes()"
        return Pipeline(self._select_from_nodes(_names(names, label), label))

    def to_nodes(self, *names: str) -> Pipeline:
        """The named nodes and everything upstream of them."""
        label = "to_nodes()"
        return Pipeline(self._select_to_nodes(_names(names, label), label))

    def from_inputs(self, *datasets: str) -> Pipeline:
        """Nodes that depend, directly or transitively, on ``datasets``."""
        label = "from_inputs()"
        return Pipeline(self._select_from_inputs(_names(datasets, label), label))

    def to_outputs(self, *datasets: str) -> Pipeline:
        """Nodes needed to produce ``datasets``."""
        label = "to_outputs()"
        return Pipeline(self._select_to_outputs(_names(datasets, label), label))

    def only_nodes_with_namespace(self, namespace: str) -> Pipeline:
        """Nodes in ``namespace`` or any namespace nested in it."""
        return Pipeline(self._select_namespace(namespace, "only_nodes_with_namespace()"))

    def filter(
        self,
        tags: str | Iterable[str] | None = None,
        node_names: str | Iterable[str] | None = None,
        from_nodes: str | Iterable[str] | None = None,
        to_nodes: str | Iterable[str] | None = None,
        from_inputs: str | Iterable[str] | None = None,
        to_outputs: str | Iterable[str] | None = None,
        node_namespace: str | None = None,
    ) -> Pipeline:
        """Nodes selected by every given filter (each applied to this whole pipeline).

        Empty or None arguments are ignored, so CLI options can be passed as
        they are; with no filter at all the pipeline itself is returned.
        """
        selectors: list[tuple[str, Any, Callable[[Any, str], set[Node]]]] = [
            ("tags", tags, self._select_tags),
            ("node_names", node_names, self._select_names),
            ("from_nodes", from_nodes, self._select_from_nodes),
            ("to_nodes", to_nodes, self._select_to_nodes),
            ("from_inputs", from_inputs, self._select_from_inputs),
            ("to_outputs", to_outputs, self._select_to_outputs),
        ]
        selected: set[Node] | None = None
        applied: list[str] = []
        for key, value, select in selectors:
            if value:
                names = _as_names(value)
                found = select(_names(names, f"filter({key}=...)"), f"filter({key}=...)")
                selected = found if selected is None else selected & found
                applied.append(f"{key}={names!r}")
        if node_namespace:
            found = self._select_namespace(node_namespace, "filter(node_namespace=...)")
            selected = found if selected is None else selected & found
            applied.append(f"node_namespace={node_namespace!r}")
        if selected is None:
            return self
        if not selected:
            raise PipelineError(
                f"filter({', '.join(applied)}) selects no node: each filter matches some "
                "nodes but no node matches all of them; loosen one of the filters."
            )
        return Pipeline(selected)

    # Operators and protocols ---------------------------------------------------

    def __add__(self, other: object) -> Pipeline:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return Pipeline([self, other])

    def __radd__(self, other: object) -> Pipeline:
        """Let ``sum(pipelines)`` start from 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __or__(self, other: object) -> Pipeline:
        """Union, the same as ``+``."""
        if not isinstance(other, Pipeline):
            return NotImplemented
        return Pipeline([self, other])

    def __sub__(self, other: object) -> Pipeline:
        """Nodes of this pipeline that are not (equal to a node) in ``other``."""
        if not isinstance(other, Pipeline):
            return NotImplemented
        return Pipeline([each for each in self._nodes if each not in other._node_set])

    def __and__(self, other: object) -> Pipeline:
        """Nodes that both pipelines contain."""
        if not isinstance(other, Pipeline):
            return NotImplemented
        return Pipeline([each for each in self._nodes if each in other._node_set])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self._node_set == other._node_set

    def __hash__(self) -> int:
        return hash(self._node_set)

    def __len__(self) -> int:
        return len(self._nodes)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Pipeline is immutable; combine or filter it to get a new one.")

    def __delattr__(self, key: str) -> None:
        self.__setattr__(key, None)

    def __repr__(self) -> str:
        names = [each.name for each in self._nodes[:_REPR_NODES]]
        more = len(self._nodes) - len(names)
        listed = ", ".join(repr(name) for name in names)
        if more:
            listed += f", ... and {more} more"
        return f"Pipeline({len(self._nodes)} nodes: {listed})"

    def describe(self) -> str:
        """Multi-line text: free inputs, nodes in run order, free outputs."""
        lines = [
            f"Pipeline of {len(self._nodes)} nodes",
            f"Inputs: {', '.join(sorted(self.inputs())) or '(none)'}",
            "Nodes in run order:",
            *(f"  {index}. {each}" for index, each in enumerate(self._nodes, 1)),
            f"Outputs: {', '.join(sorted(self.outputs())) or '(none)'}",
        ]
        return "\n".join(lines)


def _node_name(each: Node) -> str:
    return each.name


def _toposort(
    ordered: list[Node],
    parents: dict[Node, frozenset[Node]],
    children: dict[Node, list[Node]],
) -> tuple[Node, ...]:
    """Kahn's algorithm with a heap of names, so ties always break the same way."""
    by_name = {each.name: each for each in ordered}
    waiting = {each: len(parents[each]) for each in ordered}
    ready = [each.name for each in ordered if not waiting[each]]  # sorted, hence a heap
    result: list[Node] = []
    while ready:
        current = by_name[heapq.heappop(ready)]
        result.append(current)
        for child in children[current]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, child.name)
    if len(result) < len(ordered):
        _raise_cycle(set(result), parents)
    return tuple(result)


def _raise_cycle(done: set[Node], parents: dict[Node, frozenset[Node]]) -> None:
    """Every node left by Kahn's algorithm has a parent left too, so walking up
    from any of them must come back round: that loop is the cycle reported."""
    remaining = [each for each in parents if each not in done]
    current = min(remaining, key=_node_name)
    position: dict[Node, int] = {}
    path: list[Node] = []
    while current not in position:
        position[current] = len(path)
        path.append(current)
        current = min((p for p in parents[current] if p not in done), key=_node_name)
    cycle = path[position[current] :][::-1]  # each node now writes what the next reads
    start = cycle.index(min(cycle, key=_node_name))
    cycle = cycle[start:] + cycle[:start]
    links = []
    for writer, reader in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        written = {base_name(name) for name in writer.outputs}
        dataset = sorted(name for name in reader.inputs if base_name(name) in written)[0]
        links.append(f"{writer.name!r} writes {dataset!r} read by {reader.name!r}")
    raise CircularDependencyError(
        f"Nodes {', '.join(repr(each.name) for each in cycle)} form a cycle "
        f"({'; '.join(links)}); rename one of these datasets to break it."
    )
