"""What both benchmark projects hold, character for character but for the framework."""

from __future__ import annotations

# The node functions of both projects, character for character.
NODES_SOURCE = '''\
"""Node functions shared by the benchmark pipelines; no framework imports."""

from __future__ import annotations

from itertools import repeat
from typing import Any


def source() -> int:
    return 0


def identity(value: Any) -> Any:
    return value


def gather(*values: Any) -> int:
    return len(values)


def burn(loops: int) -> int:
    """Pure-Python CPU work that holds the GIL and allocates nothing.

    Every value stays a small cached int. A loop that allocated ints ran up
    to 12% faster or slower depending on what its process had imported
    before (the heap's layout), so a runner's speed-up depended on which
    process a node happened to run in.
    """
    total = 0
    for _ in repeat(None, loops):
        total = (total * 3 + 5) % 7
    return total


def clean_readings(readings: list[dict[str, Any]], min_valid: float) -> list[dict[str, Any]]:
    return [row for row in readings if row["value"] >= min_valid]


def summarise_stations(readings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
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
    places = options["decimals"]
    lines = [options["title"], ""]
    for station, stats in summary.items():
        lines.append(
            f"{station:<8} n={stats['count']:<4} mean={stats['mean']:.{places}f} "
            f"min={stats['min']:.{places}f} max={stats['max']:.{places}f}"
        )
    return "\\n".join(lines) + "\\n"
'''

# The pipeline registry of both projects; only the framework import differs.
REGISTRY_SOURCE = '''\
"""The benchmark pipelines, built on first use, by name.

Building every size up front would cost more than running a small one, so
register_pipelines() returns a read-only mapping that builds only the
pipelines that are asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

from {framework}.pipeline import Pipeline, node

from {package}.nodes import (
    burn,
    clean_readings,
    gather,
    identity,
    render_report,
    source,
    summarise_stations,
)

SIZES = (10, 100, 1_000, 5_000, 10_000)
CPU_NODES = {cpu_nodes}


def chain(size: int) -> Pipeline:
    nodes = [node(source, None, "d0", name="n0")]
    nodes += [node(identity, f"d{{i - 1}}", f"d{{i}}", name=f"n{{i}}") for i in range(1, size)]
    return Pipeline(nodes)


def fan(size: int) -> Pipeline:
    middle = [node(identity, "src", f"m{{i}}", name=f"n{{i}}") for i in range(size - 2)]
    sink = node(gather, [f"m{{i}}" for i in range(size - 2)], "out", name="sink")
    return Pipeline([node(source, None, "src", name="source"), *middle, sink])


def cpu(count: int) -> Pipeline:
    return Pipeline(
        [node(burn, "params:loops", f"burnt{{i}}", name=f"burn{{i}}") for i in range(count)]
    )


def realistic() -> Pipeline:
    from {package} import realistic as steps

    return realistic_steps(steps)


def realistic_top() -> Pipeline:
    from {package} import realistic_top as steps

    return realistic_steps(steps)


def realistic_steps(steps: Any) -> Pipeline:
    """pandas features, four scikit-learn models trained side by side, one report."""
    nodes = [
        node(steps.prepare_features, "realistic_raw", "features", name="prepare"),
        node(steps.split_data, ["features", "params:realistic"], ["train", "test"], name="split"),
    ]
    for model in steps.MODELS:
        nodes += [
            node(
                getattr(steps, f"train_{{model}}"),
                ["train", "params:realistic"],
                f"{{model}}_model",
                name=f"train_{{model}}",
            ),
            node(
                steps.score,
                [f"{{model}}_model", "test"],
                f"{{model}}_metrics",
                name=f"score_{{model}}",
            ),
        ]
    metrics = [f"{{model}}_metrics" for model in steps.MODELS]
    nodes.append(node(steps.compare, metrics, "model_report", name="compare"))
    return Pipeline(nodes)


def files() -> Pipeline:
    return Pipeline(
        [
            node(clean_readings, ["readings", "params:min_valid"], "clean_readings", name="clean"),
            node(summarise_stations, "clean_readings", "station_summary", name="summarise"),
            node(render_report, ["station_summary", "params:report"], "report", name="report"),
        ]
    )


BUILDERS: dict[str, Callable[[], Pipeline]] = {{
    "__default__": lambda: chain(10),
    "files": files,
    "realistic": realistic,
    "realistic_top": realistic_top,
    f"cpu_{{CPU_NODES}}": lambda: cpu(CPU_NODES),
    **{{f"chain_{{n}}": (lambda n=n: chain(n)) for n in SIZES}},
    **{{f"fan_{{n}}": (lambda n=n: fan(n)) for n in SIZES}},
}}


class LazyPipelines(Mapping[str, Pipeline]):
    def __init__(self) -> None:
        self._built: dict[str, Pipeline] = {{}}

    def __getitem__(self, name: str) -> Pipeline:
        if name not in self._built:
            self._built[name] = BUILDERS[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(BUILDERS)

    def __len__(self) -> int:
        return len(BUILDERS)


def register_pipelines() -> Mapping[str, Pipeline]:
    return LazyPipelines()
'''

