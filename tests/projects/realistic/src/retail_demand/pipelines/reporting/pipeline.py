"""A comparison table in SQLite, a plotly chart of it, and revenue by region."""

from kilnflow.pipeline import Pipeline, node

from .nodes import chart_comparison, compare_models, revenue_by_region


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(
                compare_models,
                {"baseline": "baseline.metrics", "weather_aware": "weather_aware.metrics"},
                "model_comparison",
                name="compare_models",
            ),
            node(chart_comparison, "model_comparison", "comparison_chart"),
            node(revenue_by_region, "model_input", "sales_by_region"),
        ],
        tags="reporting",
    )
