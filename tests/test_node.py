from __future__ import annotations

import functools
import os
import pickle
import re
import subprocess
import sys
from functools import partial
from typing import Any

import pytest

from kilnflow.errors import KilnflowError, PipelineError
from kilnflow.pipeline import Node, Pipeline, node


def identity(x: Any) -> Any:
    return x


def add(a: int, b: int) -> int:
    return a + b


def split(data: list[int]) -> tuple[list[int], list[int]]:
    return data[:1], data[1:]


def nothing() -> int:
    return 42


def consume(x: Any) -> None:
    return None


def keyed(data: list[int]) -> dict[str, Any]:
    return {"head": data[0], "rest": data[1:]}


def variadic(*args: Any, **kwargs: Any) -> int:
    return len(args) + len(kwargs)


class Doubler:
    def __call__(self, x: int) -> int:
        return 2 * x


# Construction and names ----------------------------------------------------


def test_node_returns_node_with_public_attributes() -> None:
    n = node(add, ["a", "b"], "c", name="adder", tags=["x", "y"])
    assert isinstance(n, Node)
    assert n.name == "adder"
    assert n.func is add
    assert n.inputs == ("a", "b")
    assert n.outputs == ("c",)
    assert n.tags == frozenset({"x", "y"})
    assert n.namespace is None


@pytest.mark.parametrize(
    ("func", "inputs", "outputs", "signature"),
    [
        (identity, "raw", "cleaned", "identity(raw) -> cleaned"),
        (add, ["a", "b"], ["c"], "add(a, b) -> c"),
        (split, "data", ["head", "rest"], "split(data) -> head, rest"),
        (nothing, None, "answer", "nothing() -> answer"),
        (consume, "x", None, "consume(x)"),
        (add, {"b": "y", "a": "x"}, {"out": "c"}, "add(y, x) -> c"),
        (partial(add, 1), "b", "c", "add(b) -> c"),
        (Doubler(), "x", "y", "Doubler(x) -> y"),
    ],
)
def test_default_name_is_function_name_and_short_hash(
    func: Any, inputs: Any, outputs: Any, signature: str
) -> None:
    made = node(func, inputs, outputs)
    prefix, _, digest = made.name.partition("__")
    assert prefix == signature.partition("(")[0]
    assert re.fullmatch(r"[0-9a-f]{8}", digest), made.name
    assert str(made) == f"{made.name}: {signature}"
    assert node(func, inputs, outputs).name == made.name


def test_default_names_differ_by_datasets_but_not_by_dict_key_order() -> None:
    assert node(identity, "a", "b").name != node(identity, "a", "c").name
    assert node(identity, "a", "b").name != node(identity, "z", "b").name
    assert node(add, {"a": "x", "b": "y"}, "c").name == node(add, {"b": "y", "a": "x"}, "c").name


def test_default_names_are_the_same_in_every_process() -> None:
    """Names are typed on command lines (--nodes), so no per-process hash seed may change them."""
    script = (
        "from kilnflow.pipeline import node\n"
        "def clean(raw, options): return raw\n"
        "print(node(clean, ['raw', 'params:options'], 'cleaned').name)\n"
    )
    names = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }

    def clean(raw: Any, options: Any) -> Any:
        return raw

    assert names == {node(clean, ["raw", "params:options"], "cleaned").name}


def test_namespace_prefixes_name_only() -> None:
    named = node(identity, "a", "b", name="n", namespace="outer.inner")
    assert named.name == "outer.inner.n"
    assert named.namespace == "outer.inner"
    assert named.inputs == ("a",)
    assert named.outputs == ("b",)
    unnamed = node(identity, "a", "b")
    assert node(identity, "a", "b", namespace="ns").name == f"ns.{unnamed.name}"


def test_node_class_can_be_called_directly() -> None:
    assert Node(identity, "a", "b", name="n") == node(identity, "a", "b", name="n")


def test_inputs_accept_tuples_and_empty_collections() -> None:
    assert node(add, ("a", "b"), "c").inputs == ("a", "b")
    assert node(nothing, [], "c").run({}) == {"c": 42}
    assert node(nothing, {}, "c").inputs == ()
    assert node(consume, "x", []).run({"x": 1}) == {}


def test_params_inputs_are_ordinary_datasets() -> None:
    n = node(add, ["a", "params:b"], "c")
    assert n.inputs == ("a", "params:b")
    assert n.run({"a": 1, "params:b": 2}) == {"c": 3}


