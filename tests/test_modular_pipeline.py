from __future__ import annotations

from typing import Any

import pytest

from kilnflow.errors import CircularDependencyError, OutputNotUniqueError, PipelineError
from kilnflow.pipeline import Node, Pipeline, node, pipeline


def scale(data: int, factor: int) -> int:
    return data * factor


def total(a: int, b: int) -> int:
    return a + b


def by_name(pipe: Pipeline) -> dict[str, Node]:
    return {each.name: each for each in pipe.nodes}


@pytest.fixture
def base() -> Pipeline:
    """raw + params:factor -> scaled; scaled + params:offset -> result."""
    return Pipeline(
        [
            node(scale, ["raw", "params:factor"], "scaled", name="scale"),
            node(total, {"a": "scaled", "b": "params:offset"}, "result", name="total"),
        ]
    )


def test_namespace_prefixes_names_namespaces_and_datasets(base: Pipeline) -> None:
    result = pipeline(base, namespace="ns")
    nodes = by_name(result)
    assert sorted(nodes) == ["ns.scale", "ns.total"]
    assert nodes["ns.scale"].namespace == "ns"
    assert nodes["ns.scale"].inputs == ("ns.raw", "params:ns.factor")
    assert nodes["ns.scale"].outputs == ("ns.scaled",)
    assert nodes["ns.total"].inputs == ("ns.scaled", "params:ns.offset")
    assert result.inputs() == {"ns.raw", "params:ns.factor", "params:ns.offset"}
    assert result.outputs() == {"ns.result"}


def test_default_node_names_are_prefixed_unchanged() -> None:
    unnamed = node(scale, ["raw", "params:factor"], "scaled")
    result = pipeline([unnamed], namespace="ns")
    assert [each.name for each in result.nodes] == [f"ns.{unnamed.name}"]


def test_namespaced_nodes_still_run_with_renamed_datasets(base: Pipeline) -> None:
    nodes = by_name(pipeline(base, namespace="ns", inputs={"raw": "source"}))
    assert nodes["ns.scale"].run({"source": 3, "params:ns.factor": 2}) == {"ns.scaled": 6}
    assert nodes["ns.total"].run({"ns.scaled": 6, "params:ns.offset": 1}) == {"ns.result": 7}


@pytest.mark.parametrize("kept", ["raw", ["raw"], {"raw"}, ("raw",)])
def test_inputs_named_are_kept(base: Pipeline, kept: Any) -> None:
    assert pipeline(base, namespace="ns", inputs=kept).inputs() == {
        "raw",
        "params:ns.factor",
        "params:ns.offset",
    }


def test_inputs_dict_renames(base: Pipeline) -> None:
    result = pipeline(base, namespace="ns", inputs={"raw": "cars"})
    assert "cars" in result.inputs()
    assert "ns.raw" not in result.datasets()


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ("result", {"result"}),
        ({"result"}, {"result"}),
        ({"result": "final"}, {"final"}),
    ],
)
def test_outputs_named_are_kept_or_renamed(
    base: Pipeline, outputs: Any, expected: set[str]
) -> None:
    result = pipeline(base, namespace="ns", outputs=outputs)
    assert result.outputs() == expected
    assert "ns.scaled" in result.all_outputs()


def test_intermediate_outputs_can_be_exposed(base: Pipeline) -> None:
    result = pipeline(base, namespace="ns", outputs={"scaled": "shared_scaled"})
    assert by_name(result)["ns.total"].inputs == ("shared_scaled", "params:ns.offset")


def test_parameters_are_namespaced_unless_mapped(base: Pipeline) -> None:
    result = pipeline(base, namespace="ns", parameters={"factor": "params:ns_factor"})
    assert result.inputs() == {"ns.raw", "params:ns_factor", "params:ns.offset"}


@pytest.mark.parametrize(
    "mapping",
    [
        {"factor": "other"},
        {"params:factor": "other"},
        {"factor": "params:other"},
        {"params:factor": "params:other"},
    ],
)
def test_parameter_mapping_accepts_either_spelling(base: Pipeline, mapping: Any) -> None:
    assert "params:other" in pipeline(base, parameters=mapping).inputs()


