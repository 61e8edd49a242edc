"""Configuration: ``conf/<env>`` files merged over ``conf/base``, resolved.

``ConfigLoader`` reads a conf folder, an archive of one or a folder packaged
inside a wheel, and returns plain dicts. OmegaConf and PyYAML are imported
only when a configuration is actually loaded, so importing this package is
cheap.
"""

from __future__ import annotations

from kilnflow.config._loader import ConfigLoader
from kilnflow.config._sources import conf_files

__all__ = ["ConfigLoader", "conf_files"]


def __dir__() -> list[str]:
    return __all__
