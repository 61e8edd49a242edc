"""Clean each source, then join them into the model input table."""

from kilnflow.pipeline import Pipeline, node

from .nodes import aggregate_sales, build_model_input, clean_stores, combine_weather


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(clean_stores, "stores", "stores_clean"),
            node(aggregate_sales, "transactions", "daily_sales"),
            node(combine_weather, "weather", "weather_by_region"),
            node(
                build_model_input,
                {"sales": "daily_sales", "stores": "stores_clean", "weather": "weather_by_region"},
                "model_input",
                name="build_model_input",
            ),
        ],
        tags="processing",
    )
