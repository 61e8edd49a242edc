"""The ``kilnflow`` hatchling build hook: a project's wheel that runs by itself.

Registered through the ``hatch`` entry-point group, so every standard
frontend (``python -m build``, ``pip wheel .``, ``pip install .``,
``hatch build``) produces the same wheel as ``kilnflow package``. For a
wheel it adds the generated ``<package>/__main__.py``, the project's
configuration as ``<package>/conf/`` (never ``conf/local`` or credentials)
and a build manifest, ``<package>/kilnflow_build.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.plugin import hookimpl

from kilnflow.errors import PackagingError, ProjectError

__all__ = ["KilnflowBuildHook", "hatch_register_build_hook", "never_shipped"]

#: Name of the manifest written inside the package.
MANIFEST = "kilnflow_build.json"
# Envs that hold machine-local settings and secrets: never shipped.
_LOCAL_ENVS = ("local",)


class KilnflowBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds what packaged mode needs to a Kilnflow project's wheel."""

    PLUGIN_NAME = "kilnflow"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return
        root = Path(self.root)
        conf_source = str(self.config.get("conf-source", "conf"))
        self._refuse_secrets(root, conf_source)
        if self.target_name != "wheel":
            packaged_conf_files(root / conf_source)
            return
        from kilnflow.project import read_metadata

        try:
            metadata = read_metadata(root)
        except ProjectError as exc:
            raise PackagingError(f"Cannot build a Kilnflow wheel: {exc}") from exc
        package = metadata.package_name
        package_dir = metadata.source_dir / package
        for required in ("settings.py", "pipeline_registry.py"):
            if not (package_dir / required).is_file():
                raise PackagingError(
                    f"Cannot build a Kilnflow wheel: {package_dir / required} is missing; "
                    "every packaged project needs settings.py and pipeline_registry.py."
                )
        self._staging = Path(tempfile.mkdtemp(prefix="kilnflow-build-"))
        include: dict[str, str] = build_data["force_include"]
        if (package_dir / "__main__.py").is_file():
            self.app.display_info(f"kilnflow: keeping the project's own {package}/__main__.py")
        else:
            include[str(self._render_main(metadata.package_name))] = f"{package}/__main__.py"
        conf_files = packaged_conf_files(root / conf_source)
        for relative, source in conf_files.items():
            include[str(source)] = f"{package}/conf/{relative}"
        manifest = self._staging / MANIFEST
        manifest.write_text(
            json.dumps(
                build_manifest(root, self.metadata.version, conf_files), indent=2, sort_keys=True
            )
            + "\n",
            "utf-8",
        )
        include[str(manifest)] = f"{package}/{MANIFEST}"

    def _refuse_secrets(self, root: Path, conf_source: str) -> None:
        """Fail the build when this artifact would carry a file that holds secrets.

        Every artifact, the sdist too: ``python -m build`` builds the wheel from
        the sdist, and an sdist is as public as a wheel. Hatchling decides
        what ships; this asks it about every file that must not.
        """
        config = self.build_config
        shipped: list[str] = []
        for folder, dirs, files in os.walk(root):
            relative = Path(folder).relative_to(root).as_posix()
            relative = "" if relative == "." else relative
            dirs[:] = sorted(d for d in dirs if not config.directory_is_excluded(d, relative))
            for name in sorted(files):
                path = f"{relative}/{name}" if relative else name
                if never_shipped(path, conf_source) and config.include_path(
                    path, is_package="__init__.py" in files
                ):
                    shipped.append(path)
        if shipped:
            listed = ", ".join(shipped[:3]) + (" ..." if len(shipped) > 3 else "")
            raise PackagingError(
                f"Cannot build the {self.target_name}: it would ship {listed}, which hold "
                "secrets; exclude them under [tool.hatch.build] exclude as the kilnflow "
                "project template does, or move them out of the project."
            )

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        staging = getattr(self, "_staging", None)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    def _render_main(self, package: str) -> Path:
        from kilnflow._templates import render_template
        from kilnflow._version import __version__

        rendered = render_template(
            "package/__main__.py.jinja",
            {
                "package_name": package,
                "script_name": package.replace("_", "-"),
                "kilnflow_version": __version__,
            },
        )
        target = self._staging / "__main__.py"
        target.write_text(rendered, "utf-8")
        return target


def packaged_conf_files(conf_root: Path) -> dict[str, Path]:
    """Configuration files to ship, by path relative to ``conf_root``, sorted.

    The files project mode reads (the config loader's own listing: hidden
    names skipped, links that leave the folder refused), less the ``local``
    env and every ``credentials*`` file in any env: secrets must never reach
    a wheel.
    """
    from kilnflow.config import conf_files
    from kilnflow.errors import ConfigError

    if not conf_root.is_dir():
        raise PackagingError(
            f"Cannot build a Kilnflow wheel: configuration folder {conf_root} does not exist; "
            "create it or set conf-source in [tool.hatch.build.hooks.kilnflow]."
        )
    try:
        found = conf_files(conf_root)
    except ConfigError as exc:
        raise PackagingError(f"Cannot build a Kilnflow wheel: {exc}") from exc
    return {
        relative: path
        for relative, path in sorted(found.items())
        if not _never_shipped(relative.split("/"))
    }


def _secret_conf_file(parts: list[str]) -> bool:
    """A conf file of the ``local`` env, or a ``credentials*`` file or folder."""
    return parts[0] in _LOCAL_ENVS or any(part.startswith("credentials") for part in parts)


def _never_shipped(parts: list[str]) -> bool:
    return _secret_conf_file(parts) or "__pycache__" in parts


def never_shipped(path: str, conf_source: str = "conf") -> bool:
    """Whether the project file ``path`` (relative, ``/``-separated) holds secrets.

    The ``local`` env and ``credentials*`` of the conf folder, credentials
    files anywhere, and ``.env`` files: no artifact may carry them.
    """
    parts = path.split("/")
    name = parts[-1]
    if name == ".env" or name.startswith(".env."):
        return True
    if name.startswith("credentials") and name.endswith((".yml", ".yaml", ".json")):
        return True
    prefix = conf_source.strip("/").split("/")
    inside = parts[len(prefix) :]
    # Hidden files (``conf/local/.gitkeep``) are never configuration.
    visible = bool(inside) and not name.startswith(".")
    return parts[: len(prefix)] == prefix and visible and _secret_conf_file(inside)


def build_manifest(root: Path, version: str, conf_files: dict[str, Path]) -> dict[str, Any]:
    """What a packaged run records about the wheel it came from."""
    import hashlib

    from kilnflow._version import __version__
    from kilnflow.session import git_info

    digest = hashlib.sha256()
    for relative, path in sorted(conf_files.items()):
        digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    git = git_info(root)
    return {
        "kilnflow_version": __version__,
        "project_version": version,
        "git_commit": git["commit"] if git else None,
        "git_dirty": git["dirty"] if git else None,
        "conf_sha256": digest.hexdigest(),
        "conf_files": sorted(conf_files),
    }


@hookimpl
def hatch_register_build_hook() -> type[BuildHookInterface]:  # type: ignore[type-arg]
    """Tell hatchling about the ``kilnflow`` build hook."""
    return KilnflowBuildHook
