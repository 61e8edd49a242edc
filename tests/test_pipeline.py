from __future__ import annotations

import importlib
import pickle
import random
import subprocess
import sys
from typing import Any

import pytest

from kilnflow.errors import CircularDependencyError, OutputNotUniqueError, PipelineError
from kilnflow.pipeline import Node, Pipeline, node


def f(*args: Any) -> Any:
    return args[0] if args else None


def two(*args: Any) -> tuple[Any, Any]:
    return args, args


def n(name: str, inputs: Any, outputs: Any, **kwargs: Any) -> Node:
    return node(f, inputs, outputs, name=name, **kwargs)


def names(nodes: Any) -> list[str]:
    return [each.name for each in nodes]


@pytest.fixture
def diamond() -> Pipeline:
    """raw -> a -> (b, c) -> d, plus an unrelated island node."""
    return Pipeline(
        [
            n("d", ["b_out", "c_out"], "d_out", tags="final"),
            n("c", "a_out", "c_out", tags=["mid", "c"]),
            n("b", ["a_out", "params:k"], "b_out", tags="mid"),
            n("a", "raw", "a_out", tags="start"),
            n("island", "other", "island_out"),
        ]
    )


# Public surface -----------------------------------------------------------------


def test_public_names() -> None:
    # import_module: the top-level lazy ``kilnflow.pipeline`` attribute may be the function
    module = importlib.import_module("kilnflow.pipeline")
    assert sorted(module.__all__) == ["Node", "Pipeline", "node", "pipeline"]
    assert all(
        getattr(module, name).__module__.startswith(module.__name__) for name in module.__all__
    )


def test_import_loads_no_other_kilnflow_layer() -> None:
    code = (
        "import sys, kilnflow.pipeline; "
        "print('\\n'.join(m for m in sys.modules if m.split('.')[0] == 'kilnflow'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert "kilnflow.pipeline" in loaded
    # Private modules directly under kilnflow are the bottom leaves (tests/test_layers.py).
    leaves = {m for m in loaded if m.startswith("kilnflow._") and m.count(".") == 1}
    allowed = {"kilnflow", "kilnflow.errors", *leaves}
    assert "kilnflow._version" in leaves
    assert {
        m for m in loaded if m not in allowed and not m.startswith("kilnflow.pipeline")
    } == set()


# Construction -------------------------------------------------------------------


def test_construction_flattens_nodes_and_pipelines() -> None:
    inner = Pipeline([n("a", "x", "y")])
    outer = Pipeline([inner, n("b", "y", "z"), Pipeline([inner])])
    assert names(outer.nodes) == ["a", "b"]
    assert len(outer) == 2


def test_single_node_or_pipeline_is_accepted() -> None:
    single = n("a", "x", "y")
    assert Pipeline(single).nodes == [single]
    assert Pipeline(Pipeline([single])) == Pipeline([single])


def test_empty_pipeline_is_valid() -> None:
    empty = Pipeline([])
    assert len(empty) == 0
    assert not empty
    assert empty.nodes == []
    assert empty.grouped_nodes == []
    assert empty.inputs() == set()


def test_tags_are_added_to_every_node() -> None:
    tagged = Pipeline([n("a", "x", "y", tags="old"), n("b", "y", "z")], tags=["new"])
    assert {each.name: each.tags for each in tagged.nodes} == {
        "a": frozenset({"old", "new"}),
        "b": frozenset({"new"}),
    }


def test_items_that_are_not_nodes_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"got 'oops' of type str; build nodes with node"):
        Pipeline([n("a", "x", "y"), "oops"])  # type: ignore[list-item]
    with pytest.raises(PipelineError, match=r"got \[.*\] of type list"):
        Pipeline([[n("a", "x", "y")]])  # type: ignore[list-item]


def test_non_iterable_is_rejected() -> None:
    with pytest.raises(PipelineError, match=r"Pipeline\(\) takes a list of nodes and pipelines"):
        Pipeline(42)  # type: ignore[arg-type]


def test_bad_pipeline_tags_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"Pipeline\(\): every tag must be a non-empty"):
        Pipeline([n("a", "x", "y")], tags=[""])


def test_same_node_twice_is_kept_once() -> None:
    a = n("a", "x", "y")
    assert Pipeline([a, a, Pipeline([a])]).nodes == [a]
    assert Pipeline([a, n("a", "x", "y")]).nodes == [a]


def test_two_different_nodes_with_one_name_are_rejected() -> None:
    with pytest.raises(PipelineError, match=r"two different nodes named 'same'"):
        Pipeline([n("same", "x", "y"), n("same", "x", "z")])