@pytest.mark.parametrize("bad", [{"a"}, 3, b"a", frozenset()])
def test_inputs_of_unsupported_type_are_rejected(bad: Any) -> None:
    with pytest.raises(PipelineError, match=r"Node for function 'identity': inputs must be"):
        node(identity, bad, "b")


def test_outputs_of_unsupported_type_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"'identity': outputs must be None, a string"):
        node(identity, "a", {"b"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [("", "b"), (["a", ""], "b"), (["a", 1], "b"), ("a", ""), ("a", ["b", None])],
)
def test_dataset_names_must_be_non_empty_strings(inputs: Any, outputs: Any) -> None:
    with pytest.raises(PipelineError, match=r"must be a non-empty string"):
        node(variadic, inputs, outputs)


def test_dict_keys_must_be_strings() -> None:
    with pytest.raises(PipelineError, match=r"inputs keys must be a non-empty string, got 1"):
        node(variadic, {1: "a"}, "b")  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", ["", 3, ["n"]])
def test_name_must_be_a_non_empty_string(bad: Any) -> None:
    with pytest.raises(PipelineError, match=r"'identity': name must be a non-empty string"):
        node(identity, "a", "b", name=bad)


@pytest.mark.parametrize("bad", ["", ".ns", "ns.", "a..b", 3])
def test_namespace_must_be_dotted_parts(bad: Any) -> None:
    with pytest.raises(PipelineError, match=r"namespace must be a non-empty string of dot"):
        node(identity, "a", "b", namespace=bad)


def test_function_must_be_callable() -> None:
    with pytest.raises(PipelineError, match=r"node\(\) needs a function .* got 42"):
        node(42, "a", "b")  # type: ignore[arg-type]


def test_duplicate_inputs_are_allowed() -> None:
    n = node(add, ["a", "a"], "b")
    assert n.inputs == ("a", "a")
    assert n.run({"a": 2}) == {"b": 4}


def test_duplicate_outputs_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"Node 'dup' lists output 'c' twice"):
        node(split, "a", ["c", "c"], name="dup")


def test_duplicate_dict_output_datasets_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"lists output 'c' twice"):
        node(keyed, "a", {"head": "c", "rest": "c"})


def test_reading_own_output_is_rejected() -> None:
    with pytest.raises(PipelineError, match=r"Node 'loop' reads its own output 'a'"):
        node(identity, "a", "a", name="loop")


def test_writing_a_parameter_is_rejected() -> None:
    with pytest.raises(PipelineError, match=r"Node 'w' writes 'params:x', but parameters"):
        node(identity, "a", "params:x", name="w")


# Signature checks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "inputs", "detail"),
    [
        (identity, ["a", "b"], "too many positional arguments"),
        (add, "a", "missing a required argument: 'b'"),
        (add, {"a": "x", "b": "y", "c": "z"}, "unexpected keyword argument 'c'"),
        (nothing, "a", "too many positional arguments"),
    ],
)
def test_signature_that_cannot_take_inputs_is_rejected(func: Any, inputs: Any, detail: str) -> None:
    with pytest.raises(PipelineError) as info:
        node(func, inputs, "out", name="bad")
    message = str(info.value)
    assert message.startswith(f"Node 'bad': function '{func.__name__}' cannot be called")
    assert detail in message


def test_variadic_functions_accept_any_inputs() -> None:
    assert node(variadic, ["a", "b", "c"], "d").run({"a": 1, "b": 2, "c": 3}) == {"d": 3}
    assert node(variadic, {"p": "a", "q": "b"}, "d").run({"a": 1, "b": 2}) == {"d": 2}


def test_builtin_without_signature_is_accepted() -> None:
    assert node(max, ["a", "b"], "c").run({"a": 1, "b": 5}) == {"c": 5}


# Running ------------------------------------------------------------------------


def test_run_passes_list_inputs_positionally() -> None:
    def minus(a: int, b: int) -> int:
        return a - b

    assert node(minus, ["x", "y"], "z").run({"y": 1, "x": 10}) == {"z": 9}


def test_run_passes_dict_inputs_by_keyword() -> None:
    def minus(a: int, b: int) -> int:
        return a - b

    assert node(minus, {"b": "x", "a": "y"}, "z").run({"x": 1, "y": 10}) == {"z": 9}


