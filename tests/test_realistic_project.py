"""A realistic project, run from source and as an installed wheel, with identical outputs.

``tests/projects/realistic`` is a demand-modelling project of the kind teams
port from Kedro: an Excel workbook, a SQLite database and a folder of CSV
partitions become parquet tables; two namespaced instances of one
scikit-learn pipeline (each with its own parameters) save pickled models,
JSON metrics and matplotlib figures; reports go to SQLite, plotly HTML and
plotly JSON; a project hook and every node log through their own loggers.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import fresh_venv, run_cli, run_installed

SOURCE = Path(__file__).parent / "projects" / "realistic"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
REGIONS = ("north", "south", "east", "west")
# Every output of a run: files compared byte for byte, the SQLite database by content.
OUTPUTS = [
    "02_intermediate/daily_sales.parquet",
    "02_intermediate/stores.parquet",
    "02_intermediate/weather.parquet",
    "03_primary/model_input.parquet",
    "06_models/baseline/regressor.pkl",
    "06_models/weather_aware/regressor.pkl",
    "08_reporting/baseline/metrics.json",
    "08_reporting/baseline/residuals/predicted_vs_actual.png",
    "08_reporting/baseline/residuals/residuals.png",
    "08_reporting/comparison.html",
    "08_reporting/reports.db",
    "08_reporting/sales_by_region.json",
    "08_reporting/weather_aware/metrics.json",
    "08_reporting/weather_aware/residuals/predicted_vs_actual.png",
    "08_reporting/weather_aware/residuals/residuals.png",
]


def write_raw_data(raw: Path) -> None:
    """Deterministic inputs: stores in Excel, transactions in SQLite, weather per region."""
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(0)
    raw.mkdir(parents=True)
    stores = pd.DataFrame(
        {
            "store_id": range(1, 13),
            "region": [f" {REGIONS[i % 4].title()} " for i in range(12)],
            "size_m2": rng.randint(200, 1200, 12),
            "open": [i != 5 for i in range(12)],
        }
    )
    stores.to_excel(raw / "stores.xlsx", sheet_name="stores", index=False)
    days = range(1, 61)
    weather = {
        region: pd.DataFrame(
            {
                "day": list(days),
                "temperature": (15 + 8 * np.sin(np.arange(60) / 9) + rng.normal(0, 2, 60)).round(1),
                "rain_mm": rng.gamma(1.0, 2.0, 60).round(1),
            }
        )
        for region in REGIONS
    }
    (raw / "weather").mkdir()
    for region, frame in weather.items():
        frame.to_csv(raw / "weather" / f"{region}.csv", index=False)
    rows = []
    for store in stores.itertuples():
        climate = weather[store.region.strip().lower()].set_index("day")
        for day in days:
            for _ in range(3):
                price = round(float(rng.uniform(2.0, 6.0)), 2)
                demand = (
                    store.size_m2 / 60
                    - 2.5 * price
                    + 0.6 * climate.at[day, "temperature"]
                    - 0.8 * climate.at[day, "rain_mm"]
                )
                units = max(0, round(demand + float(rng.normal(0, 2))))
                rows.append((store.store_id, day, units, price))
    with sqlite3.connect(raw / "sales.db") as connection:
        connection.execute(
            "CREATE TABLE transactions (store_id INTEGER, day INTEGER, units INTEGER, "
            "unit_price REAL)"
        )
        connection.executemany("INSERT INTO transactions VALUES (?, ?, ?, ?)", rows)
    connection.close()


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project copied into a temporary folder, with its raw data generated."""
    project = tmp_path_factory.mktemp("realistic") / "retail-demand"
    shutil.copytree(SOURCE, project, ignore=shutil.ignore_patterns("__pycache__"))
    write_raw_data(project / "data" / "01_raw")
    return project


def library_wheels(house: Path) -> None:
    """Wheels of the project's libraries, pinned to this environment's versions.

    The packaged run must use the very versions the project-mode run used, or
    parquet metadata and pickles could differ for reasons unrelated to Kilnflow.
    """
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    house.mkdir()
    constraints = house.parent / "constraints.txt"
    constraints.write_text(
        "\n".join(line for line in frozen.splitlines() if "==" in line and "@" not in line)
    )
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(house)),
            *("-c", str(constraints)),
            *("pandas", "pyarrow", "openpyxl", "SQLAlchemy", "matplotlib", "plotly"),
            "scikit-learn",
        ],
        check=True,
        capture_output=True,
    )


