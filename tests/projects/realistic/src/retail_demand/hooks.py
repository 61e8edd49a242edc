"""A hook that logs through the project's logger, as a team's own hooks do."""

from __future__ import annotations

import logging
from typing import Any

from kilnflow.hooks import hook_impl

logger = logging.getLogger(__name__)


class RunReport:
    """Logs each model's score once it is saved, and the end of the run."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if dataset_name.endswith(".metrics"):
            logger.info("%s: r2=%.3f on %d test rows", dataset_name, data["r2"], data["rows"])

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        logger.info("Run of %s finished", run_params["pipeline_name"])
