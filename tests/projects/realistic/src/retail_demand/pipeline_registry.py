"""The project's pipelines: data processing, two instances of modelling, reporting."""

from __future__ import annotations

from kilnflow.pipeline import Pipeline, pipeline
from retail_demand.pipelines import data_processing, modelling, reporting

INSTANCES = ("baseline", "weather_aware")


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    models = sum(
        pipeline(
            modelling.create_pipeline(),
            namespace=instance,
            inputs="model_input",
            parameters="target",
        )
        for instance in INSTANCES
    )
    report = reporting.create_pipeline()
    return {
        "data_processing": processing,
        "modelling": models,
        "reporting": report,
        "__default__": processing + models + report,
    }