def outputs_of(data: Path) -> dict[str, object]:
    """Every output file by path under ``data``: its bytes, or the database's rows."""
    found = sorted(
        path.relative_to(data).as_posix()
        for path in data.rglob("*")
        if path.is_file() and path.relative_to(data).parts[0] != "01_raw"
    )
    assert found == OUTPUTS
    contents: dict[str, object] = {}
    for name in found:
        if name.endswith(".db"):
            with sqlite3.connect(data / name) as connection:
                contents[name] = connection.execute(
                    "SELECT model, r2, mae FROM model_comparison ORDER BY model"
                ).fetchall()
            connection.close()
        else:
            contents[name] = (data / name).read_bytes()
    return contents


def assert_node_logs_visible(stderr: str) -> None:
    def shown(pattern: str) -> bool:
        return any(re.fullmatch(rf"{STAMP} INFO {pattern}", line) for line in stderr.splitlines())

    assert shown(r"retail_demand\.pipelines\.data_processing\.nodes: Kept 11 of 12 stores")
    assert shown(r"retail_demand\.pipelines\.data_processing\.nodes: Read weather of 4 regions")
    assert shown(r"retail_demand\.pipelines\.modelling\.nodes: Trained ridge .*alpha=10\.0.*")
    assert shown(r"retail_demand\.pipelines\.modelling\.nodes: Trained ridge .*alpha=0\.5.*")
    assert shown(r"retail_demand\.pipelines\.reporting\.nodes: Best model: weather_aware")
    assert shown(r"retail_demand\.hooks: baseline\.metrics: r2=\d\.\d{3} on \d+ test rows")
    assert shown(r"retail_demand\.hooks: Run of __default__ finished")
    assert shown(r"kilnflow: Pipeline '__default__' finished: 15 nodes run in .*")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # builds wheels of pandas, scikit-learn and more, and a venv of them
def test_realistic_project_gives_identical_outputs_from_source_and_from_its_wheel(
    realistic: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    from kilnflow.packaging import package_project

    project_run = run_cli("run", cwd=realistic)
    assert_node_logs_visible(project_run.stderr)
    from_source = outputs_of(realistic / "data")

    wheel = package_project(realistic, tmp_path / "dist")
    libraries = tmp_path / "libraries"
    library_wheels(libraries)
    bindir = fresh_venv(tmp_path / "venv", wheelhouse, "--find-links", str(libraries), str(wheel))
    work = tmp_path / "work"
    shutil.copytree(realistic / "data" / "01_raw", work / "data" / "01_raw")
    packaged_run = run_installed(bindir, ["python", "-m", "retail_demand"], work)
    assert packaged_run.returncode == 0, packaged_run.stderr[-3000:]
    assert_node_logs_visible(packaged_run.stderr)
    from_wheel = outputs_of(work / "data")

    assert from_wheel.keys() == from_source.keys()
    for name in from_source:
        assert from_wheel[name] == from_source[name], name
    metrics = {
        instance: json.loads(from_source[f"08_reporting/{instance}/metrics.json"])  # type: ignore[arg-type]
        for instance in ("baseline", "weather_aware")
    }
    assert metrics["baseline"]["features"] == ["unit_price", "size_m2"]
    assert metrics["weather_aware"]["features"] == [
        "unit_price",
        "size_m2",
        "temperature",
        "rain_mm",
    ]
    assert metrics["weather_aware"]["r2"] > metrics["baseline"]["r2"]


def test_realistic_project_instances_read_their_own_parameters(realistic: Path) -> None:
    described = run_cli("pipeline", "describe", "modelling", cwd=realistic).stdout.splitlines()

    assert (
        "baseline.split: model_input, params:baseline.features, params:target, "
        "params:baseline.test_size, params:baseline.random_state -> baseline.x_train, "
        "baseline.x_test, baseline.y_train, baseline.y_test"
    ) in described
    assert any(line.startswith("weather_aware.train: weather_aware.x_train") for line in described)
