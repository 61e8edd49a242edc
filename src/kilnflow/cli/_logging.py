"""Where Kilnflow's own log records go when a command runs.

Apart from the group in ``_main`` so that commands loaded by it can set up
logging without importing their loader back.
"""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(verbose: bool) -> None:
    """Send Kilnflow's logs to stderr: INFO by default, DEBUG with --verbose."""
    logger = logging.getLogger("kilnflow")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
