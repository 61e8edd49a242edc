"""Plain functions: no Kilnflow imports, easy to test on their own."""

from __future__ import annotations

from typing import Any


def clean_readings(readings: list[dict[str, Any]], min_valid: float) -> list[dict[str, Any]]:
    """Drop faulty readings (sensor error codes are large negative numbers)."""
    return [row for row in readings if row["value"] >= min_valid]


def summarise_stations(readings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Count, mean, minimum and maximum per station."""
    by_station: dict[str, list[float]] = {}
    for row in readings:
        by_station.setdefault(row["station"], []).append(row["value"])
    return {
        station: {
            "count": len(values),
            "mean": sum(values) / len(values),
            "min": min(values),
            "max": max(values),
        }
        for station, values in sorted(by_station.items())
    }


def render_report(summary: dict[str, dict[str, float]], options: dict[str, Any]) -> str:
    """A plain-text table of the summary."""
    places = options["decimals"]
    lines = [options["title"], ""]
    for station, stats in summary.items():
        lines.append(
            f"{station:<8} n={stats['count']:<3} mean={stats['mean']:.{places}f} "
            f"min={stats['min']:.{places}f} max={stats['max']:.{places}f}"
        )
    return "\n".join(lines) + "\n"
