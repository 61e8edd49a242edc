"""Split, train, evaluate and plot one model; register it under a namespace."""

from kilnflow.pipeline import Pipeline, node

from .nodes import evaluate_model, plot_residuals, split_data, train_model


def create_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(
                split_data,
                [
                    "model_input",
                    "params:features",
                    "params:target",
                    "params:test_size",
                    "params:random_state",
                ],
                ["x_train", "x_test", "y_train", "y_test"],
                name="split",
            ),
            node(train_model, ["x_train", "y_train", "params:alpha"], "regressor", name="train"),
            node(evaluate_model, ["regressor", "x_test", "y_test"], "metrics", name="evaluate"),
            node(plot_residuals, ["regressor", "x_test", "y_test"], "residual_plots"),
        ],
        tags="modelling",
    )