def test_two_writers_of_one_dataset_are_rejected() -> None:
    with pytest.raises(OutputNotUniqueError) as info:
        Pipeline([n("second", "b", "out"), n("first", "a", "out")])
    assert str(info.value).startswith(
        "Nodes 'first' and 'second' both write dataset 'out'; rename the output"
    )


def test_cycle_is_rejected_naming_nodes_in_cycle_order() -> None:
    nodes = [
        n("upstream", "raw", "a"),
        n("x", ["a", "c"], "b"),
        n("z", "d", "c"),
        n("y", "b", "d"),
        n("downstream", "d", "final"),
    ]
    with pytest.raises(CircularDependencyError) as info:
        Pipeline(nodes)
    message = str(info.value)
    assert message.startswith("Nodes 'x', 'y', 'z' form a cycle (")
    assert "'x' writes 'b' read by 'y'; 'y' writes 'd' read by 'z'; 'z' writes 'c' read by 'x'" in (
        message
    )
    assert "upstream" not in message
    assert "downstream" not in message


def test_two_node_cycle() -> None:
    with pytest.raises(CircularDependencyError, match=r"Nodes 'p', 'q' form a cycle"):
        Pipeline([n("q", "b", "a"), n("p", "a", "b")])


def test_cycle_error_is_a_pipeline_error() -> None:
    with pytest.raises(PipelineError):
        Pipeline([n("q", "b", "a"), n("p", "a", "b")])


# Structure ----------------------------------------------------------------------


def test_nodes_are_topological_with_ties_by_name(diamond: Pipeline) -> None:
    assert names(diamond.nodes) == ["a", "b", "c", "d", "island"]


def test_order_does_not_depend_on_construction_order(diamond: Pipeline) -> None:
    shuffled = diamond.nodes
    random.Random(7).shuffle(shuffled)
    assert Pipeline(shuffled).nodes == diamond.nodes


def test_ties_prefer_the_smallest_ready_name() -> None:
    pipe = Pipeline([n("z_first", None, "x"), n("a_after", "x", "y"), n("m_free", None, "w")])
    assert names(pipe.nodes) == ["m_free", "z_first", "a_after"]


def test_nodes_returns_a_fresh_list(diamond: Pipeline) -> None:
    diamond.nodes.clear()
    assert len(diamond.nodes) == 5


def test_grouped_nodes_are_layers_sorted_by_name(diamond: Pipeline) -> None:
    assert [names(layer) for layer in diamond.grouped_nodes] == [
        ["a", "island"],
        ["b", "c"],
        ["d"],
    ]


def test_grouped_nodes_put_a_node_after_its_deepest_parent() -> None:
    pipe = Pipeline([n("a", None, "x"), n("b", "x", "y"), n("c", ["x", "y"], "z")])
    assert [names(layer) for layer in pipe.grouped_nodes] == [["a"], ["b"], ["c"]]


def test_dataset_sets(diamond: Pipeline) -> None:
    assert diamond.inputs() == {"raw", "params:k", "other"}
    assert diamond.outputs() == {"d_out", "island_out"}
    assert diamond.all_inputs() == {"raw", "params:k", "other", "a_out", "b_out", "c_out"}
    assert diamond.all_outputs() == {"a_out", "b_out", "c_out", "d_out", "island_out"}
    assert diamond.datasets() == diamond.all_inputs() | diamond.all_outputs()


def test_dataset_sets_are_copies(diamond: Pipeline) -> None:
    diamond.inputs().clear()
    assert diamond.inputs() == {"raw", "params:k", "other"}


def test_node_dependencies(diamond: Pipeline) -> None:
    deps = {each.name: names(parents) for each, parents in diamond.node_dependencies.items()}
    assert {key: sorted(value) for key, value in deps.items()} == {
        "a": [],
        "b": ["a"],
        "c": ["a"],
        "d": ["b", "c"],
        "island": [],
    }
    assert list(deps) == names(diamond.nodes)


def test_large_chain_sorts_without_recursion() -> None:
    size = 3000
    nodes = [n(f"n{i:05d}", f"d{i}", f"d{i + 1}") for i in reversed(range(size))]
    pipe = Pipeline(nodes)
    assert names(pipe.nodes) == [f"n{i:05d}" for i in range(size)]
    assert len(pipe.grouped_nodes) == size
    assert len(pipe.to_nodes("n01500")) == 1501
    assert len(pipe.from_inputs("d10")) == size - 10


