"""A project's ``[tool.kilnflow]`` table, read and checked in project mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kilnflow._parsed import parse_with_cache
from kilnflow.errors import ProjectError, did_you_mean

__all__ = ["ProjectMetadata", "find_project_root", "read_metadata"]

_REQUIRED = ("package_name", "project_name", "kilnflow_version")
_OPTIONAL = ("source_dir",)


@dataclass(frozen=True)
class ProjectMetadata:
    """What Kilnflow knows about a project developed from source."""

    #: Import name of the project's package.
    package_name: str
    #: Human-readable name of the project.
    project_name: str
    #: The Kilnflow version the project was written for.
    kilnflow_version: str
    #: Folder holding the package, on ``sys.path`` once bootstrapped.
    source_dir: Path
    #: Root folder of the project.
    project_path: Path
    #: The ``pyproject.toml`` the metadata was read from.
    config_file: Path
    #: ``[project] version``, when the pyproject states it (not dynamic).
    version: str | None = None


def find_project_root(start: Path) -> Path | None:
    """Return the nearest folder at or above ``start`` with a Kilnflow pyproject."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "[tool.kilnflow]" in candidate.read_text("utf-8"):
            return folder
    return None


def read_metadata(project_path: str | Path, *, keep_parsed: bool = False) -> ProjectMetadata:
    """Parse and validate ``<project_path>/pyproject.toml``.

    ``keep_parsed`` keeps the parsed file in the project's ``.kilnflow/cache``
    when the project has that folder (its default session store made it) and
    reads it back while the file is unchanged, which saves each run importing
    a TOML parser. Builds, and projects whose sessions are stored elsewhere,
    get no folder of Kilnflow's in their tree.
    """
    root = Path(project_path).expanduser().resolve()
    config_file = root / "pyproject.toml"
    if not config_file.is_file():
        raise ProjectError(
            f"{config_file} does not exist, so {root} is not a Kilnflow project: run "
            "Kilnflow from a project folder, or create one with 'kilnflow new NAME'."
        )
    state = root / ".kilnflow"
    document = _read_toml(config_file, state / "cache" if keep_parsed and state.is_dir() else None)
    table = _kilnflow_table(config_file, document)
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise ProjectError(
            f"{config_file}: [tool.kilnflow] lacks {', '.join(repr(k) for k in missing)}; "
            f"add them (the table needs {', '.join(_REQUIRED)})."
        )
    for key, value in table.items():
        if key not in _REQUIRED + _OPTIONAL:
            raise ProjectError(
                f"{config_file}: unknown key {key!r} in [tool.kilnflow]."
                f"{did_you_mean(key, _REQUIRED + _OPTIONAL)} Allowed keys: "
                f"{', '.join(_REQUIRED + _OPTIONAL)}."
            )
        if not isinstance(value, str) or not value:
            raise ProjectError(
                f"{config_file}: [tool.kilnflow] {key} must be a non-empty string, got {value!r}."
            )
    _check_version(config_file, table["kilnflow_version"])
    source_dir = (root / table.get("source_dir", "src")).resolve()
    if source_dir != root and root not in source_dir.parents:
        raise ProjectError(
            f"{config_file}: [tool.kilnflow] source_dir {table['source_dir']!r} points outside "
            f"the project ({source_dir}); use a folder inside {root}, such as 'src'."
        )
    return ProjectMetadata(
        package_name=table["package_name"],
        project_name=table["project_name"],
        kilnflow_version=table["kilnflow_version"],
        source_dir=source_dir,
        project_path=root,
        config_file=config_file,
        version=_project_version(document),
    )


def _read_toml(config_file: Path, cache: Path | None) -> dict[str, Any]:
    def parse(data: bytes) -> dict[str, Any]:
        import tomllib

        try:
            parsed: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ProjectError(f"{config_file} is not valid TOML ({exc}); fix the syntax.") from exc
        return parsed

    document: dict[str, Any] = parse_with_cache(
        config_file.read_bytes(), str(config_file), cache, parse
    )
    return document


def _project_version(document: dict[str, Any]) -> str | None:
    version = document.get("project", {}).get("version")
    return version if isinstance(version, str) else None


def _kilnflow_table(config_file: Path, document: dict[str, Any]) -> dict[str, Any]:
    table = document.get("tool", {}).get("kilnflow")
    if not isinstance(table, dict):
        raise ProjectError(
            f"{config_file} has no [tool.kilnflow] table; add one with package_name, "
            "project_name and kilnflow_version (see 'kilnflow new')."
        )
    return table


def _check_version(config_file: Path, wanted: str) -> None:
    from kilnflow._version import __version__

    wanted_major = wanted.partition(".")[0]
    if wanted_major != __version__.partition(".")[0]:
        raise ProjectError(
            f"{config_file}: the project was written for Kilnflow {wanted}, but Kilnflow "
            f"{__version__} is installed; install a matching release "
            f"(pip install 'kilnflow=={wanted_major}.*') or update kilnflow_version."
        )
