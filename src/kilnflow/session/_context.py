"""The context of one run: configuration, parameters and the data catalog."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kilnflow.config import ConfigLoader
    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog

__all__ = ["DATA_DIR_ENV", "Context"]

#: Environment variable naming the folder that relative catalog paths resolve against.
DATA_DIR_ENV = "KILNFLOW_DATA_DIR"


class Context:
    """Configuration, parameters and catalog as one run sees them.

    Built by :meth:`Session.load_context`; projects may subclass it and name
    the subclass in ``settings.CONTEXT_CLASS``.
    """

    def __init__(
        self,
        *,
        package_name: str,
        project_path: Path | None,
        config_loader: ConfigLoader,
        env: str | None,
        hook_manager: HookManager,
        data_catalog_class: type[DataCatalog],
        extra_params: Mapping[str, Any] | None = None,
    ) -> None:
        #: The configured project package.
        self.package_name = package_name
        #: The project folder in project mode; ``None`` in packaged mode.
        self.project_path = project_path
        #: The loader that reads this run's configuration.
        self.config_loader = config_loader
        #: The configuration environment the run asked for.
        self.env = env
        #: Runtime parameters given for this run (they override parameters).
        self.extra_params = dict(extra_params or {})
        self._hook_manager = hook_manager
        self._catalog_class = data_catalog_class

    @cached_property
    def params(self) -> dict[str, Any]:
        """Parameters of the run, runtime parameters applied."""
        return dict(self.config_loader["parameters"])

    @cached_property
    def catalog(self) -> DataCatalog:
        """The context's catalog (latest versions), built once on first use.

        Reading an attribute should not rebuild datasets nor fire
        ``after_catalog_created`` each time; call :meth:`get_catalog` for a
        fresh catalog.
        """
        return self.get_catalog()

    def get_catalog(
        self,
        save_version: str | None = None,
        load_versions: Mapping[str, str] | None = None,
        *,
        overwrite_save_version: bool = False,
    ) -> DataCatalog:
        """Build a new catalog, with credentials, for one run; hooks see every build."""
        conf_catalog = dict(self.config_loader["catalog"])
        data_dir = os.environ.get(DATA_DIR_ENV)
        root = Path(data_dir).expanduser().resolve() if data_dir else self.project_path
        if root is not None:
            conf_catalog = _anchor_paths(conf_catalog, root)
        credentials = self.config_loader["credentials"] if _wants_credentials(conf_catalog) else {}
        catalog = self._catalog_class.from_config(
            conf_catalog,
            credentials=credentials,
            load_versions=dict(load_versions or {}),
            save_version=save_version,
            overwrite_save_version=overwrite_save_version,
        )
        catalog.add_parameters(self.params)
        self._hook_manager.hook.after_catalog_created(
            catalog=catalog,
            conf_catalog=conf_catalog,
            parameters=self.params,
            save_version=save_version,
            load_versions=dict(load_versions or {}),
        )
        return catalog


def _wants_credentials(value: Any) -> bool:
    """Read credentials files only when some dataset names credentials, at any depth."""
    if isinstance(value, Mapping):
        return "credentials" in value or any(_wants_credentials(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_wants_credentials(item) for item in value)
    return False


def _anchor_paths(conf_catalog: dict[str, Any], project_path: Path) -> dict[str, Any]:
    """Make relative local file paths relative to ``project_path``, not the working directory.

    In project mode ``kilnflow run`` may start from any folder inside the
    project; data should land in the project's ``data/`` all the same.
    Packaged runs keep paths relative to the working directory, as documented,
    unless ``$KILNFLOW_DATA_DIR`` names the data folder: an Airflow worker's
    working directory is the scheduler's or worker's, not the user's.
    """
    anchored = dict(conf_catalog)
    for name, entry in conf_catalog.items():
        if not isinstance(entry, Mapping):
            continue
        relative = {
            key: (project_path / location).as_posix()
            for key in ("filepath", "path")  # ``path``: the folder of a PartitionedDataset
            if isinstance(location := entry.get(key), str)
            and "://" not in location
            and not Path(location).is_absolute()
        }
        if relative:
            anchored[name] = {**entry, **relative}
    return anchored