# Operators and protocols ------------------------------------------------------------


def test_add_and_or_are_union() -> None:
    left = Pipeline([n("a", "x", "y"), n("b", "y", "z")])
    right = Pipeline([n("b", "y", "z"), n("c", "z", "w")])
    assert names((left + right).nodes) == ["a", "b", "c"]
    assert (left | right) == (left + right)


def test_add_rejects_an_invalid_union() -> None:
    with pytest.raises(OutputNotUniqueError, match=r"'a' and 'b' both write dataset 'y'"):
        Pipeline([n("a", "x", "y")]) + Pipeline([n("b", "w", "y")])
    with pytest.raises(CircularDependencyError):
        Pipeline([n("a", "x", "y")]) | Pipeline([n("b", "y", "x")])


def test_sub_and_and(diamond: Pipeline) -> None:
    part = Pipeline([n("a", "raw", "a_out", tags="start"), n("zz", "q", "r")])
    assert names((diamond - part).nodes) == ["b", "c", "d", "island"]
    assert names((diamond & part).nodes) == ["a"]


def test_sub_compares_whole_nodes_not_names(diamond: Pipeline) -> None:
    retagged = Pipeline([n("a", "raw", "a_out", tags="other")])
    assert len(diamond - retagged) == 5
    assert len(diamond & retagged) == 0


def test_sum_of_pipelines() -> None:
    parts = [Pipeline([n("a", "x", "y")]), Pipeline([n("b", "y", "z")])]
    assert names(sum(parts, Pipeline([])).nodes) == ["a", "b"]
    assert names(sum(parts).nodes) == ["a", "b"]  # type: ignore[union-attr]


def test_operators_reject_other_types() -> None:
    pipe = Pipeline([n("a", "x", "y")])
    with pytest.raises(TypeError):
        pipe + n("b", "y", "z")
    with pytest.raises(TypeError):
        1 + pipe
    for op in ("__or__", "__sub__", "__and__"):
        assert getattr(pipe, op)(3) is NotImplemented


def test_equality_and_hash_ignore_construction_order() -> None:
    a, b = n("a", "x", "y"), n("b", "y", "z")
    assert Pipeline([a, b]) == Pipeline([b, a])
    assert hash(Pipeline([a, b])) == hash(Pipeline([b, a]))
    assert Pipeline([a]) != Pipeline([a, b])
    assert Pipeline([a]) != "pipeline"


def test_pipeline_is_not_iterable(diamond: Pipeline) -> None:
    with pytest.raises(TypeError):
        iter(diamond)  # type: ignore[call-overload]


def test_pipeline_is_immutable(diamond: Pipeline) -> None:
    with pytest.raises(AttributeError, match=r"Pipeline is immutable"):
        diamond.nodes = []  # type: ignore[misc]
    with pytest.raises(AttributeError, match=r"Pipeline is immutable"):
        del diamond._nodes


def test_repr_lists_node_names() -> None:
    assert repr(Pipeline([n("a", "x", "y")])) == "Pipeline(1 nodes: 'a')"
    big = Pipeline([n(f"n{i:02d}", None, f"d{i}") for i in range(12)])
    assert repr(big) == (
        "Pipeline(12 nodes: 'n00', 'n01', 'n02', 'n03', 'n04', 'n05', 'n06', 'n07', "
        "'n08', 'n09', ... and 2 more)"
    )


def test_describe_lists_inputs_nodes_and_outputs() -> None:
    unnamed = node(f, "raw", "clean")
    pipe = Pipeline([unnamed, node(two, "clean", ["x", "y"], name="split")])
    assert pipe.describe() == (
        "Pipeline of 2 nodes\n"
        "Inputs: raw\n"
        "Nodes in run order:\n"
        f"  1. {unnamed.name}: f(raw) -> clean\n"
        "  2. split: two(clean) -> x, y\n"
        "Outputs: x, y"
    )
    assert "Inputs: (none)" in Pipeline([]).describe()


def test_pipeline_pickles(diamond: Pipeline) -> None:
    diamond.grouped_nodes  # noqa: B018 - fill a cache before pickling
    copy = pickle.loads(pickle.dumps(diamond))
    assert copy == diamond
    assert copy.nodes == diamond.nodes


# Filters ------------------------------------------------------------------------


