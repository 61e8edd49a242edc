"""Modular pipelines: reuse a pipeline under a namespace, with renamed datasets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kilnflow.errors import PipelineError, did_you_mean
from kilnflow.pipeline._node import (
    Node,
    Tags,
    base_name,
    check_namespace,
    is_parameter,
    normalize_tags,
)
from kilnflow.pipeline._pipeline import Pipeline

__all__ = ["DatasetMapping", "pipeline"]

#: Names to keep as they are (a string or an iterable), or a dict old -> new name.
DatasetMapping = None | str | Iterable[str] | Mapping[str, str]


def _as_mapping(spec: object, role: str, label: str) -> dict[str, str]:
    if spec is None:
        return {}
    if isinstance(spec, str):
        spec = {spec: spec}
    elif isinstance(spec, Mapping):
        spec = dict(spec)
    elif isinstance(spec, Iterable):
        spec = {name: name for name in spec}
    else:
        raise PipelineError(
            f"{label}: {role} must be a string, a set or list of strings, or a dict of "
            f"old -> new names, not {type(spec).__name__}."
        )
    for old, new in spec.items():
        for name in (old, new):
            if not isinstance(name, str) or not name:
                raise PipelineError(
                    f"{label}: {role} names must be non-empty strings, got {name!r}; fix {role}=."
                )
    return spec


def _as_parameter(name: str) -> str:
    return name if name.startswith("params:") else f"params:{name}"


def _check_known(label: str, role: str, names: Iterable[str], known: set[str], what: str) -> None:
    for name in names:
        if name not in known:
            raise PipelineError(
                f"{label}: {role} maps {name!r}, which is not {what}."
                f"{did_you_mean(name, known)} Map only names the pipeline uses."
            )


def _with_base_names(names: Iterable[str]) -> set[str]:
    found = set(names)
    return found | {base_name(name) for name in found}


def pipeline(
    pipe: Pipeline | Iterable[Node | Pipeline],
    *,
    inputs: DatasetMapping = None,
    outputs: DatasetMapping = None,
    parameters: DatasetMapping = None,
    tags: Tags = None,
    namespace: str | None = None,
) -> Pipeline:
    """Reuse ``pipe`` as a unit: namespace it, rename its datasets, tag its nodes.

    With ``namespace="ns"`` node names become ``ns.<name>``, nodes get the
    namespace ``ns`` (``ns.inner`` if they already had ``inner``), and every
    dataset ``x`` becomes ``ns.x`` except:

    * free inputs named in ``inputs`` and outputs named in ``outputs``: a name
      (or set/list of names) is kept as it is, a dict ``{old: new}`` renames;
      a base name (``table``) covers its transcoded names (``table@pandas``);
    * ``params:x`` becomes ``params:ns.x``, so every instance reads its own
      values (``ns: {x: ...}`` in parameters.yml), unless ``parameters`` maps
      it: ``parameters="x"`` keeps one shared value, ``{"x": "y"}`` reads
      ``params:y`` (keys and values may be written with or without
      ``params:``). The whole ``parameters`` dict is never renamed.

    A node's ``confirms`` are renamed as its inputs are, so each instance
    moves the checkpoint of the dataset it reads.

    Without a namespace only the mappings and ``tags`` apply. Mapping a name
    the pipeline does not use (inputs: free inputs; outputs: any output;
    parameters: parameters it reads) is an error, as it is almost always a typo.
    """
    base = pipe if isinstance(pipe, Pipeline) else Pipeline(pipe)
    label = "pipeline()" if namespace is None else f"pipeline(namespace={namespace!r})"
    prefix = check_namespace(namespace, label)
    extra_tags = normalize_tags(tags, label)
    renames = _renames(base, label, inputs=inputs, outputs=outputs, parameters=parameters)
    return Pipeline(
        [
            each._derive(
                tuple(_rename(name, renames, prefix) for name in each.inputs),
                tuple(_rename(name, renames, prefix) for name in each.outputs),
                each.tags | extra_tags,
                _nest(each.namespace, prefix),
                tuple(_rename(name, renames, prefix) for name in each.confirms),
            )
            for each in base.nodes
        ]
    )


def _renames(
    base: Pipeline,
    label: str,
    *,
    inputs: DatasetMapping,
    outputs: DatasetMapping,
    parameters: DatasetMapping,
) -> dict[str, str]:
    """Every name the caller mapped, old -> new, each checked against what ``base`` uses."""
    free_inputs = base.inputs()
    input_map = _input_map(inputs, free_inputs, label)
    output_map = _as_mapping(outputs, "outputs", label)
    _check_known(
        label,
        "outputs",
        output_map,
        _with_base_names(base.all_outputs()),
        "an output of the pipeline",
    )
    parameter_map = _parameter_map(parameters, free_inputs, label)
    return {**input_map, **output_map, **parameter_map}


def _input_map(inputs: DatasetMapping, free_inputs: set[str], label: str) -> dict[str, str]:
    input_map = _as_mapping(inputs, "inputs", label)
    for name in input_map:
        if is_parameter(name):
            raise PipelineError(
                f"{label}: inputs maps the parameter {name!r}; map parameters with "
                "parameters= instead."
            )
    _check_known(
        label,
        "inputs",
        input_map,
        _with_base_names(name for name in free_inputs if not is_parameter(name)),
        "a free input of the pipeline",
    )
    return input_map


def _parameter_map(parameters: DatasetMapping, free_inputs: set[str], label: str) -> dict[str, str]:
    """Parameter renames, written with or without ``params:``, always with it."""
    parameter_map = {
        _as_parameter(old): _as_parameter(new)
        for old, new in _as_mapping(parameters, "parameters", label).items()
    }
    _check_known(
        label,
        "parameters",
        parameter_map,
        {name for name in free_inputs if name.startswith("params:")},
        "a parameter the pipeline reads",
    )
    return parameter_map


def _rename(dataset: str, renames: Mapping[str, str], prefix: str | None) -> str:
    """A mapped name as mapped (a base name maps its transcoded names too); otherwise
    namespaced, ``params:x`` as ``params:<prefix>.x``; the whole ``parameters`` never."""
    if dataset in renames:
        return renames[dataset]
    base_dataset, at, library = dataset.partition("@")
    if at and base_dataset in renames:
        return f"{renames[base_dataset]}@{library}"
    if prefix is None or dataset == "parameters":
        return dataset
    if dataset.startswith("params:"):
        return f"params:{prefix}.{dataset[len('params:') :]}"
    return f"{prefix}.{dataset}"


def _nest(current: str | None, prefix: str | None) -> str | None:
    """A node's namespace under ``prefix``: ``prefix.current``, or ``prefix`` alone."""
    if prefix is None:
        return current
    return prefix if current is None else f"{prefix}.{current}"