@pytest.mark.parametrize("kept", [["factor", "offset"], {"params:factor", "offset"}])
def test_parameters_named_are_kept(base: Pipeline, kept: Any) -> None:
    assert pipeline(base, namespace="ns", parameters=kept).inputs() == {
        "ns.raw",
        "params:factor",
        "params:offset",
    }


def test_one_parameter_kept_and_the_other_namespaced(base: Pipeline) -> None:
    assert pipeline(base, namespace="ns", parameters="factor").inputs() == {
        "ns.raw",
        "params:factor",
        "params:ns.offset",
    }


def test_whole_parameters_dict_is_not_namespaced() -> None:
    result = pipeline([node(total, ["x", "parameters"], "y")], namespace="ns")
    assert result.inputs() == {"ns.x", "parameters"}


def test_nested_namespaces(base: Pipeline) -> None:
    inner = pipeline(base, namespace="inner", inputs="raw")
    outer = pipeline(inner, namespace="outer")
    nodes = by_name(outer)
    assert sorted(nodes) == ["outer.inner.scale", "outer.inner.total"]
    assert nodes["outer.inner.scale"].namespace == "outer.inner"
    assert nodes["outer.inner.scale"].inputs == ("outer.raw", "params:outer.inner.factor")
    assert outer.outputs() == {"outer.inner.result"}
    assert len(outer.only_nodes_with_namespace("outer.inner")) == 2


def test_node_namespace_is_extended() -> None:
    inner = Pipeline([node(scale, ["a", "b"], "c", name="n", namespace="inner")])
    result = pipeline(inner, namespace="outer")
    assert [(each.name, each.namespace) for each in result.nodes] == [
        ("outer.inner.n", "outer.inner")
    ]


def test_tags_are_added_to_all_nodes(base: Pipeline) -> None:
    result = pipeline(base, tags=["t1", "t2"])
    assert all(each.tags == {"t1", "t2"} for each in result.nodes)
    assert pipeline(base, tags="only").only_nodes_with_tags("only") == pipeline(base, tags="only")


def test_without_namespace_only_mappings_apply(base: Pipeline) -> None:
    result = pipeline(base, inputs={"raw": "cars"}, outputs={"result": "out"})
    assert sorted(by_name(result)) == ["scale", "total"]
    assert result.inputs() == {"cars", "params:factor", "params:offset"}
    assert result.outputs() == {"out"}
    assert all(each.namespace is None for each in result.nodes)
    assert pipeline(base) == base


def test_accepts_a_list_of_nodes_and_pipelines(base: Pipeline) -> None:
    extra = node(total, ["result", "params:offset"], "final", name="extra")
    result = pipeline([base, extra], namespace="ns")
    assert sorted(by_name(result)) == ["ns.extra", "ns.scale", "ns.total"]


def test_one_pipeline_reused_under_two_namespaces(base: Pipeline) -> None:
    combined = pipeline(base, namespace="a", inputs="raw") + pipeline(
        base, namespace="b", inputs="raw"
    )
    assert len(combined) == 4
    assert combined.inputs() == {
        "raw",
        "params:a.factor",
        "params:a.offset",
        "params:b.factor",
        "params:b.offset",
    }
    assert combined.outputs() == {"a.result", "b.result"}


def test_reuse_without_namespace_needs_distinct_names(base: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"two different nodes named 'scale'.*namespace="):
        pipeline(base, outputs={"result": "r1", "scaled": "s1"}) + pipeline(
            base, outputs={"result": "r2", "scaled": "s2"}
        )


def test_original_pipeline_is_unchanged(base: Pipeline) -> None:
    before = base.nodes
    pipeline(base, namespace="ns", tags="t")
    assert base.nodes == before
    assert base.inputs() == {"raw", "params:factor", "params:offset"}


# Errors ------------------------------------------------------------------------


def test_mapping_an_input_that_is_not_free_is_an_error(base: Pipeline) -> None:
    with pytest.raises(PipelineError) as info:
        pipeline(base, namespace="ns", inputs={"scaled": "x"})
    assert str(info.value).startswith(
        "pipeline(namespace='ns'): inputs maps 'scaled', which is not a free input"
    )