def test_only_nodes_with_tags_selects_any_tag(diamond: Pipeline) -> None:
    assert names(diamond.only_nodes_with_tags("mid").nodes) == ["b", "c"]
    assert names(diamond.only_nodes_with_tags("start", "final").nodes) == ["a", "d"]
    assert names(diamond.only_nodes_with_tags("final", "missing").nodes) == ["d"]


def test_only_nodes(diamond: Pipeline) -> None:
    assert names(diamond.only_nodes("island", "b").nodes) == ["b", "island"]


def test_from_nodes_adds_everything_downstream(diamond: Pipeline) -> None:
    assert names(diamond.from_nodes("c").nodes) == ["c", "d"]
    assert names(diamond.from_nodes("a").nodes) == ["a", "b", "c", "d"]


def test_to_nodes_adds_everything_upstream(diamond: Pipeline) -> None:
    assert names(diamond.to_nodes("b").nodes) == ["a", "b"]
    assert names(diamond.to_nodes("d", "island").nodes) == ["a", "b", "c", "d", "island"]


def test_from_inputs_selects_transitive_dependents(diamond: Pipeline) -> None:
    assert names(diamond.from_inputs("params:k").nodes) == ["b", "d"]
    assert names(diamond.from_inputs("a_out", "other").nodes) == ["b", "c", "d", "island"]


def test_to_outputs_selects_what_produces_them(diamond: Pipeline) -> None:
    assert names(diamond.to_outputs("c_out").nodes) == ["a", "c"]
    assert names(diamond.to_outputs("d_out").nodes) == ["a", "b", "c", "d"]


def test_only_nodes_with_namespace_includes_sub_namespaces() -> None:
    pipe = Pipeline(
        [
            n("a", None, "x", namespace="data"),
            n("b", None, "y", namespace="data.raw"),
            n("c", None, "z", namespace="database"),
            n("d", None, "w"),
        ]
    )
    assert names(pipe.only_nodes_with_namespace("data").nodes) == ["data.a", "data.raw.b"]
    assert names(pipe.only_nodes_with_namespace("data.raw").nodes) == ["data.raw.b"]


def test_filter_intersects_every_given_filter(diamond: Pipeline) -> None:
    assert names(diamond.filter(tags=["mid"], from_nodes=["c"]).nodes) == ["c"]
    assert names(diamond.filter(to_outputs=["d_out"], from_inputs=["params:k"]).nodes) == [
        "b",
        "d",
    ]
    assert names(diamond.filter(node_names=["a", "b", "island"], to_nodes=["b"]).nodes) == [
        "a",
        "b",
    ]


def test_filter_accepts_a_single_string(diamond: Pipeline) -> None:
    assert names(diamond.filter(tags="final").nodes) == ["d"]


def test_filter_by_namespace() -> None:
    pipe = Pipeline([n("a", None, "x", namespace="ns", tags="t"), n("b", None, "y", tags="t")])
    assert names(pipe.filter(tags=["t"], node_namespace="ns").nodes) == ["ns.a"]


def test_filter_without_filters_returns_the_pipeline(diamond: Pipeline) -> None:
    assert diamond.filter() is diamond
    assert diamond.filter(tags=[], node_names=(), node_namespace=None) is diamond


def test_filtered_pipeline_is_a_new_valid_pipeline(diamond: Pipeline) -> None:
    part = diamond.to_nodes("b")
    assert isinstance(part, Pipeline)
    assert part.inputs() == {"raw", "params:k"}
    assert len(diamond) == 5


