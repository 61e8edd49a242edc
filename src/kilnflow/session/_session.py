"""The session: one run's lifecycle, from configuration to its recorded outcome."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kilnflow._redact import Redactor
from kilnflow._version import __version__
from kilnflow.errors import SessionError
from kilnflow.project import (
    ConfSource,
    ProjectMetadata,
    conf_source,
    get_pipeline,
    package_name,
    pipeline_modules,
    project_metadata,
    settings,
)
from kilnflow.project import project_path as configured_project_path
from kilnflow.session._context import Context
from kilnflow.session._runtime import (
    host_info,
    new_session_id,
    recorded_environment,
    start_git_info,
)
from kilnflow.session._store import (
    BaseSessionStore,
    DatabaseStore,
    MemoryStore,
    SQLiteStore,
    configured_store_url,
    default_store_dir,
)
from kilnflow.session._worker import worker_initialiser

if TYPE_CHECKING:
    from kilnflow.hooks import HookManager
    from kilnflow.io import DataCatalog
    from kilnflow.pipeline import Node, Pipeline
    from kilnflow.runner import AbstractRunner, Progress

__all__ = ["Session", "history_store", "make_store"]

# Run filters recorded as sorted lists, in the order run_params lists them.
_SORTED_FILTERS = ("tags", "node_names", "from_nodes", "to_nodes", "from_inputs", "to_outputs")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Session:
    """One run of the configured project, recorded under a unique session id.

    Use it as a context manager::

        with Session.create(env="local", extra_params={"n": 3}) as session:
            session.run()

    A session runs one pipeline once; a failed run may be retried. Closing
    records the outcome, and with ``save_on_close`` writes the store.
    """

    #: How the error about running a session twice says to get a new one.
    new_session_hint = "create a new session"

    def __init__(
        self,
        *,
        session_id: str,
        package_name: str,
        project_path: Path | None,
        env: str | None,
        extra_params: Mapping[str, Any],
        conf_source: ConfSource | None,
        save_on_close: bool,
        store: BaseSessionStore,
        save_version: str | None = None,
        argv: Sequence[str] | None = None,
        overwrite_save_version: bool = False,
    ) -> None:
        self.session_id = session_id
        #: Version under which versioned datasets of this run are saved.
        self.save_version = save_version or session_id
        #: Whether saves may replace files already saved under ``save_version``.
        self.overwrite_save_version = overwrite_save_version
        self.package_name = package_name
        self.project_path = project_path
        self.env = env
        self.extra_params = dict(extra_params)
        self.save_on_close = save_on_close
        #: The persisted runtime parameters of this session.
        self.store = store
        self._conf_source = conf_source
        self._context: Context | None = None
        self._hook_manager: HookManager | None = None
        self._run_succeeded = False
        self._closed = False
        self._git: Callable[[], dict[str, Any] | None] | None = None
        self._redactor = Redactor(settings.SECRET_NAMES)
        self._argv = list(argv) if argv is not None else self._redactor.arguments(sys.argv)

    @classmethod
    def create(
        cls,
        project_path: str | Path | None = None,
        *,
        env: str | None = None,
        extra_params: Mapping[str, Any] | None = None,
        save_on_close: bool = True,
        conf_source: ConfSource | None = None,
        save_version: str | None = None,
        argv: Sequence[str] | None = None,
        overwrite_save_version: bool = False,
    ) -> Session:
        """Start a session of the configured project.

        ``env`` falls back to ``$KILNFLOW_ENV``; ``conf_source`` replaces the
        project's (or the package's) configuration. Versioned datasets save
        under the session id unless ``save_version`` is given, as when the
        tasks of one Airflow DAG run must share one version; a version is
        never overwritten unless ``overwrite_save_version`` (a retried task of
        that DAG run replaces what its failed try saved). ``argv`` is the
        command line to record, secrets already hidden by whoever parsed it
        (the CLI hands its own); by default this process's ``sys.argv`` with
        secret-looking values hidden.
        """
        package = package_name()
        if project_path is None:
            project_path = configured_project_path()
        root = Path(project_path).resolve() if project_path is not None else None
        session_id = new_session_id()
        env = env or os.environ.get("KILNFLOW_ENV") or None
        store = make_store(root, session_id, save_on_close=save_on_close)
        try:
            session = cls(
                session_id=session_id,
                package_name=package,
                project_path=root,
                env=env,
                extra_params=extra_params or {},
                conf_source=conf_source,
                save_on_close=save_on_close,
                store=store,
                save_version=save_version,
                argv=argv,
                overwrite_save_version=overwrite_save_version,
            )
            session._record_start()
        except BaseException:
            store.close()
            raise
        return session

    def _record_start(self) -> None:
        manifest = _build_manifest(self.package_name) if self.project_path is None else None
        # git runs while the session works; its answer is recorded at close.
        self._git = start_git_info(self.project_path) if self.project_path else None
        self.store.update(
            session_id=self.session_id,
            package_name=self.package_name,
            project_path=str(self.project_path) if self.project_path else None,
            mode="project" if self.project_path else "packaged",
            cwd=os.getcwd(),
            env=self.env,
            extra_params=self._redactor.values(self.extra_params),
            save_version=self.save_version,
            conf_source=str(self._conf_source) if self._conf_source is not None else None,
            argv=self._argv,
            environment=recorded_environment(self._redactor),
            git=None,
            versions=_versions(self.package_name, project_metadata(), manifest),
            build=manifest,
            started_at=_now(),
            outcome="running",
            **host_info(),
        )
        if self.save_on_close:
            self.store.save()

    @property
    def hook_manager(self) -> HookManager:
        """Project hooks and plugin hooks, registered once per session."""
        if self._hook_manager is None:
            from kilnflow.project import project_hooks

            self._hook_manager, self.store["plugins"] = project_hooks()
        return self._hook_manager

    def load_context(self) -> Context:
        """Read configuration and build the context (once per session)."""
        if self._context is None:
            loader_class = settings.CONFIG_LOADER_CLASS
            loader = loader_class(
                conf_source=self._read_conf_from(),
                env=self.env,
                runtime_params=self.extra_params,
                **dict(settings.CONFIG_LOADER_ARGS),
            )
            self._keep_parsed_config(loader)
            context_class = settings.CONTEXT_CLASS or Context
            self._context = context_class(
                package_name=self.package_name,
                project_path=self.project_path,
                config_loader=loader,
                env=self.env,
                hook_manager=self.hook_manager,
                data_catalog_class=settings.DATA_CATALOG_CLASS,
                extra_params=self.extra_params,
            )
            self.hook_manager.hook.after_context_created(context=self._context)
        return self._context

    def _keep_parsed_config(self, loader: object) -> None:
        """Let the loader keep parsed YAML beside a session store kept in a file.

        Reading it back skips importing PyYAML, which is most of what a short
        run costs beyond Python itself.
        """
        from kilnflow.config import ConfigLoader

        if isinstance(loader, ConfigLoader) and self.store.path is not None:
            loader.parse_cache = self.store.path.parent / "cache"

    def _read_conf_from(self) -> ConfSource:
        """The session's own project folder decides, even after configure_project(pkg).

        A session created with ``project_path=X`` records ``mode=project``, so
        it must read ``X``'s configuration rather than the package's.
        """
        if self._conf_source is None and self.project_path is not None:
            return self.project_path / str(settings.CONF_SOURCE)
        return conf_source(self._conf_source)

    def run(
        self,
        pipeline_name: str | None = None,
        tags: Iterable[str] | None = None,
        runner: AbstractRunner[Any] | None = None,
        node_names: Iterable[str] | None = None,
        from_nodes: Iterable[str] | None = None,
        to_nodes: Iterable[str] | None = None,
        from_inputs: Iterable[str] | None = None,
        to_outputs: Iterable[str] | None = None,
        load_versions: Mapping[str, str] | None = None,
        namespace: str | None = None,
        progress: Progress | None = None,
        *,
        pipeline_names: Iterable[str] | None = None,
        only_missing_outputs: bool = False,
    ) -> dict[str, Any]:
        """Run a registered pipeline, filtered as asked; return its free outputs.

        ``progress`` shows completed nodes; by default the runner logs each.
        ``pipeline_names`` runs several registered pipelines as one (nodes
        they share run once). ``only_missing_outputs`` then skips every node
        whose persistent outputs all exist, unless a node that runs needs
        its in-memory outputs.
        """
        self._check_can_run()
        from kilnflow.runner import SequentialRunner

        filters: dict[str, Any] = {
            "tags": tags,
            "node_names": node_names,
            "from_nodes": from_nodes,
            "to_nodes": to_nodes,
            "from_inputs": from_inputs,
            "to_outputs": to_outputs,
            "namespace": namespace,
        }
        names = _pipeline_names(pipeline_name, pipeline_names)
        runner = runner or SequentialRunner()
        with runner.warming(pipeline_modules()):
            selected = _select(_registered(names), **filters)
            run_params = self._run_params(names, runner, filters, load_versions)
            run_params["only_missing_outputs"] = only_missing_outputs
            self.store["run"] = run_params
            context = self.load_context()
            catalog = context.get_catalog(
                save_version=self.save_version,
                load_versions=load_versions,
                overwrite_save_version=self.overwrite_save_version,
            )
            if only_missing_outputs:
                selected = _missing_outputs_only(selected, catalog)
            outputs = self._run_between_hooks(runner, selected, catalog, run_params, progress)
        self._run_succeeded = True
        self.store["outcome"] = "success"
        return outputs

    def _check_can_run(self) -> None:
        if self._closed:
            raise SessionError(
                f"Session {self.session_id} is closed; {self.new_session_hint} to run again."
            )
        if self._run_succeeded:
            raise SessionError(
                f"Session {self.session_id} already ran its pipeline; a session runs once "
                f"(only a failed run may be retried): {self.new_session_hint} for another run."
            )

    def _run_params(
        self,
        names: list[str],
        runner: AbstractRunner[Any],
        filters: Mapping[str, Any],
        load_versions: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """What hooks and the store see of the run: filters sorted, secrets hidden."""
        return {
            "session_id": self.session_id,
            "pipeline_name": ",".join(names),
            "pipeline_names": names,
            **{key: sorted(filters[key] or []) for key in _SORTED_FILTERS},
            "load_versions": dict(load_versions or {}),
            "namespace": filters["namespace"],
            "runner": type(runner).__name__,
            "env": self.env,
            "extra_params": self._redactor.values(self.extra_params),
        }

    def _run_between_hooks(
        self,
        runner: AbstractRunner[Any],
        selected: Pipeline,
        catalog: DataCatalog,
        run_params: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Run ``selected`` inside the pipeline hooks; timings are recorded even when it stops."""
        hooks = self.hook_manager.hook
        hooks.before_pipeline_run(run_params=run_params, pipeline=selected, catalog=catalog)
        start = time.perf_counter()
        try:
            outputs = runner.run(
                selected,
                catalog,
                self.hook_manager,
                self.session_id,
                worker_init=worker_initialiser(self.package_name, self.project_path),
                progress=progress,
            )
        except Exception as exc:
            # Viewers mark it without parsing the message.
            self.store["failed_node"] = getattr(exc, "node_name", None)
            hooks.on_pipeline_error(
                error=exc, run_params=run_params, pipeline=selected, catalog=catalog
            )
            raise
        finally:
            self.store["run_seconds"] = time.perf_counter() - start
            self.store["node_durations"] = dict(runner.node_durations)
            if runner.rerun_nodes:
                self.store["rerun_nodes"] = dict(runner.rerun_nodes)
        hooks.after_pipeline_run(
            run_params=run_params, run_result=outputs, pipeline=selected, catalog=catalog
        )
        return outputs

    def close(self) -> None:
        """Record the end of the session and save the store; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.store["ended_at"] = _now()
        if self._git is not None:
            self.store["git"] = self._git()
        if self.store.get("outcome") == "running":
            self.store["outcome"] = "success" if self._run_succeeded else "not run"
        try:
            if self.save_on_close:
                self.store.save()
        finally:
            self.store.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C, or a stop signal the CLI turned into Interrupted.
            self.store["outcome"] = "interrupted"
            self.store["signal"] = getattr(exc, "signal_name", "SIGINT")
        elif exc is not None:
            # Messages and tracebacks quote paths and values: hide URL passwords
            # and the values of secret-looking runtime parameters.
            secrets = self._redactor.secret_values(self.extra_params)
            trace = "".join(traceback.format_exception(type(exc), exc, tb))
            self.store["outcome"] = "failed"
            self.store["exception"] = {
                "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "message": self._redactor.text(str(exc), secrets),
                "node": getattr(exc, "node_name", None),
                "traceback": self._redactor.text(trace, secrets),
            }
        self.close()


def make_store(
    root: Path | None, session_id: str = "", *, save_on_close: bool = True
) -> BaseSessionStore:
    """The store for ``session_id``: by URL, else the class in settings, else SQLite.

    ``$KILNFLOW_STORE`` or ``settings.SESSION_STORE_URL`` names a database
    shared by every run (a deployment's choice beats the project's class); a
    session that is not saved keeps its record in memory.
    """
    store_class = settings.SESSION_STORE_CLASS
    if store_class is None and not save_on_close:
        return MemoryStore(None, session_id)
    configured = configured_store_url(settings.SESSION_STORE_URL)
    if configured is not None:
        url, source = configured
        return DatabaseStore(url, session_id, source=source, base=root)
    store_args = dict(settings.SESSION_STORE_ARGS)
    if store_class is None:
        store_class = SQLiteStore
    if not issubclass(store_class, BaseSessionStore):
        raise SessionError(
            f"settings.SESSION_STORE_CLASS {store_class.__qualname__} must subclass "
            "kilnflow.session.BaseSessionStore."
        )
    store_args.setdefault("path", default_store_dir(root))
    store: BaseSessionStore = store_class(session_id=session_id, **store_args)
    return store


def _pipeline_names(name: str | None, names: Iterable[str] | None) -> list[str]:
    several = list(names or ())
    if several and name:
        raise SessionError(
            "Session.run() takes pipeline_name or pipeline_names, not both; pass every "
            "name in pipeline_names."
        )
    return several or [name or "__default__"]


def _registered(names: list[str]) -> Pipeline:
    if len(names) == 1:
        return get_pipeline(names[0])
    from kilnflow.pipeline import Pipeline

    return Pipeline([get_pipeline(name) for name in names])


def _missing_outputs_only(pipeline: Pipeline, catalog: DataCatalog) -> Pipeline:
    """The nodes a run must repeat to make every missing persistent output.

    A node runs when one of its persistent outputs is missing, when a node
    upstream of it runs (its inputs are about to change), or when a running
    node reads what it keeps only in memory (that data is gone after a run).
    """
    import logging

    from kilnflow.pipeline import Pipeline

    nodes = pipeline.nodes
    dependencies = pipeline.node_dependencies
    missing = {
        each
        for each in nodes
        if any(not catalog.is_memory(name) and not catalog.exists(name) for name in each.outputs)
    }
    run: set[Node] = set()
    for each in nodes:  # run order: parents are decided before their children
        if each in missing or dependencies[each] & run:
            run.add(each)
    producers = {name: each for each in nodes for name in each.outputs}
    pending = list(run)
    while pending:
        for name in pending.pop().inputs:
            parent = producers.get(name)
            if parent is not None and parent not in run and catalog.is_memory(name):
                run.add(parent)
                pending.append(parent)
    skipped = [each.name for each in nodes if each not in run]
    if skipped:
        logging.getLogger("kilnflow").info(
            "Skipping %d node%s whose outputs exist: %s",
            len(skipped),
            "" if len(skipped) == 1 else "s",
            ", ".join(skipped),
        )
    return Pipeline([each for each in nodes if each in run])


def history_store(root: Path | None) -> BaseSessionStore:
    """The store ``kilnflow session`` reads: the configured project's, else the packaged runs'.

    Without a configured project only ``$KILNFLOW_STORE`` can name a store;
    otherwise it is the SQLite file that packaged runs write by default.
    """
    if root is not None:
        return make_store(root)
    configured = configured_store_url(None)
    if configured is not None:
        url, source = configured
        return DatabaseStore(url, "", source=source)
    return SQLiteStore(default_store_dir(None), "")


def _select(pipeline: Pipeline, **filters: Any) -> Pipeline:
    chosen = {key: value for key, value in filters.items() if value}
    if not chosen:
        return pipeline
    renamed = {"namespace": "node_namespace"}
    return pipeline.filter(**{renamed.get(key, key): value for key, value in chosen.items()})


def _versions(
    package: str, metadata: ProjectMetadata | None, manifest: Mapping[str, Any] | None
) -> dict[str, str | None]:
    """Kilnflow, Python and project versions.

    The project's version comes from its pyproject (project mode) or its
    build manifest (packaged mode): asking importlib.metadata costs a run
    more than all its scheduling, so that is only the last resort.
    """
    if metadata is not None:
        package_version = metadata.version
    elif manifest is not None:
        package_version = manifest.get("project_version")
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            package_version = version(package)
        except PackageNotFoundError:
            package_version = None
    return {"kilnflow": __version__, "python": sys.version.split()[0], package: package_version}


def _build_manifest(package: str) -> dict[str, Any] | None:
    """The build manifest a packaged wheel carries, so runs trace back to their build."""
    import json

    from kilnflow._resources import files

    manifest = files(package) / "kilnflow_build.json"
    if not manifest.is_file():
        return None
    loaded: dict[str, Any] = json.loads(manifest.read_text("utf-8"))
    return loaded
