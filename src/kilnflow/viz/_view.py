"""What the viewer shows: a pipeline's graph, its catalog and one recorded run.

:class:`ViewSource` is the project being viewed, from its folder (project
mode) or as an installed package. It builds the view model, the plain data
the page draws, and notices when the project's code or configuration
changes so a served page can reload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kilnflow.errors import KilnflowError, SessionError
from kilnflow.viz._graph import pipeline_graph

__all__ = ["ViewSource"]

#: How many recorded sessions the viewer searches for a pipeline's latest run.
SESSIONS_SEARCHED = 500


class ViewSource:
    """The project a viewer shows: a project folder or an installed package."""

    def __init__(
        self, project_path: Path | None = None, package: str | None = None, env: str | None = None
    ) -> None:
        if (project_path is None) == (package is None):
            raise ValueError("ViewSource needs exactly one of project_path and package.")
        #: The project folder (project mode), or None for an installed package.
        self.project_path = project_path
        self._package = package
        #: Configuration environment the catalog is read with.
        self.env = env
        self._loaded_fingerprint: str | None = None

    @property
    def name(self) -> str:
        """The package, or the project folder's name, without loading any code."""
        return self._package or (self.project_path.name if self.project_path else "Kilnflow")

    @property
    def package(self) -> str:
        """The project's import package."""
        from kilnflow.project import package_name

        self.load()
        return package_name()

    def load(self) -> None:
        """Configure the project, again with fresh code when its files changed."""
        from kilnflow.project import (
            bootstrap_project,
            configure_project,
            forget_project_code,
            read_metadata,
        )

        fingerprint = self.fingerprint()
        if fingerprint == self._loaded_fingerprint:
            return
        package = self._package or read_metadata(self.project_path or Path()).package_name
        forget_project_code(package)
        if self.project_path is not None:
            bootstrap_project(self.project_path)
        else:
            configure_project(package)
        self._loaded_fingerprint = fingerprint

    def watched_files(self) -> Iterator[Path]:
        """The project's code and configuration: editing any of them changes the view."""
        if self.project_path is None:
            return
        from kilnflow.project import read_metadata

        metadata = read_metadata(self.project_path)
        yield metadata.project_path / "pyproject.toml"
        for folder in (metadata.source_dir, metadata.project_path / "conf"):
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    yield path

    def fingerprint(self) -> str:
        """Changes whenever a watched file is added, removed or modified."""
        digest = hashlib.sha256()
        for path in self.watched_files():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
        return digest.hexdigest()[:16]

    def store(self) -> Any:
        """The session store runs of this project are recorded in."""
        from kilnflow.session import make_store

        self.load()
        return make_store(self.project_path.resolve() if self.project_path else None)

    def sessions(self, limit: int = SESSIONS_SEARCHED) -> list[dict[str, Any]]:
        """Recorded runs of this project's package, newest first."""
        package = self.package
        with self.store() as store:
            records = store.sessions(limit)
        return [
            record
            for record in records
            if record.get("package_name") == package and record.get("run")
        ]

    def pipeline_names(self) -> list[str]:
        """Registered pipelines, ``__default__`` first."""
        from kilnflow.project import pipelines

        self.load()
        return sorted(pipelines, key=lambda name: (name != "__default__", name))

    def view(
        self,
        pipeline_name: str | None = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """The view model: a pipeline's graph, its datasets' details and a run.

        ``session_id`` picks the run (a unique prefix will do) and, unless
        ``pipeline_name`` is given, the pipeline it ran; without it the
        latest recorded run of the pipeline is shown, if there is one.
        """
        from kilnflow.project import get_pipeline

        self.load()
        record = self._record(pipeline_name, session_id)
        if pipeline_name is None:
            pipeline_name = record["run"]["pipeline_name"] if record else "__default__"
        model = pipeline_graph(get_pipeline(pipeline_name), pipeline_name)
        model["project"] = {
            "package": self.package,
            "mode": "project" if self.project_path else "packaged",
            "path": str(self.project_path) if self.project_path else None,
            "env": self.env,
        }
        model["catalog_error"] = _describe_datasets(model["datasets"], self.env)
        model["run"] = _run(record, model["nodes"]) if record else None
        return model

    def _record(self, pipeline_name: str | None, session_id: str | None) -> dict[str, Any] | None:
        if session_id is None:
            wanted = pipeline_name or "__default__"
            return next(
                (r for r in self.sessions() if r["run"].get("pipeline_name") == wanted), None
            )
        with self.store() as store:
            record: dict[str, Any] = store.find(session_id)
        run = record.get("run") or {}
        if record.get("package_name") != self.package:
            raise SessionError(
                f"Session {record['session_id']} is a run of {record.get('package_name')}, "
                f"not of {self.package}; 'kilnflow session list' shows this project's runs."
            )
        if not run:
            raise SessionError(
                f"Session {record['session_id']} ran no pipeline, so there is no run to show; "
                "pick another with --session."
            )
        if pipeline_name is not None and run.get("pipeline_name") != pipeline_name:
            raise SessionError(
                f"Session {record['session_id']} ran pipeline {run.get('pipeline_name')!r}, "
                f"not {pipeline_name!r}; drop --pipeline to see the pipeline it ran."
            )
        return record


def _describe_datasets(datasets: list[dict[str, Any]], env: str | None) -> str | None:
    """Add each dataset's type, details and ``metadata:``; return why the catalog failed.

    A catalog that cannot be read still leaves a picture worth seeing, so its
    error is shown on the page, not raised; a dataset that cannot be built
    (missing credentials, say) shows its error in its own details.
    """
    from kilnflow.session import Session, redact_values

    try:
        with Session.create(env=env, save_on_close=False) as session:
            context = session.load_context()
            catalog = context.catalog
            params = context.params
    except KilnflowError as exc:
        return str(exc)
    for dataset in datasets:
        name = dataset["name"]
        if dataset["kind"] == "parameters":
            dataset["type"] = "parameters"
            # Redacted under its own name: a parameter called api_token shows as ***.
            key = name.rsplit(".", 1)[-1].removeprefix("params:")
            dataset["details"] = {"value": redact_values({key: _parameter(params, name)})[key]}
            continue
        declared = catalog.type_of(name)
        dataset["type"] = declared or "MemoryDataset"
        if declared is None:
            dataset["details"] = {"declared": False}
            continue
        metadata = catalog.metadata(name)
        if metadata:
            dataset["metadata"] = redact_values(metadata)
        try:
            built = catalog.get(name)
            dataset["details"] = redact_values(built.describe()) if built else {}
        except KilnflowError as exc:
            dataset["details"] = {"error": str(exc)}
    return None


def _parameter(params: dict[str, Any], name: str) -> Any:
    if name == "parameters":
        return params
    value: Any = params
    for part in name.removeprefix("params:").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _run(record: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """A recorded run, and each node's outcome and duration in it."""
    run = record["run"]
    durations: dict[str, float] = record.get("node_durations") or {}
    failed = record.get("failed_node")
    outcome = record.get("outcome")
    selected = set(run.get("node_names") or [])
    for node in nodes:
        name = node["name"]
        if name in durations:
            node["status"], node["duration"] = "success", durations[name]
        elif name == failed:
            node["status"] = "failed"
        elif outcome == "running" and (not selected or name in selected):
            node["status"] = "pending"
        else:
            node["status"] = "not run"
    exception = record.get("exception") or {}
    return {
        "session_id": record["session_id"],
        "outcome": outcome,
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "seconds": record.get("run_seconds"),
        "env": record.get("env"),
        "runner": run.get("runner"),
        "failed_node": failed,
        "error": exception.get("message"),
    }