@pytest.mark.parametrize(
    ("method", "arg", "message"),
    [
        ("only_nodes", "isle", r"only_nodes\(\): 'isle' \(did you mean 'island'\?\) is not a node"),
        ("from_nodes", "islnd", r"from_nodes\(\): 'islnd' \(did you mean 'island'\?\) is not a"),
        ("to_nodes", "islands", r"to_nodes\(\): 'islands' \(did you mean 'island'\?\) is not"),
        (
            "from_inputs",
            "rew",
            r"from_inputs\(\): 'rew' \(did you mean 'raw'\?\) is read by no node",
        ),
        (
            "to_outputs",
            "d_ot",
            r"to_outputs\(\): 'd_ot' \(did you mean 'd_out' or 'c_out' or 'b_out'\?\) is written",
        ),
        (
            "to_outputs",
            "raw",
            r"to_outputs\(\): 'raw' is written by no node of this pipeline",
        ),
    ],
)
def test_unknown_names_are_listed_with_close_matches(
    diamond: Pipeline, method: str, arg: str, message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        getattr(diamond, method)(arg)


def test_every_unknown_name_is_listed(diamond: Pipeline) -> None:
    with pytest.raises(PipelineError) as info:
        diamond.only_nodes("a", "isle", "qqq")
    assert str(info.value).startswith(
        "only_nodes(): 'isle' (did you mean 'island'?), 'qqq' is not a node of this pipeline"
    )


def test_unknown_namespace_is_rejected_with_close_match() -> None:
    pipe = Pipeline([n("a", None, "x", namespace="data.raw")])
    with pytest.raises(PipelineError, match=r"'dta' \(did you mean 'data'\?\) is not a namespace"):
        pipe.only_nodes_with_namespace("dta")
    with pytest.raises(PipelineError, match=r"filter\(node_namespace=...\): 'data.rw'"):
        pipe.filter(node_namespace="data.rw")
    with pytest.raises(PipelineError, match=r"takes one namespace string"):
        pipe.only_nodes_with_namespace(["data"])  # type: ignore[arg-type]


def test_unknown_name_in_filter_names_the_option(diamond: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"filter\(to_nodes=...\): 'dd' \(did you mean 'd'"):
        diamond.filter(tags="mid", to_nodes=["dd"])


def test_tags_matching_nothing_are_an_error(diamond: Pipeline) -> None:
    with pytest.raises(PipelineError) as info:
        diamond.only_nodes_with_tags("mdi", "zzz")
    assert str(info.value).startswith(
        "only_nodes_with_tags(): no node of this pipeline has any of the tags "
        "'mdi' (did you mean 'mid'?), 'zzz'"
    )
    with pytest.raises(PipelineError, match=r"filter\(tags=...\): no node of this pipeline"):
        diamond.filter(tags=["nope"])


def test_filter_combination_selecting_nothing_is_an_error(diamond: Pipeline) -> None:
    with pytest.raises(PipelineError) as info:
        diamond.filter(tags=["final"], to_nodes=["b"])
    assert str(info.value).startswith(
        "filter(tags=['final'], to_nodes=['b']) selects no node: each filter matches"
    )


def test_filters_need_names(diamond: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"only_nodes\(\) needs at least one name"):
        diamond.only_nodes()
    with pytest.raises(PipelineError, match=r"from_nodes\(\) takes names as separate string"):
        diamond.from_nodes(["a"])  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match=r"filter\(node_names=...\) takes names as separate"):
        diamond.filter(node_names=[1])  # type: ignore[list-item]


# Transcoding: table@pandas and table@spark are one dataset -------------------------


def test_transcoded_names_order_nodes_by_their_base_dataset() -> None:
    pipe = Pipeline(
        [
            n("use", "table@spark", "summary"),
            n("make", "raw", "table@pandas"),
        ]
    )
    assert names(pipe.nodes) == ["make", "use"]
    assert pipe.inputs() == {"raw"}
    assert pipe.outputs() == {"summary"}
    assert pipe.node_dependencies[pipe.only_nodes("use").nodes[0]] == set(
        pipe.only_nodes("make").nodes
    )


def test_a_transcoded_input_is_free_only_when_no_node_writes_its_base() -> None:
    pipe = Pipeline([n("use", ["table@spark", "other@pandas"], "out")])
    assert pipe.inputs() == {"table@spark", "other@pandas"}
    assert pipe.all_inputs() == {"table@spark", "other@pandas"}


def test_filters_by_dataset_follow_the_base_name() -> None:
    pipe = Pipeline(
        [n("make", "raw", "table@pandas"), n("use", "table@spark", "out"), n("x", "y", "z")]
    )
    assert names(pipe.from_inputs("table").nodes) == ["use"]
    assert names(pipe.from_inputs("table@pandas").nodes) == ["use"]
    assert names(pipe.to_outputs("table@spark").nodes) == ["make"]


def test_two_nodes_writing_one_base_dataset_are_an_error() -> None:
    with pytest.raises(OutputNotUniqueError, match=r"'a' and 'b' both write dataset 'table'"):
        Pipeline([n("a", "x", "table@pandas"), n("b", "y", "table@spark")])


def test_a_node_reading_its_own_output_under_another_library_is_an_error() -> None:
    with pytest.raises(PipelineError, match=r"Node 'a' reads its own output 'table@spark'"):
        n("a", "table@spark", "table@pandas")


def test_a_cycle_through_transcoded_names_is_reported() -> None:
    with pytest.raises(CircularDependencyError, match=r"'a' writes 'x@spark' read by 'b'"):
        Pipeline([n("a", "y@pandas", "x@pandas"), n("b", "x@spark", "y@spark")])