def test_unknown_input_gets_a_close_match(base: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"inputs maps 'rwa', .* Did you mean 'raw'\?"):
        pipeline(base, inputs="rwa")


def test_mapping_a_parameter_through_inputs_is_an_error(base: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"inputs maps the parameter 'params:factor'; map"):
        pipeline(base, inputs={"params:factor": "params:x"})


def test_mapping_an_unknown_output_is_an_error(base: Pipeline) -> None:
    with pytest.raises(PipelineError, match=r"outputs maps 'raw', which is not an output"):
        pipeline(base, outputs="raw")
    with pytest.raises(PipelineError, match=r"outputs maps 'reslt'.* Did you mean 'result'\?"):
        pipeline(base, outputs={"reslt": "x"})


def test_mapping_an_unused_parameter_is_an_error(base: Pipeline) -> None:
    with pytest.raises(
        PipelineError,
        match=r"parameters maps 'params:factr', which is not a parameter the pipeline reads. "
        r"Did you mean 'params:factor' or 'params:offset'\? Map only names the pipeline uses.",
    ):
        pipeline(base, parameters={"factr": "x"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inputs": 3}, r"inputs must be a string, a set or list of strings, or a dict"),
        ({"outputs": {"result": ""}}, r"outputs names must be non-empty strings, got ''"),
        ({"parameters": [1]}, r"parameters names must be non-empty strings, got 1"),
        ({"namespace": "a..b"}, r"namespace must be a non-empty string of dot-separated"),
        ({"tags": [""]}, r"every tag must be a non-empty string"),
    ],
)
def test_malformed_arguments_are_errors(
    base: Pipeline, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        pipeline(base, **kwargs)


def test_renaming_into_own_output_is_an_error() -> None:
    pipe = Pipeline([node(scale, ["a", "b"], "c", name="n")])
    with pytest.raises(PipelineError, match=r"Node 'n' reads its own output 'x'"):
        pipeline(pipe, inputs={"a": "x"}, outputs={"c": "x"})


def test_renaming_two_outputs_to_one_name_is_an_error() -> None:
    pipe = Pipeline(
        [node(scale, ["a", "k"], "b", name="p"), node(scale, ["a", "k"], "c", name="q")]
    )
    with pytest.raises(OutputNotUniqueError, match=r"'p' and 'q' both write dataset 'same'"):
        pipeline(pipe, outputs={"b": "same", "c": "same"})


def test_renaming_that_closes_a_cycle_is_an_error() -> None:
    pipe = Pipeline(
        [node(scale, ["a", "k"], "b", name="p"), node(total, ["b", "k"], "c", name="q")]
    )
    with pytest.raises(CircularDependencyError, match=r"Nodes 'p', 'q' form a cycle"):
        pipeline(pipe, inputs={"a": "c"})


def test_two_instances_read_their_own_parameter_values(base: Pipeline) -> None:
    from kilnflow.io import DataCatalog, MemoryDataset
    from kilnflow.runner import SequentialRunner

    combined = pipeline(base, namespace="m1", inputs="raw") + pipeline(
        base, namespace="m2", inputs="raw"
    )
    catalog = DataCatalog({"raw": MemoryDataset(10)})
    catalog.add_parameters({"m1": {"factor": 2, "offset": 1}, "m2": {"factor": 3, "offset": 0}})

    assert SequentialRunner().run(combined, catalog) == {"m1.result": 21, "m2.result": 30}


def test_transcoded_names_are_namespaced_and_mapped_by_their_base() -> None:
    pipe = Pipeline(
        [
            node(scale, ["raw@pandas", "params:factor"], "table@pandas", name="make"),
            node(total, ["table@spark", "params:factor"], "out", name="use"),
        ]
    )
    result = by_name(pipeline(pipe, namespace="ns", inputs={"raw": "source"}))
    assert result["ns.make"].inputs == ("source@pandas", "params:ns.factor")
    assert result["ns.make"].outputs == ("ns.table@pandas",)
    assert result["ns.use"].inputs == ("ns.table@spark", "params:ns.factor")
