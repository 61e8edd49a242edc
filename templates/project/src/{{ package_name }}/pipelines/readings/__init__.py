"""Clean sensor readings, summarise them per station and write a report."""

from kilnflow.pipeline import Pipeline, node

from .nodes import clean_readings, render_report, summarise_stations


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(clean_readings, ["readings", "params:min_valid"], "clean_readings", name="clean"),
            node(summarise_stations, "clean_readings", "station_summary", name="summarise"),
            node(render_report, ["station_summary", "params:report"], "report", name="report"),
        ],
        tags="readings",
    )
