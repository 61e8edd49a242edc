"""``kilnflow pipeline describe --format``: a pipeline as text, JSON, Mermaid or DOT.

Mermaid pastes into GitHub Markdown and most wikis; DOT goes to Graphviz
(``dot -Tsvg``). Both draw namespaces as nested boxes, datasets as
cylinders and parameters apart, so the picture reads like the viewer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from kilnflow.errors import PipelineError

__all__ = ["FORMATS", "describe"]


def _text(graph: dict[str, Any]) -> str:
    return "\n".join(map(_text_line, graph["nodes"]))


def _text_line(node: dict[str, Any]) -> str:
    inputs, outputs = ", ".join(node["inputs"]) or "-", ", ".join(node["outputs"]) or "-"
    line = f"{node['name']}: {inputs} -> {outputs}"
    return f"{line} (confirms {', '.join(node['confirms'])})" if node["confirms"] else line


def _json(graph: dict[str, Any]) -> str:
    return json.dumps(graph, indent=2)


def _members(graph: dict[str, Any]) -> dict[str | None, list[dict[str, Any]]]:
    """Vertices by the namespace they sit directly in (None: the top level)."""
    members: dict[str | None, list[dict[str, Any]]] = {None: []}
    for namespace in graph["namespaces"]:
        members[namespace] = []
    for vertex in [*graph["nodes"], *graph["datasets"]]:
        members[vertex["namespace"]].append(vertex)
    return members


def _children(graph: dict[str, Any], parent: str | None) -> list[str]:
    depth = 0 if parent is None else parent.count(".") + 1
    prefix = "" if parent is None else f"{parent}."
    return [
        namespace
        for namespace in graph["namespaces"]
        if namespace.startswith(prefix) and namespace.count(".") == depth
    ]


def _nested(
    graph: dict[str, Any],
    vertex: Callable[[dict[str, Any]], str],
    opening: Callable[[str, int], str],
    closing: str,
) -> Iterator[str]:
    """Lines of every vertex, each namespace's inside its own indented block."""
    members = _members(graph)
    numbers = {namespace: index for index, namespace in enumerate(graph["namespaces"])}

    def block(parent: str | None, indent: str) -> Iterator[str]:
        for child in _children(graph, parent):
            yield indent + opening(child, numbers[child])
            yield from block(child, indent + "  ")
            yield indent + closing
        for each in members[parent]:
            yield indent + vertex(each)

    yield from block(None, "  ")


def _mermaid(graph: dict[str, Any]) -> str:
    ids = _short_ids(graph)

    def label(text: str) -> str:
        return '"' + text.replace('"', "#quot;") + '"'

    shapes = {"node": ("[", "]"), "dataset": ("[(", ")]"), "parameters": ("[/", "/]")}

    def vertex(each: dict[str, Any]) -> str:
        opening, closing = shapes[each["kind"]]
        return f"{ids[each['id']]}{opening}{label(each['label'])}{closing}"

    def subgraph(namespace: str, number: int) -> str:
        return f"subgraph ns{number}[{label(namespace.rsplit('.', 1)[-1])}]"

    lines = ["flowchart TD", *_nested(graph, vertex, subgraph, "end")]
    lines += [f"  {ids[source]} --> {ids[target]}" for source, target in graph["edges"]]
    return "\n".join(lines)


def _dot(graph: dict[str, Any]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    shapes = {"node": "box", "dataset": "cylinder", "parameters": "note"}

    def vertex(each: dict[str, Any]) -> str:
        return f"{quote(each['id'])} [label={quote(each['label'])}, shape={shapes[each['kind']]}];"

    def cluster(namespace: str, number: int) -> str:
        return f"subgraph cluster_{number} {{ label={quote(namespace.rsplit('.', 1)[-1])};"

    lines = [
        f"digraph {quote(graph['pipeline'])} {{",
        "  rankdir=TB;",
        *_nested(graph, vertex, cluster, "}"),
        *(f"  {quote(source)} -> {quote(target)};" for source, target in graph["edges"]),
        "}",
    ]
    return "\n".join(lines)


def _short_ids(graph: dict[str, Any]) -> dict[str, str]:
    """Mermaid ids must be plain words; dataset and node names need not be."""
    ids = {node["id"]: f"n{index}" for index, node in enumerate(graph["nodes"])}
    ids.update({data["id"]: f"d{index}" for index, data in enumerate(graph["datasets"])})
    return ids


#: Output formats of ``pipeline describe``, by name.
FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": _text,
    "json": _json,
    "mermaid": _mermaid,
    "dot": _dot,
}


def describe(graph: dict[str, Any], format_name: str) -> str:
    """Render a :func:`pipeline_graph` in one of :data:`FORMATS`."""
    try:
        render = FORMATS[format_name]
    except KeyError:
        raise PipelineError(
            f"Unknown describe format {format_name!r}; use one of {', '.join(FORMATS)}."
        ) from None
    return render(graph)
