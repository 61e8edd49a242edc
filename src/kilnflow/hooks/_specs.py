"""Hook specifications: every point at which Kilnflow calls project code.

Arguments are passed by keyword, so an implementation may accept any subset
of them, in any order.
"""

from __future__ import annotations

from typing import Any

from kilnflow.hooks._markers import hook_spec


@hook_spec
def after_context_created(context: Any) -> None:
    """Called once a session has built its context (config, params, catalog)."""


@hook_spec
def after_catalog_created(
    catalog: Any,
    conf_catalog: dict[str, Any],
    parameters: dict[str, Any],
    save_version: str | None,
    load_versions: dict[str, str],
) -> None:
    """Called after the data catalog is built; credentials are never passed."""


@hook_spec
def before_pipeline_run(run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
    """Called before the runner starts the first node."""


@hook_spec
def after_pipeline_run(
    run_params: dict[str, Any], run_result: dict[str, Any], pipeline: Any, catalog: Any
) -> None:
    """Called after every node succeeded, with the free outputs' data."""


@hook_spec
def on_pipeline_error(
    error: BaseException, run_params: dict[str, Any], pipeline: Any, catalog: Any
) -> None:
    """Called when the run fails, before the error reaches the caller."""


@hook_spec(firstresult=False)
def before_node_run(
    node: Any, catalog: Any, inputs: dict[str, Any], session_id: str | None
) -> dict[str, Any] | None:
    """Called before a node runs; may return a dict that replaces some inputs."""


@hook_spec
def after_node_run(
    node: Any,
    catalog: Any,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    session_id: str | None,
) -> None:
    """Called after a node returned, before its outputs are saved."""


@hook_spec
def on_node_error(
    error: BaseException,
    node: Any,
    catalog: Any,
    inputs: dict[str, Any],
    session_id: str | None,
) -> None:
    """Called when a node raises, before the run stops."""


@hook_spec
def before_dataset_loaded(dataset_name: str, node: Any) -> None:
    """Called before a node's input is loaded from the catalog."""


@hook_spec
def after_dataset_loaded(dataset_name: str, data: Any, node: Any) -> None:
    """Called after a node's input is loaded from the catalog."""


@hook_spec
def before_dataset_saved(dataset_name: str, data: Any, node: Any) -> None:
    """Called before a node's output is saved to the catalog."""


@hook_spec
def after_dataset_saved(dataset_name: str, data: Any, node: Any) -> None:
    """Called after a node's output is saved to the catalog."""
