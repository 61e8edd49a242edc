"""Plain pandas functions; they log through their module's logger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def clean_stores(stores: pd.DataFrame) -> pd.DataFrame:
    """One row per open store, regions in lower case."""
    cleaned = stores[stores["open"]].drop(columns="open").copy()
    cleaned["region"] = cleaned["region"].str.strip().str.lower()
    logger.info("Kept %d of %d stores", len(cleaned), len(stores))
    return cleaned.reset_index(drop=True)


def aggregate_sales(transactions: pd.DataFrame) -> pd.DataFrame:
    """Units and revenue per store and day."""
    transactions = transactions.assign(revenue=transactions["units"] * transactions["unit_price"])
    daily = (
        transactions.groupby(["store_id", "day"], as_index=False)
        .agg(units=("units", "sum"), unit_price=("unit_price", "mean"), revenue=("revenue", "sum"))
        .sort_values(["store_id", "day"])
        .reset_index(drop=True)
    )
    logger.info("Aggregated %d transactions into %d store-days", len(transactions), len(daily))
    return daily


def combine_weather(partitions: dict[str, Callable[[], Any]]) -> pd.DataFrame:
    """One table from the per-region files; the partition id is the region."""
    frames = [partitions[region]().assign(region=region) for region in sorted(partitions)]
    logger.info("Read weather of %d regions", len(frames))
    return pd.concat(frames, ignore_index=True)


def build_model_input(
    sales: pd.DataFrame, stores: pd.DataFrame, weather: pd.DataFrame
) -> pd.DataFrame:
    """Sales of open stores with their size and the day's weather in their region."""
    table = sales.merge(stores, on="store_id").merge(weather, on=["region", "day"])
    logger.info("Model input: %d rows, %d columns", len(table), table.shape[1])
    return table.sort_values(["store_id", "day"]).reset_index(drop=True)