def test_run_ignores_return_value_without_outputs() -> None:
    assert node(nothing, None, None).run({}) == {}


def test_run_maps_single_output_to_whole_value() -> None:
    assert node(split, "d", "both").run({"d": [1, 2]}) == {"both": ([1], [2])}


def test_run_maps_list_outputs_from_tuple_or_list() -> None:
    assert node(split, "d", ["h", "r"]).run({"d": [1, 2, 3]}) == {"h": [1], "r": [2, 3]}
    assert node(identity, "d", ["h", "r"]).run({"d": [1, 2]}) == {"h": 1, "r": 2}


def test_run_maps_dict_outputs_by_key() -> None:
    n = node(keyed, "d", {"rest": "tail", "head": "first"})
    assert n.outputs == ("tail", "first")
    assert n.run({"d": [1, 2]}) == {"first": 1, "tail": [2]}


def test_run_ignores_extra_inputs() -> None:
    assert node(identity, "a", "b").run({"a": 1, "other": 2}) == {"b": 1}


def test_run_without_an_input_names_missing_ones() -> None:
    with pytest.raises(PipelineError, match=r"Node 'n' cannot run without its inputs \['b'\]"):
        node(add, ["a", "b"], "c", name="n").run({"a": 1})


def test_function_errors_propagate_unchanged() -> None:
    def boom(x: Any) -> None:
        raise KeyError("original")

    with pytest.raises(KeyError, match="original"):
        node(boom, "a", "b").run({"a": 1})


@pytest.mark.parametrize(
    ("returned", "got"),
    [
        (5, "returned a value of type int"),
        ([1, 2, 3], "returned a list of 3 values"),
        ("ab", "returned a value of type str"),
        (None, "returned None"),
    ],
)
def test_list_outputs_need_sequence_of_matching_length(returned: Any, got: str) -> None:
    n = node(identity, "a", ["x", "y"], name="pair")
    with pytest.raises(PipelineError) as info:
        n.run({"a": returned})
    message = str(info.value)
    assert message.startswith(f"Node 'pair' {got}")
    assert "outputs ['x', 'y'] need a list or tuple of 2 values" in message


@pytest.mark.parametrize(
    ("returned", "got"),
    [
        ({"head": 1}, "returned a dict with keys ['head']"),
        ({"head": 1, "rest": 2, "more": 3}, "returned a dict with keys ['head', 'rest', 'more']"),
        ([1, 2], "returned a list of 2 values"),
    ],
)
def test_dict_outputs_need_exactly_those_keys(returned: Any, got: str) -> None:
    n = node(identity, "a", {"head": "h", "rest": "r"}, name="kv")
    with pytest.raises(PipelineError) as info:
        n.run({"a": returned})
    message = str(info.value)
    assert message.startswith(f"Node 'kv' {got}")
    assert "need a dict with keys ['head', 'rest']" in message


# Tags ---------------------------------------------------------------------------


def test_tags_accept_a_string_or_iterable() -> None:
    assert node(identity, "a", "b", tags="one").tags == frozenset({"one"})
    assert node(identity, "a", "b", tags=("one", "two")).tags == frozenset({"one", "two"})
    assert node(identity, "a", "b").tags == frozenset()


@pytest.mark.parametrize("bad", [3, ["ok", ""], ["ok", 1]])
def test_bad_tags_are_rejected(bad: Any) -> None:
    with pytest.raises(PipelineError, match=r"tags? must be"):
        node(identity, "a", "b", tags=bad)


def test_tag_returns_a_copy_with_more_tags() -> None:
    original = node(identity, "a", "b", name="n", tags="x")
    tagged = original.tag(["y", "z"])
    assert tagged.tags == frozenset({"x", "y", "z"})
    assert original.tags == frozenset({"x"})
    assert (tagged.name, tagged.inputs, tagged.outputs) == ("n", ("a",), ("b",))
    assert original.tag("x") == original


def test_tag_rejects_bad_tags() -> None:
    with pytest.raises(PipelineError, match=r"Node 'n': every tag must be a non-empty string"):
        node(identity, "a", "b", name="n").tag([""])


# Identity and protocol ----------------------------------------------------------


