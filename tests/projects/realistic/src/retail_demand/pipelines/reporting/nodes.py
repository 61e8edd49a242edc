"""Report nodes: pandas tables and a plotly figure."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def compare_models(baseline: dict[str, Any], weather_aware: dict[str, Any]) -> pd.DataFrame:
    table = pd.DataFrame(
        [
            {"model": name, "r2": metrics["r2"], "mae": metrics["mae"]}
            for name, metrics in (("baseline", baseline), ("weather_aware", weather_aware))
        ]
    )
    best = table.loc[table["r2"].idxmax(), "model"]
    logger.info("Best model: %s", best)
    return table


def chart_comparison(table: pd.DataFrame) -> Any:
    import plotly.graph_objects as go

    return go.Figure(
        [go.Bar(x=table["model"].tolist(), y=table["r2"].tolist(), name="r2")],
        layout={"title": {"text": "Test r2 by model"}},
    )


def revenue_by_region(table: pd.DataFrame) -> pd.DataFrame:
    return table.groupby("region", as_index=False)["revenue"].sum().round(2)
