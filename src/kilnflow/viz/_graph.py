"""A pipeline as a graph of plain data: what the viewer draws and describe prints.

Nodes, datasets and parameters are vertices; an edge joins a dataset to each
node reading it and each node to the datasets it writes. Everything is plain
JSON-ready data, so one model feeds the HTML viewer and the text, JSON,
Mermaid and Graphviz descriptions alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kilnflow.pipeline import Node, Pipeline

__all__ = ["dataset_id", "node_id", "pipeline_graph"]

_PARAMS = "params:"


def node_id(name: str) -> str:
    """The vertex id of node ``name`` (node and dataset names may coincide)."""
    return f"node:{name}"


def dataset_id(name: str) -> str:
    """The vertex id of dataset (or parameters) ``name``."""
    return f"data:{name}"


def pipeline_graph(pipeline: Pipeline, name: str) -> dict[str, Any]:
    """Describe ``pipeline`` (registered as ``name``) as vertices and edges.

    Nodes come in run order and datasets in the order the run first meets
    them, which gives the viewer's layout a good starting order. A dataset
    or parameter belongs to the deepest namespace that prefixes its name,
    the way modular pipelines rename what they keep inside.
    """
    namespaces = _namespaces(pipeline.nodes)
    nodes: list[dict[str, Any]] = []
    datasets: dict[str, dict[str, Any]] = {}
    edges: list[list[str]] = []
    for each in pipeline.nodes:
        nodes.append(_node(each))
        for dataset in dict.fromkeys(each.inputs):
            datasets.setdefault(dataset, _dataset(dataset, namespaces))
            edges.append([dataset_id(dataset), node_id(each.name)])
        for dataset in each.outputs:
            datasets.setdefault(dataset, _dataset(dataset, namespaces))
            edges.append([node_id(each.name), dataset_id(dataset)])
    free_inputs = pipeline.inputs()
    free_outputs = pipeline.outputs()
    for entry in datasets.values():
        entry["free_input"] = entry["name"] in free_inputs
        entry["free_output"] = entry["name"] in free_outputs
    return {
        "pipeline": name,
        "nodes": nodes,
        "datasets": list(datasets.values()),
        "edges": edges,
        "namespaces": sorted(namespaces),
        "tags": sorted({tag for each in pipeline.nodes for tag in each.tags}),
    }


def _namespaces(nodes: list[Node]) -> set[str]:
    found: set[str] = set()
    for each in nodes:
        if each.namespace:
            parts = each.namespace.split(".")
            found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
    return found


def _short(name: str, namespace: str | None) -> str:
    return name[len(namespace) + 1 :] if namespace and name.startswith(f"{namespace}.") else name


def _node(each: Node) -> dict[str, Any]:
    func = each.func
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", type(func).__qualname__)
    return {
        "id": node_id(each.name),
        "kind": "node",
        "name": each.name,
        "label": _short(each.name, each.namespace),
        "namespace": each.namespace,
        "tags": sorted(each.tags),
        "func": f"{module}.{qualname}" if module else qualname,
        "inputs": list(each.inputs),
        "outputs": list(each.outputs),
        "confirms": list(each.confirms),
    }


def _dataset(name: str, namespaces: set[str]) -> dict[str, Any]:
    parameters = name.startswith(_PARAMS) or name == "parameters"
    bare = name[len(_PARAMS) :] if name.startswith(_PARAMS) else name
    parts = bare.split(".")
    namespace = next(
        (
            prefix
            for prefix in (".".join(parts[:end]) for end in range(len(parts) - 1, 0, -1))
            if prefix in namespaces
        ),
        None,
    )
    label = _short(bare, namespace)
    return {
        "id": dataset_id(name),
        "kind": "parameters" if parameters else "dataset",
        "name": name,
        "label": f"{_PARAMS}{label}" if name.startswith(_PARAMS) else label,
        "namespace": namespace,
    }