PARAMETERS = """\
min_valid: 0.0
report:
  title: Station report
  decimals: 2
loops: 1000
realistic:
  test_size: 0.2
  seed: 7
  forest_trees: 16
  boosting_rounds: 12
  extra_trees: 100
"""

CATALOG = """\
readings:
  type: {json}
  filepath: data/raw/readings.json

station_summary:
  type: {json}
  filepath: data/processed/station_summary.json

report:
  type: {text}
  filepath: data/reporting/report.txt

realistic_raw:
  type: pandas.CSVDataset
  filepath: data/raw/realistic.csv

"{{model}}_model":
  type: {pickle}
  filepath: data/models/{{model}}.pkl

model_report:
  type: {json}
  filepath: data/reporting/models.json
"""


# The libraries the realistic nodes import (pandas for the features, scikit-learn
# for the models): a worker must hold all of them before the first model trains.
REALISTIC_LIBRARIES = ("pandas", "sklearn.ensemble", "sklearn.linear_model")

# A realistic project's nodes, the same in both projects: pandas and scikit-learn,
# imported only by the pipeline that uses them.
REALISTIC_SOURCE = """\
\"\"\"Feature engineering with pandas and four scikit-learn models; no framework imports.\"\"\"

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Pipelines are built by name, but a framework may build every registered one:
# pandas and scikit-learn load when a node runs, not when its pipeline is built.
MODELS = ("forest", "boosting", "extra_trees", "logistic")
FEATURES = [f"x{i}" for i in range(10)]


def prepare_features(raw: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    frame = raw.dropna().copy()
    frame["x_sum"] = frame[FEATURES].sum(axis=1)
    frame["x_cross"] = frame["x0"] * frame["x1"]
    segments = pd.get_dummies(frame["segment"], prefix="segment", dtype=float)
    return pd.concat([frame.drop(columns="segment"), segments], axis=1)


def split_data(
    features: pd.DataFrame, options: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = features.sample(frac=options["test_size"], random_state=options["seed"])
    return features.drop(index=test.index), test


def _xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns="label"), frame["label"]


def train_forest(train: pd.DataFrame, options: dict[str, Any]) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(
        n_estimators=options["forest_trees"], max_depth=10, n_jobs=1, random_state=options["seed"]
    )
    return model.fit(*_xy(train))


def train_boosting(train: pd.DataFrame, options: dict[str, Any]) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(
        n_estimators=options["boosting_rounds"], max_depth=3, random_state=options["seed"]
    )
    return model.fit(*_xy(train))


def train_extra_trees(train: pd.DataFrame, options: dict[str, Any]) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    model = ExtraTreesClassifier(
        n_estimators=options["extra_trees"], max_depth=12, n_jobs=1, random_state=options["seed"]
    )
    return model.fit(*_xy(train))


def train_logistic(train: pd.DataFrame, options: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(*_xy(train))


def score(model: Any, test: pd.DataFrame) -> dict[str, float]:
    features, labels = _xy(test)
    return {"accuracy": round(float(model.score(features, labels)), 6), "rows": len(test)}


def compare(*metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    return dict(zip(MODELS, metrics))
"""


# The same steps as most projects write them: the module the pipeline takes its
# nodes from imports pandas and scikit-learn at its top, so building the pipeline
# imports them.
REALISTIC_TOP_SOURCE = """\
\"\"\"The realistic steps, with their libraries imported at the module's top.\"\"\"

import pandas  # noqa: F401
from sklearn import ensemble, linear_model  # noqa: F401

from .realistic import (  # noqa: F401
    MODELS,
    compare,
    prepare_features,
    score,
    split_data,
    train_boosting,
    train_extra_trees,
    train_forest,
    train_logistic,
)
"""
