"""Nodes: a function bound to the datasets it reads and writes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from kilnflow.errors import PipelineError

__all__ = ["DatasetNames", "Node", "Tags", "base_name", "node"]

#: How a node names its datasets: nothing, one name, names in call order, or a dict
#: (inputs: parameter name -> dataset; outputs: key of the returned dict -> dataset).
DatasetNames = None | str | Sequence[str] | Mapping[str, str]
#: One tag or any iterable of tags.
Tags = None | str | Iterable[str]

# How a node passes inputs to its function and reads outputs from its return value.
_NONE = "none"
_ONE = "one"
_LIST = "list"
_DICT = "dict"


def is_parameter(dataset: str) -> bool:
    """Parameters are read-only, shared and never namespaced implicitly."""
    return dataset == "parameters" or dataset.startswith("params:")


def base_name(dataset: str) -> str:
    """The dataset a transcoded name stands for: ``table@pandas`` and ``table@spark``
    are one dataset, ``table``, loaded or saved through different libraries."""
    return dataset.partition("@")[0]


def normalize_tags(tags: object, where: str) -> frozenset[str]:
    """Accept one tag or an iterable of tags, rejecting the easy mistakes early."""
    if tags is None:
        return frozenset()
    if isinstance(tags, str):
        tags = (tags,)
    if not isinstance(tags, Iterable):
        raise PipelineError(
            f"{where}: tags must be a string or an iterable of strings, not "
            f"{type(tags).__name__}; pass tags='name' or tags=['a', 'b']."
        )
    result = frozenset(tags)
    for tag in result:
        if not isinstance(tag, str) or not tag:
            raise PipelineError(
                f"{where}: every tag must be a non-empty string, got {tag!r}; fix the tags."
            )
    return result


def check_namespace(namespace: object, where: str) -> str | None:
    """Namespaces are dotted paths; empty segments would make names ambiguous."""
    if namespace is None:
        return None
    if not isinstance(namespace, str) or not all(namespace.split(".")):
        raise PipelineError(
            f"{where}: namespace must be a non-empty string of dot-separated parts "
            f"such as 'ingest' or 'ingest.raw', got {namespace!r}; fix the namespace."
        )
    return namespace


def _func_name(func: Callable[..., Any]) -> str:
    while isinstance(func, partial):
        func = func.func
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


def _dataset(name: object, role: str, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise PipelineError(
            f"{where}: every name in {role} must be a non-empty string, got {name!r}; "
            f"fix the node's {role}."
        )
    return name


def _normalize(spec: object, role: str, where: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Return (kind, dict keys, dataset names) for an inputs or outputs argument."""
    if spec is None:
        return _NONE, (), ()
    if isinstance(spec, str):
        return _ONE, (), (_dataset(spec, role, where),)
    if isinstance(spec, Mapping):
        if not spec:
            return _NONE, (), ()
        keys = tuple(_dataset(key, f"{role} keys", where) for key in spec)
        return _DICT, keys, tuple(_dataset(spec[key], role, where) for key in keys)
    if isinstance(spec, (list, tuple)):
        if not spec:
            return _NONE, (), ()
        return _LIST, (), tuple(_dataset(name, role, where) for name in spec)
    raise PipelineError(
        f"{where}: {role} must be None, a string, a list of strings or a dict, not "
        f"{type(spec).__name__}; a list keeps the call order, which a {type(spec).__name__} "
        "may not."
    )


