"""Write docs/settings.md: every setting the services read from the environment, one table row each.

The rows come from the code itself. The settings classes (SETTINGS_CLASSES, the one list of them) give each
variable's type, default, bounds and description; the modules not yet in that style are read for their direct
environment reads (`os.environ.get("NAME", default)`, `env.get("NAME")`), with the reading function's docstring.
tests/test_settings_doc.py fails when the committed file and the code disagree; `make settings-doc` rewrites it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.community_api.config import CommunitySettings  # noqa: E402
from services.live_relay.config import RelaySettings  # noqa: E402
from services.portal.main import PortalSettings  # noqa: E402
from services.registry_api.imports.settings import ImportSettings  # noqa: E402
from services.requests_api.config import RequestsSettings  # noqa: E402
from shared.settings import Settings  # noqa: E402

DOC = ROOT / "docs" / "settings.md"

# Every settings class, with the heading of its table: a new class is one line here.
SETTINGS_CLASSES: list[tuple[str, type[BaseSettings]]] = [
    ("Every service (shared/settings.py)", Settings),
    ("requests_api and its worker (services/requests_api/config.py)", RequestsSettings),
    ("community_api (services/community_api/config.py)", CommunitySettings),
    ("The portal (services/portal/main.py)", PortalSettings),
    ("registry_api's bulk imports (services/registry_api/imports/settings.py)", ImportSettings),
    ("live_relay (services/live_relay/config.py)", RelaySettings),
]

# Where the direct environment reads are looked for (the services and what they share).
SCANNED = ("services", "shared")


@dataclass(frozen=True)
class Row:
    variable: str
    kind: str
    default: str
    bounds: str
    description: str


@dataclass(frozen=True)
class DirectRead:
    variable: str
    default: str
    where: str
    description: str


def type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Union or origin is UnionType:
        return " or ".join(type_name(a) if a is not type(None) else "unset" for a in get_args(annotation))
    if origin is Literal:
        return " / ".join(f"`{a}`" for a in get_args(annotation))
    if origin in (frozenset, set, list, tuple):
        return "comma-separated list"
    if origin is dict:
        return "JSON object"
    return getattr(annotation, "__name__", str(annotation))


def shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, (set, frozenset, list, tuple)):
        return "`" + ",".join(sorted(map(str, value))) + "`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def bounds_of(metadata: list[Any]) -> str:
    signs = {Ge: ("≥", "ge"), Gt: (">", "gt"), Le: ("≤", "le"), Lt: ("<", "lt")}
    out = []
    for item in metadata:
        for kind, (sign, attr) in signs.items():
            if isinstance(item, kind):
                out.append(f"{sign} {getattr(item, attr)}")
    return ", ".join(out)


def rows_of(cls: type[BaseSettings]) -> list[Row]:
    rows = []
    for name, field in cls.model_fields.items():
        if not field.description:
            raise ValueError(f"{cls.__name__}.{name} has no description: say what it is in its Field()")
        rows.append(
            Row(
                variable=field.alias or name.upper(),
                kind=type_name(field.annotation),
                default=shown(field.default),
                bounds=bounds_of(field.metadata),
                description=field.description,
            )
        )
    return rows


def constant(node: ast.expr | None) -> str:
    """A default as written in the source, evaluated when it is a constant expression (`str(7 * 24 * 3600)`)."""
    if node is None:
        return "unset"
    try:
        value = eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {"str": str}})  # noqa: S307 - the project's own source, constants only
    except Exception:
        return f"`{ast.unparse(node)}`"
    return shown(value)


def environment_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isupper():
        return node.value
    return None


def direct_reads(path: Path) -> Iterator[DirectRead]:
    tree = ast.parse(path.read_text(), str(path))
    module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    found: list[tuple[str, ast.expr | None, ast.FunctionDef | ast.AsyncFunctionDef | None]] = []
    for node in ast.walk(tree):
        name: str | None = None
        default: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            receiver = ast.unparse(node.func.value)
            reads = (receiver in ("os.environ", "env", "environ") and node.func.attr == "get") or (
                receiver == "os" and node.func.attr == "getenv"
            )
            if reads:
                name = environment_name(node.args[0])
                default = node.args[1] if len(node.args) > 1 else None
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            name = environment_name(node.slice)
        if name is None or not isinstance(node, (ast.Call, ast.Subscript)):
            continue
        inside = [f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)]
        found.append((name, default, inside[-1] if inside else None))
    for name, default, function in found:
        # The reading function's docstring says what the variable is when it reads that one alone.
        alone = sum(1 for _, _, f in found if f is function) == 1
        doc = (ast.get_docstring(function) or "") if function and alone else ""
        yield DirectRead(
            variable=name,
            default=constant(default),
            where=f"`{module}.{function.name}`" if function else f"`{module}`",
            description=" ".join(doc.split("\n\n")[0].split()),
        )


def all_direct_reads(documented: set[str]) -> list[DirectRead]:
    """The reads of variables no settings class holds, one row per variable (its readers joined)."""
    found: dict[str, list[DirectRead]] = {}
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for read in direct_reads(path):
                if read.variable not in documented:
                    found.setdefault(read.variable, []).append(read)
    rows = []
    for variable, reads in sorted(found.items()):
        defaults = sorted({r.default for r in reads if r.default != "unset"}) or ["unset"]
        rows.append(
            DirectRead(
                variable=variable,
                default=" / ".join(defaults),
                where=", ".join(sorted({r.where for r in reads})),
                description=next((r.description for r in reads if r.description), ""),
            )
        )
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(classes: list[tuple[str, type[BaseSettings]]] = SETTINGS_CLASSES) -> str:
    out = [
        "# Settings",
        "",
        "<!-- Generated by scripts/settings_doc.py (`make settings-doc`) from the settings classes and the",
        "     services' direct environment reads; tests/test_settings_doc.py fails when it and the code differ. -->",
        "",
        "Every service reads its settings from the environment when it starts; a malformed value stops it there,",
        "naming the variable. An empty variable of a service's own settings means its default. Outside development",
        "and test (`CANVASS_ENV`), the placeholder keys are refused: see docs/deployment.md for what production",
        "needs.",
    ]
    documented: set[str] = set()
    for heading, cls in classes:
        out += [
            "",
            f"## {heading}",
            "",
            "| variable | type | default | bounds | what it is |",
            "|---|---|---|---|---|",
        ]
        for row in rows_of(cls):
            # A variable two classes read (CANVASS_ENV, a service's URL) is in the table of each.
            documented.add(row.variable)
            out.append(
                f"| `{row.variable}` | {cell(row.kind)} | {cell(row.default)} | {cell(row.bounds)} | "
                f"{cell(row.description)} |"
            )
    reads = all_direct_reads(documented)
    if reads:
        out += [
            "",
            "## Read directly from the environment",
            "",
            "Modules not yet in the settings classes' style read these variables themselves, when the function",
            "named needs them (a malformed value fails there, not at start-up).",
            "",
            "| variable | default | read in | what it is |",
            "|---|---|---|---|",
        ]
        for read in reads:
            out.append(
                f"| `{read.variable}` | {cell(read.default)} | {cell(read.where)} | {cell(read.description)} |"
            )
    return "\n".join(out) + "\n"


def documented_variables(text: str) -> set[str]:
    """The variables a settings document lists (the first cell of each table row)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names.add(line.split("`")[1])
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/settings.md is not up to date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if DOC.read_text() != text:
            sys.exit("docs/settings.md is out of date: run `make settings-doc`")
        return
    DOC.write_text(text)
    print(DOC.relative_to(ROOT))


if __name__ == "__main__":
    main()