def test_nodes_are_immutable() -> None:
    n = node(identity, "a", "b", name="n")
    with pytest.raises(AttributeError, match=r"Node 'n' is immutable"):
        n.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match=r"immutable"):
        n.extra = 1
    with pytest.raises(AttributeError, match=r"immutable"):
        del n.name
    assert n.name == "n"


def test_equal_definitions_are_equal_and_hash_alike() -> None:
    first = node(identity, "a", "b", name="n", tags="t")
    second = node(identity, "a", "b", name="n", tags="t")
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    "other",
    [
        node(consume, "a", "b", name="n"),
        node(identity, "a", "c", name="n"),
        node(identity, "z", "b", name="n"),
        node(identity, ["a"], "b", name="n"),
        node(identity, {"x": "a"}, "b", name="n"),
        node(identity, "a", "b", name="n", tags="t"),
        node(identity, "a", "b", name="m"),
    ],
)
def test_nodes_differing_in_anything_are_not_equal(other: Node) -> None:
    assert node(identity, "a", "b", name="n") != other


def test_node_is_not_equal_to_other_types() -> None:
    assert node(identity, "a", "b", name="n") != "n"


def test_repr_and_str_are_readable() -> None:
    n = node(add, {"a": "x", "b": "y"}, ["z"], name="adder", tags=["t2", "t1"])
    assert repr(n) == "Node(add, {'a': 'x', 'b': 'y'}, ['z'], name='adder', tags=['t1', 't2'])"
    assert str(n) == "adder: add(x, y) -> z"
    unnamed = node(nothing, None, None)
    assert repr(unnamed) == f"Node(nothing, None, None, name={unnamed.name!r})"


def test_nodes_pickle_and_still_run() -> None:
    n = node(add, ["a", "b"], "c", name="n", tags="t", namespace="ns")
    copy = pickle.loads(pickle.dumps(n))
    assert copy == n
    assert copy.name == "ns.n"
    assert copy.run({"a": 1, "b": 2}) == {"c": 3}


def test_pipeline_error_is_a_kilnflow_error() -> None:
    with pytest.raises(KilnflowError):
        node(identity, "a", "a")


# Bugs a port from Kedro ran into ------------------------------------------------


def with_scale(func: Any) -> Any:
    """A decorator whose wrapper takes one more argument than the function it wraps."""

    @functools.wraps(func)
    def wrapper(x: int, scale: int) -> int:
        return int(func(x)) * scale

    return wrapper


def passthrough(func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def test_a_wraps_wrapper_is_checked_against_its_own_signature() -> None:
    scaled = with_scale(identity)
    made = node(scaled, ["x", "scale"], "y")
    assert made.run({"x": 2, "scale": 3}) == {"y": 6}
    with pytest.raises(PipelineError, match="cannot be called with the inputs 'x'"):
        node(scaled, "x", "y")


def test_a_pass_through_wrapper_is_checked_against_the_wrapped_function() -> None:
    wrapped = passthrough(add)
    assert node(wrapped, ["a", "b"], "c").run({"a": 1, "b": 2}) == {"c": 3}
    with pytest.raises(PipelineError, match=r"function 'add' cannot be called"):
        node(wrapped, "a", "c")


def test_nodes_differing_only_in_dict_key_order_are_equal() -> None:
    first = node(add, {"a": "x", "b": "y"}, {"sum": "s", "twice": "t"}, name="n")
    second = node(add, {"b": "y", "a": "x"}, {"twice": "t", "sum": "s"}, name="n")
    assert first == second
    assert hash(first) == hash(second)
    assert len(Pipeline([first, second]).nodes) == 1


def test_run_with_none_runs_a_node_without_inputs() -> None:
    assert node(nothing, None, "answer").run(None) == {"answer": 42}
    assert node(nothing, None, "answer").run() == {"answer": 42}


def test_run_with_none_names_the_missing_inputs() -> None:
    with pytest.raises(PipelineError, match=r"Node 'n' cannot run without its inputs \['a'\]"):
        node(identity, "a", "b", name="n").run(None)


def test_run_with_something_other_than_a_dict_says_what_it_takes() -> None:
    with pytest.raises(PipelineError) as caught:
        node(identity, "a", "b", name="n").run(["a"])  # type: ignore[arg-type]
    assert str(caught.value) == (
        "Node 'n'.run() takes a dict of input data by dataset name, got a list of 1 values; "
        "pass {name: data} for every name in node.inputs."
    )