def _confirms(spec: object, where: str) -> tuple[str, ...]:
    """The datasets a node confirms: no name, one name, or a list of names, each once."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        spec = [spec]
    if not isinstance(spec, (list, tuple)):
        raise PipelineError(
            f"{where}: confirms must be a dataset name or a list of dataset names, not "
            f"{type(spec).__name__}; pass confirms='name' or confirms=['a', 'b']."
        )
    names = tuple(dict.fromkeys(_dataset(name, "confirms", where) for name in spec))
    for name in names:
        if is_parameter(name):
            raise PipelineError(
                f"{where}: confirms names the parameter {name!r}, which has no checkpoint; "
                "confirm a dataset such as a partitions.IncrementalDataset instead."
            )
    return names


def _describe_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} values"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {list(value)}"
    return "None" if value is None else f"a value of type {type(value).__name__}"


class Node:
    """A function bound to the datasets it reads and writes.

    Immutable and hashable so pipelines and runners can key dicts and sets by
    node. Equality compares everything that defines the node (name, function,
    datasets and how they are passed, tags, namespace, confirms), so two
    *different* nodes that share a name are told apart and a pipeline can
    reject them; the hash uses the name alone, which is unique within a
    pipeline.
    """

    __slots__ = (
        "_base_name",
        "_confirms",
        "_func",
        "_in_keys",
        "_in_kind",
        "_inputs",
        "_name",
        "_namespace",
        "_out_keys",
        "_out_kind",
        "_outputs",
        "_tags",
    )

    _base_name: str
    _confirms: tuple[str, ...]
    _func: Callable[..., Any]
    _in_keys: tuple[str, ...]
    _in_kind: str
    _inputs: tuple[str, ...]
    _name: str
    _namespace: str | None
    _out_keys: tuple[str, ...]
    _out_kind: str
    _outputs: tuple[str, ...]
    _tags: frozenset[str]

    def __init__(
        self,
        func: Callable[..., Any],
        inputs: DatasetNames,
        outputs: DatasetNames,
        name: str | None = None,
        tags: Tags = None,
        namespace: str | None = None,
        confirms: str | Sequence[str] | None = None,
    ) -> None:
        if not callable(func):
            raise PipelineError(
                f"node() needs a function as its first argument, got {func!r}; pass the "
                "function itself, not its result."
            )
        where = f"Node for function {_func_name(func)!r}"
        in_kind, in_keys, ins = _normalize(inputs, "inputs", where)
        out_kind, out_keys, outs = _normalize(outputs, "outputs", where)
        if name is not None and (not isinstance(name, str) or not name):
            raise PipelineError(
                f"{where}: name must be a non-empty string, got {name!r}; pass name='...' "
                "or leave it out for a name derived from the function and its datasets."
            )
        self._setup(
            func,
            (in_kind, in_keys, ins),
            (out_kind, out_keys, outs),
            name,
            normalize_tags(tags, where),
            check_namespace(namespace, where),
            _confirms(confirms, where),
        )
        self._check_signature()

    def _setup(
        self,
        func: Callable[..., Any],
        inputs: tuple[str, tuple[str, ...], tuple[str, ...]],
        outputs: tuple[str, tuple[str, ...], tuple[str, ...]],
        base_name: str | None,
        tags: frozenset[str],
        namespace: str | None,
        confirms: tuple[str, ...],
    ) -> None:
        values = {
            "_func": func,
            "_in_kind": inputs[0],
            "_in_keys": inputs[1],
            "_inputs": inputs[2],
            "_out_kind": outputs[0],
            "_out_keys": outputs[1],
            "_outputs": outputs[2],
            "_tags": tags,
            "_namespace": namespace,
            "_confirms": confirms,
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
        base = self._default_name() if base_name is None else base_name
        object.__setattr__(self, "_base_name", base)
        object.__setattr__(self, "_name", base if namespace is None else f"{namespace}.{base}")
        self._check_outputs()

    def _check_outputs(self) -> None:
        seen: set[str] = set()
        for dataset in self._outputs:
            if dataset in seen:
                raise PipelineError(
                    f"Node {self._name!r} lists output {dataset!r} twice; give each output "
                    "its own dataset name."
                )
            seen.add(dataset)
            if is_parameter(dataset):
                raise PipelineError(
                    f"Node {self._name!r} writes {dataset!r}, but parameters are read-only; "
                    "give the output a name that does not start with 'params:'."
                )
        written = {base_name(dataset) for dataset in self._outputs}
        own = sorted(name for name in self._inputs if base_name(name) in written)
        if own:
            raise PipelineError(
                f"Node {self._name!r} reads its own output {own[0]!r}; a node cannot "
                "depend on itself, so give the output another name."
            )

    def _check_signature(self) -> None:
        signature = _signature(self._func)
        if signature is None:
            return  # builtins without an introspectable signature are checked when run
        try:
            if self._in_kind == _DICT:
                signature.bind(**dict.fromkeys(self._in_keys))
            else:
                signature.bind(*self._inputs)
        except TypeError as exc:
            raise PipelineError(
                f"Node {self._name!r}: function {_func_name(self._func)!r} cannot be called "
                f"with the inputs {self._inputs_form()!r} ({exc}); change the node's inputs "
                "or the function's parameters."
            ) from None

    def _default_name(self) -> str:
        """``<function>__<8 hex digits>``: short, and stable across runs and machines.

        The digits hash how the node names its datasets (dict keys in any
        order), so the same node always gets the same name and ``--nodes``
        keeps working, while two nodes of one function get different ones.
        """
        import hashlib

        shape = repr((_canonical(self._inputs_form()), _canonical(self._outputs_form())))
        digest = hashlib.sha256(shape.encode()).hexdigest()[:8]
        return f"{_func_name(self._func)}__{digest}"

    def _signature(self) -> str:
        call = f"{_func_name(self._func)}({', '.join(self._inputs)})"
        return f"{call} -> {', '.join(self._outputs)}" if self._outputs else call

    def _inputs_form(self) -> DatasetNames:
        return _form(self._in_kind, self._in_keys, self._inputs)

    def _derive(
        self,
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        tags: frozenset[str],
        namespace: str | None,
        confirms: tuple[str, ...],
    ) -> Node:
        """Copy with other datasets, tags or namespace; the call shape is unchanged,
        so the function's signature needs no second check."""
        new = object.__new__(Node)
        new._setup(
            self._func,
            (self._in_kind, self._in_keys, inputs),
            (self._out_kind, self._out_keys, outputs),
            self._base_name,
            tags,
            namespace,
            confirms,
        )
        return new

    @property
    def name(self) -> str:
        """Unique name, ``namespace.`` prefixed when the node is namespaced."""
        return self._name

    @property
    def func(self) -> Callable[..., Any]:
        """The function the node calls."""
        return self._func

    @property
    def inputs(self) -> tuple[str, ...]:
        """Datasets read, in call order (a dataset passed twice appears twice)."""
        return self._inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """Datasets written, in declaration order."""
        return self._outputs

    @property
    def confirms(self) -> tuple[str, ...]:
        """Datasets whose checkpoint moves once the node succeeded and saved its outputs."""
        return self._confirms

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def namespace(self) -> str | None:
        """Dotted namespace (``outer.inner``) or None."""
        return self._namespace

    def tag(self, tags: Tags) -> Node:
        """Return a copy that also carries ``tags``."""
        extra = normalize_tags(tags, f"Node {self._name!r}")
        if extra <= self._tags:
            return self
        return self._derive(
            self._inputs, self._outputs, self._tags | extra, self._namespace, self._confirms
        )

    def run(self, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call the function with ``inputs`` (by dataset name); return outputs by dataset name.

        ``None`` means no inputs, for nodes that read nothing. Exceptions raised
        by the function propagate unchanged so the runner can report them with
        their own traceback.
        """
        if inputs is None:
            inputs = {}
        if not isinstance(inputs, Mapping):
            raise PipelineError(
                f"Node {self._name!r}.run() takes a dict of input data by dataset name, got "
                f"{_describe_value(inputs)}; pass {{name: data}} for every name in node.inputs."
            )
        missing = [name for name in dict.fromkeys(self._inputs) if name not in inputs]
        if missing:
            raise PipelineError(
                f"Node {self._name!r} cannot run without its inputs {missing}; pass a value "
                "for every name in node.inputs."
            )
        if self._in_kind == _DICT:
            result = self._func(
                **{key: inputs[name] for key, name in zip(self._in_keys, self._inputs, strict=True)}
            )
        else:
            result = self._func(*[inputs[name] for name in self._inputs])
        return self._outputs_of(result)

    def _outputs_of(self, result: Any) -> dict[str, Any]:
        if self._out_kind == _NONE:
            return {}
        if self._out_kind == _ONE:
            return {self._outputs[0]: result}
        if self._out_kind == _LIST:
            if isinstance(result, (list, tuple)) and len(result) == len(self._outputs):
                return dict(zip(self._outputs, result, strict=True))
            expected = f"a list or tuple of {len(self._outputs)} values"
        else:
            if isinstance(result, Mapping) and set(result) == set(self._out_keys):
                return {
                    name: result[key]
                    for key, name in zip(self._out_keys, self._outputs, strict=True)
                }
            expected = f"a dict with keys {list(self._out_keys)}"
        raise PipelineError(
            f"Node {self._name!r} returned {_describe_value(result)}, but its outputs "
            f"{self._outputs_form()!r} need {expected}; make the function return that "
            "or change the node's outputs."
        )

    def _outputs_form(self) -> DatasetNames:
        return _form(self._out_kind, self._out_keys, self._outputs)

    def _key(self) -> tuple[Any, ...]:
        """What defines the node; dict inputs and outputs compare as dicts, in any order."""
        return (
            self._name,
            self._func,
            self._namespace,
            self._tags,
            self._in_kind,
            _canonical(self._inputs_form()),
            self._out_kind,
            _canonical(self._outputs_form()),
            self._confirms,
        )

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._name)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(
            f"Node {self._name!r} is immutable; derive a new one with node.tag() or pipeline()."
        )

    def __delattr__(self, key: str) -> None:
        self.__setattr__(key, None)

    def __getstate__(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def __repr__(self) -> str:
        parts = [
            _func_name(self._func),
            repr(self._inputs_form()),
            repr(self._outputs_form()),
            f"name={self._name!r}",
        ]
        if self._tags:
            parts.append(f"tags={sorted(self._tags)!r}")
        if self._confirms:
            parts.append(f"confirms={list(self._confirms)!r}")
        return f"Node({', '.join(parts)})"

    def __str__(self) -> str:
        text = f"{self._name}: {self._signature()}"
        return f"{text} (confirms {', '.join(self._confirms)})" if self._confirms else text


def _canonical(form: DatasetNames) -> object:
    """A form that compares and prints the same whatever the order of a dict's keys."""
    if isinstance(form, Mapping):
        return tuple(sorted(form.items()))
    return tuple(form) if isinstance(form, list) else form


def _form(kind: str, keys: tuple[str, ...], names: tuple[str, ...]) -> DatasetNames:
    if kind == _NONE:
        return None
    if kind == _ONE:
        return names[0]
    if kind == _LIST:
        return list(names)
    return dict(zip(keys, names, strict=True))


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """The signature a call to ``func`` must fit; one function often makes thousands of
    nodes, so it is cached."""
    try:
        return _cached_signature(func)
    except TypeError:  # an unhashable callable object
        return _call_signature(func)


@functools.lru_cache(maxsize=4096)
def _cached_signature(func: Callable[..., Any]) -> inspect.Signature | None:
    return _call_signature(func)


def _call_signature(func: Callable[..., Any]) -> inspect.Signature | None:
    """The wrapper's own signature for a ``functools.wraps`` wrapper, since that is
    what gets called; only a pass-through ``(*args, **kwargs)`` wrapper defers to
    the function it wraps."""
    try:
        own = inspect.signature(func, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    kinds = {parameter.kind for parameter in own.parameters.values()}
    passes_through = kinds == {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
    if passes_through and hasattr(func, "__wrapped__"):
        try:
            return inspect.signature(func)
        except (TypeError, ValueError):
            return own
    return own


def node(
    func: Callable[..., Any],
    inputs: DatasetNames,
    outputs: DatasetNames,
    name: str | None = None,
    tags: Tags = None,
    namespace: str | None = None,
    confirms: str | Sequence[str] | None = None,
) -> Node:
    """Bind ``func`` to datasets; the usual way to build a :class:`Node`.

    ``inputs``: None, a dataset name, a list passed positionally, or a dict
    passed by keyword (parameter name -> dataset). ``outputs``: None (the
    return value is dropped), a name (the whole return value), a list (the
    function returns a list/tuple of that length) or a dict (the function
    returns a dict with those keys; key -> dataset). ``params:x`` names are
    ordinary inputs. Without ``name`` the node is named after its function and
    datasets, e.g. ``clean__1f2e3d4c`` (a short hash of its inputs and outputs);
    that name stays fixed when the node is later namespaced or its datasets
    renamed by :func:`pipeline`.
    ``namespace`` prefixes the name only; :func:`pipeline` namespaces datasets.
    ``confirms`` (a name or a list) moves those datasets' checkpoints (see
    ``partitions.IncrementalDataset``) once the node succeeded and its outputs
    were saved, so a failed or interrupted run processes the same data again.
    """
    return Node(func, inputs, outputs, name=name, tags=tags, namespace=namespace, confirms=confirms)
