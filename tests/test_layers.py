"""The layers of ../shared/DESIGN.md, kept by a test: imports run downward only.

Every module of ``src/kilnflow`` is parsed with :mod:`ast`; every import
counts, at module level, inside functions and under ``TYPE_CHECKING``, since
each is a dependency someone must keep working. The walk fails on an upward
import, on an import between siblings of one layer (``io`` and ``config``)
and on an import cycle between modules (found by :mod:`graphlib`).
"""

from __future__ import annotations

import ast
import fnmatch
import graphlib
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

import kilnflow

#: Top to bottom. A layer may import itself and any layer below it. Names in one
#: inner tuple are independent siblings: they share a layer but must not import
#: each other. Each name is a subpackage or module directly under ``kilnflow``
#: ("" is the package's own ``__init__``, the public facade), or a pattern: the
#: small private modules directly under ``kilnflow`` (``_version``, ``_resources``,
#: ``_entry_points``, ``_pairs``, ``_redact``, ``_templates``...) are leaves at the
#: bottom, so a new one is placed there the day it is written.
LAYERS: tuple[tuple[str | tuple[str, ...], ...], ...] = (
    ("cli", "ipython", "__main__", ""),
    ("viz",),
    ("packaging", "deploy"),
    ("session",),
    ("project",),
    ("runner",),
    (("io",), ("config",)),
    ("hooks",),
    ("pipeline",),
    ("errors",),
    ("_*",),
)


class Import(NamedTuple):
    importer: str
    imported: str
    line: int


class Place(NamedTuple):
    layer: int
    sibling: int


def places(layers: tuple[tuple[str | tuple[str, ...], ...], ...]) -> dict[str, Place]:
    """Where each top-level name sits: its layer, and which sibling group within it."""
    found: dict[str, Place] = {}
    for depth, layer in enumerate(layers):
        for sibling, group in enumerate(layer):
            for name in (group,) if isinstance(group, str) else group:
                found[name] = Place(depth, sibling if isinstance(group, tuple) else -1)
    return found


def place_of(module: str, where: Mapping[str, Place]) -> Place | None:
    """The place of the first name or pattern in ``where`` that ``module``'s top name matches."""
    top = _top(module)
    return next((at for name, at in where.items() if fnmatch.fnmatchcase(top, name)), None)


def module_names(root: Path) -> dict[str, Path]:
    """Every module under the package folder ``root``, by dotted name."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Import]:
    """Every import of a module of the package in ``path``, wherever it is written."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = next(iter(modules)).split(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub when there is one.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == top or target.startswith(f"{top}."):
                yield Import(name, _known(target, modules), node.lineno)


def _known(target: str, modules: Mapping[str, Path]) -> str:
    """The module that ``import target`` names (``a.b.c`` for a function c becomes ``a.b``)."""
    while target not in modules and "." in target:
        target = target.rpartition(".")[0]
    return target


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def check(root: Path, layers: tuple[tuple[str | tuple[str, ...], ...], ...]) -> list[str]:
    """Everything wrong with the imports of the package at ``root``, one sentence each."""
    modules = module_names(root)
    where = places(layers)
    problems: list[str] = []
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if place_of(name, where) is None:
            problems.append(f"{name} belongs to no layer: add {_top(name)!r} to LAYERS.")
            continue
        for found in imports_of(name, path, modules):
            if found.imported != name:
                graph[name].add(found.imported)
            problem = _layer_problem(found, where, path.relative_to(root.parent).as_posix())
            if problem:
                problems.append(problem)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        problems.append(f"Import cycle: {' -> '.join(reversed(exc.args[1]))}.")
    return problems


def _layer_problem(found: Import, where: Mapping[str, Place], path: str) -> str | None:
    source, target = place_of(found.importer, where), place_of(found.imported, where)
    assert source is not None
    at = f"{path}:{found.line}: {found.importer} imports {found.imported}"
    if target is None:
        return f"{at}, which belongs to no layer."
    if target.layer < source.layer:
        return f"{at}, a higher layer."
    if target.layer == source.layer and -1 < source.sibling != target.sibling:
        return f"{at}, a sibling layer it must stay independent of."
    return None


