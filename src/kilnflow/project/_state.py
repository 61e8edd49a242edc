"""The one place that holds which project this process runs.

``configure_project`` is the only writer. Everything else reads through
:func:`package_name`, the :data:`settings` view and the :data:`pipelines`
mapping, so a process that never configured a project gets the same clear
error wherever it asks.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from kilnflow.errors import (
    KilnflowWarning,
    PackageNameNotFoundError,
    PipelineError,
    ProjectError,
    did_you_mean,
)
from kilnflow.project._metadata import ProjectMetadata, find_project_root, read_metadata
from kilnflow.project._settings import Settings

if TYPE_CHECKING:
    from kilnflow._resources import Traversable
    from kilnflow.hooks import HookManager
    from kilnflow.pipeline import Pipeline

__all__ = [
    "ConfSource",
    "bootstrap_here",
    "bootstrap_project",
    "conf_source",
    "configure_project",
    "find_pipelines",
    "get_pipeline",
    "package_name",
    "pipeline_modules",
    "pipelines",
    "project_hooks",
    "project_metadata",
    "project_path",
    "reset_project",
    "settings",
]

#: Where configuration is read from: a folder, an archive or packaged resources.
ConfSource = Union[str, Path, "Traversable"]

_NOT_CONFIGURED = (
    "Package name not found. This process has not configured a Kilnflow project: call "
    "bootstrap_project('<project folder>') when running from source, or "
    "configure_project('<package>') when running an installed package and in every "
    "process you spawn yourself."
)


class _State:
    """Per-process project state; only ``configure_project`` writes it."""

    def __init__(self) -> None:
        self.package_name: str | None = None
        self.project_path: Path | None = None
        self.metadata: ProjectMetadata | None = None
        self.settings: Settings | None = None
        self.pipelines: Mapping[str, Pipeline] | None = None


_state = _State()


def configure_project(package_name: str) -> None:
    """Make ``package_name`` this process's project (packaged mode).

    Nothing of the package is imported yet: settings and pipelines load on
    first use, so ``--help`` and ``info`` work even with a broken pipeline.
    """
    try:
        spec = importlib.util.find_spec(package_name)
    except (ImportError, ValueError) as exc:
        spec = None
        cause: Exception | None = exc
    else:
        cause = None
    if spec is None:
        raise ProjectError(
            f"Package {package_name!r} cannot be imported: install the project's wheel, or "
            "check package_name in pyproject.toml [tool.kilnflow]."
        ) from cause
    _state.package_name = package_name
    _state.project_path = None
    _state.metadata = None
    _state.settings = None
    _state.pipelines = None


def bootstrap_project(project_path: str | Path) -> ProjectMetadata:
    """Configure the project developed at ``project_path`` (project mode)."""
    metadata = read_metadata(project_path, keep_parsed=True)
    source = str(metadata.source_dir)
    if source not in sys.path:
        sys.path.insert(0, source)
    python_path = os.environ.get("PYTHONPATH", "")
    if source not in python_path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [source, python_path]))
    importlib.invalidate_caches()
    configure_project(metadata.package_name)
    _state.project_path = metadata.project_path
    _state.metadata = metadata
    return metadata


def bootstrap_here() -> ProjectMetadata:
    """Bootstrap the project holding the working directory, or explain how to get one."""
    root = find_project_root(Path.cwd())
    if root is None:
        raise ProjectError(
            f"No Kilnflow project in {Path.cwd()} or its parents: cd into a project, or "
            "create one with 'kilnflow new NAME'."
        )
    return bootstrap_project(root)


def reset_project() -> None:
    """Forget the configured project (tests, and notebooks that switch projects)."""
    vars(_state).update(vars(_State()))


def forget_project_code(package: str) -> None:
    """Drop ``package`` and its submodules from ``sys.modules``.

    The next import reads the files again, so a notebook or a live viewer
    picks up edited code when it configures the project anew.
    """
    if package.split(".", maxsplit=1)[0] == "kilnflow":
        raise ProjectError(
            f"{package!r} is Kilnflow itself, not a project: name your project's package."
        )
    for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
        del sys.modules[name]


def package_name() -> str:
    """The configured package, or the "Package name not found" error."""
    if _state.package_name is None:
        raise PackageNameNotFoundError(_NOT_CONFIGURED)
    return _state.package_name


def project_path() -> Path | None:
    """The project folder in project mode; ``None`` when running a package."""
    package_name()
    return _state.project_path


def project_metadata() -> ProjectMetadata | None:
    """The bootstrapped project's metadata; ``None`` when running a package."""
    package_name()
    return _state.metadata


