"""No module of the project reaches for a name another module keeps to itself: nothing imports a name beginning
with `_` from another module or from a library (FastAPI's `_compat` among them), nor reads one off an imported
module (`fastapi.routing._x`, `getattr(fastapi.routing, "_x")`). What a module keeps private may change without
notice in its next release; what the project needs from it goes through its public API, or becomes public.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.http import takes_many

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "services", "scripts", "migrations", "bench", "tests")

# Modules still being reshaped elsewhere, each with the private names it reaches for today. The list should
# become empty: when a module here no longer reaches for them, its entry goes.
ALLOWED: dict[str, set[str]] = {}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # not inside a package, or a module made at run time
        return False


def private_names(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Each private name the module takes from elsewhere, as `module.name`, with its line."""
    modules: dict[str, str] = {}  # the names `import` binds, to the module each stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(private(part) for part in alias.name.split(".")):
                    yield node.lineno, alias.name
                bound = alias.asname or alias.name.split(".")[0]
                modules[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(private(part) for part in node.module.split(".")):
                yield node.lineno, node.module
            for alias in node.names:
                if private(alias.name):
                    yield node.lineno, f"{node.module}.{alias.name}"
                elif is_module(f"{node.module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        owner: ast.expr | None = None
        if not isinstance(node, (ast.Attribute, ast.Call)):
            continue
        if isinstance(node, ast.Attribute) and private(node.attr):
            owner, name = node.value, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and private(node.args[1].value)
        ):
            owner, name = node.args[0], node.args[1].value
        if owner is None:
            continue
        dotted = ast.unparse(owner)
        if dotted.split(".")[0] in modules:
            head, _, rest = dotted.partition(".")
            yield node.lineno, ".".join(p for p in (modules[head], rest, name) if p)


def project_modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_takes_a_private_name_from_another() -> None:
    found: dict[str, set[str]] = {}
    for path in project_modules():
        names = {name for _, name in private_names(ast.parse(path.read_text(), str(path)))}
        if names:
            found[path.relative_to(ROOT).as_posix()] = names
    unexpected = {p: n - ALLOWED.get(p, set()) for p, n in found.items() if n - ALLOWED.get(p, set())}
    assert not unexpected, f"private names taken from other modules: {unexpected}"
    # An allowance no longer needed goes, so the list only shrinks.
    stale = {p: n - found.get(p, set()) for p, n in ALLOWED.items() if n - found.get(p, set())}
    assert not stale, f"allowed but no longer used (remove from ALLOWED): {stale}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from fastapi._compat.shared import field_annotation_is_sequence", "fastapi._compat.shared"),
        ("from shared.errors import _is_database_unavailable", "shared.errors._is_database_unavailable"),
        ("import fastapi._compat", "fastapi._compat"),
        (
            "import fastapi.routing\nfastapi.routing._effective_route_context_var",
            "fastapi.routing._effective_route_context_var",
        ),
        (
            "import fastapi.routing as r\ngetattr(r, '_effective_route_context_var')",
            "fastapi.routing._effective_route_context_var",
        ),
        ("import fastapi\ngetattr(fastapi.routing, '_x', None)", "fastapi.routing._x"),
        ("from shared import auth as a\na._principals.clear()", "shared.auth._principals"),
    ],
)
def test_the_scan_sees_each_way_of_reaching_a_private_name(source: str, expected: str) -> None:
    assert expected in {name for _, name in private_names(ast.parse(source))}


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "self._cache = {}\nobj._field",
        "import os\nos.__name__",
        "def f(x):\n    return getattr(x, '_state', None)",
    ],
)
def test_the_scan_leaves_a_modules_own_private_names_alone(source: str) -> None:
    assert list(private_names(ast.parse(source))) == []


@pytest.mark.parametrize(
    ("annotation", "many"),
    [
        (str, False),
        (int | None, False),
        (bytes, False),
        (dict[str, str], False),
        (list[str], True),
        (list[str] | None, True),
        (tuple[float, ...], True),
        (set[str], True),
        (frozenset[int], True),
    ],
)
def test_a_query_parameter_takes_many_values_only_when_its_type_is_a_collection(
    annotation: Any, many: bool
) -> None:
    # What decides whether a repeated query parameter is a 400 (see shared/http.py).
    assert takes_many(annotation) is many