def test_kilnflow_imports_run_downward_only() -> None:
    root = Path(kilnflow.__file__).parent
    assert check(root, LAYERS) == []


def test_jinja2_is_imported_only_by_the_template_renderer() -> None:
    root = Path(kilnflow.__file__).parent
    importers = set()
    for name, path in module_names(root).items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                found = [node.module or ""]
            else:
                continue
            if any(module.split(".")[0] == "jinja2" for module in found):
                importers.add(name)
    assert importers == {"kilnflow._templates"}


def test_every_layer_named_exists_or_is_expected() -> None:
    root = Path(kilnflow.__file__).parent
    present = {_top(name) for name in module_names(root)}
    named = {name for name in places(LAYERS) if "*" not in name}
    assert named <= present


# The checker itself, on a package written for each case -------------------------

TOY_LAYERS: tuple[tuple[str | tuple[str, ...], ...], ...] = (
    ("top",),
    (("left",), ("right",)),
    ("base",),
    ("_*",),
)


def write_package(root: Path, files: Mapping[str, str]) -> Path:
    package = root / "toy"
    for relative, text in {"__init__.py": "", **files}.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), "utf-8")
    return package


def test_checker_accepts_downward_imports(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "top/__init__.py": "from toy.left import thing\n",
            "left/__init__.py": "import toy.base\n",
            "right/__init__.py": "from ..base import helper\n",
            "base/__init__.py": "",
        },
    )
    assert check(package, (("",), *TOY_LAYERS)) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("from toy.top import thing\n", "toy.base imports toy.top, a higher layer."),
        (
            "def later():\n    from toy.top import thing\n",
            "toy.base imports toy.top, a higher layer.",
        ),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import toy.top.deep\n",
            "toy.base imports toy.top.deep, a higher layer.",
        ),
        ("from ..left import thing\n", "toy.base imports toy.left, a higher layer."),
    ],
    ids=["module level", "inside a function", "type checking", "relative"],
)
def test_checker_fails_on_an_upward_import(tmp_path: Path, source: str, message: str) -> None:
    package = write_package(
        tmp_path,
        {"top/__init__.py": "", "top/deep.py": "", "left/__init__.py": "", "base/mod.py": source},
    )
    problems = check(package, (("",), *TOY_LAYERS))
    assert len(problems) == 1
    assert problems[0].startswith("toy/base/mod.py:")
    assert problems[0].endswith(message.replace("toy.base", "toy.base.mod"))


def test_checker_fails_on_siblings_importing_each_other(tmp_path: Path) -> None:
    package = write_package(
        tmp_path, {"left/__init__.py": "import toy.right\n", "right/__init__.py": ""}
    )
    assert check(package, (("",), *TOY_LAYERS)) == [
        "toy/left/__init__.py:1: toy.left imports toy.right, a sibling layer it must stay "
        "independent of."
    ]


def test_checker_fails_on_a_cycle_within_a_layer(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "base/one.py": "from toy.base.two import f\n",
            "base/two.py": "def f():\n    from toy.base import one\n",
        },
    )
    (problem,) = check(package, (("",), *TOY_LAYERS))
    assert problem.startswith("Import cycle: ")
    assert {"toy.base.one", "toy.base.two"} <= set(problem[14:-1].split(" -> "))


def test_checker_places_new_private_modules_at_the_bottom(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "base/__init__.py": "from toy._low import x\n",
            "_low.py": "",
            "_new.py": "import toy.base\n",
        },
    )
    assert check(package, (("",), *TOY_LAYERS)) == [
        "toy/_new.py:1: toy._new imports toy.base, a higher layer."
    ]


def test_checker_fails_on_a_module_in_no_layer(tmp_path: Path) -> None:
    package = write_package(tmp_path, {"stray.py": "import toy.base\n", "base/__init__.py": ""})
    assert check(package, (("",), *TOY_LAYERS)) == [
        "toy.stray belongs to no layer: add 'stray' to LAYERS."
    ]