def conf_source(override: ConfSource | None = None) -> ConfSource:
    """Where this run reads configuration from.

    An explicit source wins; project mode reads the project's conf folder;
    packaged mode reads the ``conf`` packaged in the installed package,
    never the working directory.
    """
    package = package_name()
    if override is not None:
        return override
    if _state.project_path is not None:
        return _state.project_path / str(settings.CONF_SOURCE)
    from kilnflow._resources import files

    packaged = files(package) / "conf"
    if not packaged.is_dir():
        raise ProjectError(
            f"Package {package!r} has no packaged configuration ({package}/conf): rebuild "
            "its wheel with the kilnflow build hook, or pass --conf-source."
        )
    return packaged


def _current_settings() -> Settings:
    package = package_name()
    if _state.settings is None:
        _state.settings = Settings(_import_optional(f"{package}.settings"))
    return _state.settings


def _import_optional(module_name: str) -> Any:
    if importlib.util.find_spec(module_name) is None:
        return None
    return _import(module_name)


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise ProjectError(
            f"Importing {module_name} failed with {type(exc).__name__}: {exc}; fix that module."
        ) from exc


class _SettingsView:
    """``settings.NAME`` for the configured project, whichever it is now."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_current_settings(), name)

    def as_dict(self) -> dict[str, Any]:
        """Every setting with its effective value."""
        return _current_settings().as_dict()


class _PipelinesView(Mapping[str, "Pipeline"]):
    """The configured project's registered pipelines, loaded on first access."""

    def _registry(self) -> Mapping[str, Pipeline]:
        package = package_name()
        if _state.pipelines is None:
            _state.pipelines = _load_registry(package)
        return _state.pipelines

    def __getitem__(self, name: str) -> Pipeline:
        from kilnflow.pipeline import Pipeline

        value = self._registry()[name]
        if not isinstance(value, Pipeline):
            raise ProjectError(
                f"{package_name()}.pipeline_registry.register_pipelines() maps {name!r} to "
                f"{type(value).__name__}; every value must be a Pipeline."
            )
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._registry())

    def __len__(self) -> int:
        return len(self._registry())

    def __repr__(self) -> str:
        return f"<pipelines of {_state.package_name or 'no project'}>"


def _load_registry(package: str) -> Mapping[str, Pipeline]:
    """The mapping ``register_pipelines()`` returns, kept as it is.

    A registry may build its pipelines lazily, on lookup; values are checked
    when looked up, so a run builds only the pipeline it runs.
    """
    module_name = f"{package}.pipeline_registry"
    if importlib.util.find_spec(module_name) is None:
        raise ProjectError(
            f"{module_name} does not exist: add pipeline_registry.py to the {package} package "
            "with a register_pipelines() function returning a dict of pipelines."
        )
    register = getattr(_import(module_name), "register_pipelines", None)
    if not callable(register):
        raise ProjectError(
            f"{module_name} has no register_pipelines() function; add one that returns a dict "
            "of pipelines."
        )
    registered = register()
    if not isinstance(registered, Mapping):
        raise ProjectError(
            f"{module_name}.register_pipelines() returned {type(registered).__name__}; "
            "it must return a dict of pipeline name to Pipeline."
        )
    return registered


