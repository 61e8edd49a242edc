"""scikit-learn steps: deterministic, so every mode and runner gives the same model."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


def split_data(
    table: pd.DataFrame, features: list[str], target: str, test_size: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        table[features], table[target], test_size=test_size, random_state=random_state
    )
    logger.info("Split %d rows on %s", len(table), ", ".join(features))
    return x_train, x_test, y_train, y_test


def train_model(x_train: pd.DataFrame, y_train: pd.Series, alpha: float) -> Any:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha).fit(x_train, y_train)
    logger.info("Trained ridge regression, alpha=%s, on %d rows", alpha, len(x_train))
    return model


def evaluate_model(model: Any, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted = model.predict(x_test)
    return {
        "r2": round(float(r2_score(y_test, predicted)), 6),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 6),
        "rows": len(y_test),
        "features": list(x_test.columns),
    }


def plot_residuals(model: Any, x_test: pd.DataFrame, y_test: pd.Series) -> dict[str, Any]:
    """Predicted against actual, and the residuals' histogram: two figures, one folder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = model.predict(x_test)
    scatter, axes = plt.subplots(figsize=(4, 4))
    axes.scatter(y_test, predicted, s=8)
    axes.set_xlabel("actual units")
    axes.set_ylabel("predicted units")
    histogram, axes = plt.subplots(figsize=(4, 3))
    axes.hist(y_test - predicted, bins=20)
    axes.set_xlabel("residual")
    plt.close("all")
    return {"predicted_vs_actual": scatter, "residuals": histogram}
