"""``kilnflow new``: render the project starter into a new folder."""

from __future__ import annotations

import keyword
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kilnflow._resources import templates
from kilnflow.errors import ProjectError
from kilnflow.project._metadata import ProjectMetadata

if TYPE_CHECKING:
    from kilnflow._resources import Traversable

__all__ = ["create_pipeline_files", "create_project", "pipeline_files"]

_VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# Files that only the example pipeline needs, left out with --no-example.
_EXAMPLE_ONLY = ("data/raw/readings.json", "pipelines/readings/")


def create_project(name: str, directory: str | Path | None = None, *, example: bool = True) -> Path:
    """Create a project called ``name`` in ``directory`` (default ``./name``).

    The folder appears whole or not at all: files are rendered into a
    temporary sibling folder that is renamed into place at the end.
    """
    from kilnflow._build_tools import missing_build_tools

    problem = missing_build_tools("kilnflow new", "jinja2")
    if problem:
        raise ProjectError(problem)
    package_name = _package_name(name)
    target = Path(directory if directory is not None else name).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(
            f"{target} already exists and is not empty; choose another NAME or --directory."
        )
    from kilnflow._version import __version__

    context = {
        "project_name": name,
        "package_name": package_name,
        "distribution_name": name,
        "script_name": package_name.replace("_", "-"),
        "kilnflow_version": __version__,
        "example": example,
    }
    from kilnflow._atomic import atomic_directory

    with atomic_directory(target) as staging:
        _render_tree(templates() / "project", Path(staging), context)
    return target


def _package_name(name: str) -> str:
    package = name.replace("-", "_")
    if not _VALID_NAME.match(name) or not package.isidentifier():
        raise ProjectError(
            f"{name!r} cannot name a project: use letters, digits, '_' and '-', starting with "
            "a letter (for example 'sales-forecast'); dashes become underscores in the package."
        )
    if keyword.iskeyword(package):
        raise ProjectError(
            f"{name!r} is a Python keyword, so it cannot name a package; choose a more "
            f"specific name, such as '{package}-pipelines'."
        )
    taken = set(sys.stdlib_module_names) | {"kilnflow", "test", "tests"}
    if package in taken:
        raise ProjectError(
            f"{name!r} would make a package {package!r} that shadows an existing module; "
            f"choose a more specific name, such as '{package}-pipelines'."
        )
    return package


def _walk(
    folder: Traversable, prefix: PurePosixPath
) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        path = prefix / entry.name
        if entry.is_dir():
            yield from _walk(entry, path)
        elif entry.name != "__pycache__" and not entry.name.endswith(".pyc"):
            yield path, entry


def _render_tree(source: Traversable, destination: Path, context: dict[str, object]) -> None:
    from kilnflow._templates import render_text

    for relative, entry in _walk(source, PurePosixPath()):
        rendered_path = render_text(str(relative), context)
        if not context["example"] and any(part in rendered_path for part in _EXAMPLE_ONLY):
            continue
        output = destination / rendered_path
        output.parent.mkdir(parents=True, exist_ok=True)
        if rendered_path.endswith(".jinja"):
            text = render_text(entry.read_text("utf-8"), context)
            output.with_suffix("").write_text(text, "utf-8")
        else:
            output.write_bytes(entry.read_bytes())


def pipeline_files(
    metadata: ProjectMetadata, name: str, conf_dir: str = "conf", base_env: str = "base"
) -> list[Path]:
    """The files and folders ``create_pipeline_files`` makes for ``name``, in that order.

    Only paths made from the template's own layout are listed, so deleting
    them can never reach files the project made itself elsewhere.
    """
    from kilnflow._build_tools import missing_build_tools

    problem = missing_build_tools("kilnflow pipeline create and delete", "jinja2")
    if problem:
        raise ProjectError(problem)
    _check_pipeline_name(name)
    context = _pipeline_context(metadata, name, conf_dir, base_env)
    tops: dict[Path, None] = {}
    for rendered in _rendered_paths(templates() / "pipeline", context):
        parts = PurePosixPath(rendered).parts
        # The pipeline's own package folder (.../pipelines/<name>/) is one unit;
        # other files stand alone.
        cut = next(
            (
                index + 1
                for index in range(1, len(parts) - 1)
                if parts[index - 1 : index + 1] == ("pipelines", name)
            ),
            len(parts),
        )
        tops[metadata.project_path.joinpath(*parts[:cut])] = None
    return list(tops)


def create_pipeline_files(
    metadata: ProjectMetadata, name: str, conf_dir: str = "conf", base_env: str = "base"
) -> list[Path]:
    """Add pipeline ``name`` to the project: its package, parameters file and test.

    Returns what was created. All of it appears or none: the files are
    rendered into a staging folder and moved into place only once every
    target is known to be free.
    """
    targets = pipeline_files(metadata, name, conf_dir, base_env)
    taken = [path for path in targets if path.exists()]
    if taken:
        raise ProjectError(
            f"Pipeline {name!r} cannot be created: {taken[0]} already exists; choose another "
            f"name, or remove it first with 'kilnflow pipeline delete {name}'."
        )
    context = _pipeline_context(metadata, name, conf_dir, base_env)
    staging = Path(tempfile.mkdtemp(prefix=".kilnflow-pipeline-", dir=metadata.project_path))
    moved: list[Path] = []
    try:
        _render_tree(templates() / "pipeline", staging, context)
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            (staging / target.relative_to(metadata.project_path)).rename(target)
            moved.append(target)
    except BaseException:
        for target in moved:
            _remove(target)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return targets


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _check_pipeline_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ProjectError(
            f"{name!r} cannot name a pipeline: use a Python identifier of letters, digits "
            "and '_', starting with a letter (for example 'data_processing')."
        )


def _pipeline_context(
    metadata: ProjectMetadata, name: str, conf_dir: str, base_env: str
) -> dict[str, object]:
    return {
        "pipeline_name": name,
        "package_name": metadata.package_name,
        "source_dir": metadata.source_dir.relative_to(metadata.project_path).as_posix(),
        "conf_dir": PurePosixPath(Path(conf_dir).as_posix()).as_posix(),
        "base_env": base_env,
        "example": True,
    }


def _rendered_paths(source: Traversable, context: dict[str, object]) -> Iterator[str]:
    from kilnflow._templates import render_text

    for relative, _ in _walk(source, PurePosixPath()):
        rendered = render_text(str(relative), context)
        yield rendered[: -len(".jinja")] if rendered.endswith(".jinja") else rendered