def project_hooks() -> tuple[HookManager, list[str]]:
    """The project's hooks (``settings.HOOKS``) and installed plugins, registered.

    Returns the manager and the distributions whose plugins were loaded. The
    session and every worker process build their hooks here, so both see
    the same ones.
    """
    from kilnflow.hooks import create_hook_manager, register_hooks, register_plugins

    manager = create_hook_manager()
    register_hooks(manager, settings.HOOKS)
    return manager, register_plugins(manager, settings.DISABLE_HOOKS_FOR_PLUGINS)


def get_pipeline(name: str) -> Pipeline:
    """The registered pipeline ``name``, or an error listing the registered ones."""
    try:
        return pipelines[name]
    except KeyError:
        known = sorted(pipelines)
        raise PipelineError(
            f"Pipeline {name!r} is not registered.{did_you_mean(name, known)} "
            f"Registered pipelines: {', '.join(known) or 'none'}."
        ) from None


def find_pipelines(raise_errors: bool = True) -> dict[str, Pipeline]:
    """Collect ``create_pipeline()`` from each module of ``<package>.pipelines``.

    A module that fails to import or to build a pipeline is an error naming
    it and the cause: a run that silently leaves out a pipeline would report
    success for work it never did. ``raise_errors=False`` skips such modules
    with a warning instead, for projects that accept that trade. ``__default__``
    is the sum of all that were found.
    """
    from kilnflow.pipeline import Pipeline

    package = package_name()
    found: dict[str, Pipeline] = {}
    for name in _pipeline_module_names(package):
        module_name = f"{package}.pipelines.{name}"
        try:
            created = importlib.import_module(module_name).create_pipeline()
        except Exception as exc:
            detail = (str(exc).strip().splitlines() or [""])[0]
            _broken_pipeline(module_name, f"{type(exc).__name__}: {detail}", raise_errors)
            continue
        if not isinstance(created, Pipeline):
            problem = f"create_pipeline() returned {type(created).__name__}, not a Pipeline"
            _broken_pipeline(module_name, problem, raise_errors)
            continue
        found[name] = created
    found["__default__"] = Pipeline(list(found.values()))
    return found


def pipeline_modules() -> Iterator[str]:
    """The modules that build the configured project's pipelines, none of them imported.

    The registry, and the modules :func:`find_pipelines` would import. A
    runner may read them before the session imports them (see
    ``AbstractRunner.warming``); the folder is listed only if it does.
    """
    package = package_name()
    yield f"{package}.pipeline_registry"
    for name in _pipeline_module_names(package):
        yield f"{package}.pipelines.{name}"


def _pipeline_module_names(package: str) -> list[str]:
    """The modules under ``<package>.pipelines``, in the order find_pipelines imports them."""
    from kilnflow._resources import files

    folder = files(package) / "pipelines"
    if not folder.is_dir():
        return []
    entries = sorted(folder.iterdir(), key=lambda item: item.name)
    return [name for name in map(_pipeline_module_name, entries) if name is not None]


def _broken_pipeline(module_name: str, problem: str, raise_errors: bool) -> None:
    if raise_errors:
        raise ProjectError(
            f"Pipeline module {module_name} cannot be loaded ({problem}); fix it, or call "
            "find_pipelines(raise_errors=False) in pipeline_registry.py to skip broken modules."
        )
    warnings.warn(
        f"Pipeline module {module_name} was skipped: {problem}.",
        KilnflowWarning,
        stacklevel=3,
    )


def _pipeline_module_name(entry: Traversable) -> str | None:
    name = entry.name
    if name.startswith(("_", ".")):
        return None
    if entry.is_dir():
        return name if (entry / "__init__.py").is_file() else None
    if name.endswith(".py"):
        return name[: -len(".py")]
    return None


#: Settings of the configured project (read-only).
settings = _SettingsView()
#: Registered pipelines of the configured project (read-only, lazy).
pipelines: Mapping[str, Pipeline] = _PipelinesView()
