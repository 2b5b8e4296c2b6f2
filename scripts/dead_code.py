"""The dead-code check of `make lint`: vulture over the project, reporting the functions, methods, classes,
module-level constants and imports nothing uses, and code that cannot run.

Two kinds of vulture's findings are left out, being what a framework reads rather than code: the fields of
pydantic and SQLAlchemy classes (a class body's names, read by serialisation or by the schema) and attributes set
on an object. What a framework calls by name (routes, validators, test hooks, http.server's `do_POST`) is named
below; the few entry points vulture cannot see otherwise are used in scripts/dead_code_whitelist.py.
Exit status 1 when anything is found, each finding on its own line.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import vulture

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("shared", "services", "scripts", "migrations", "bench", "tests")
WHITELIST = ROOT / "scripts" / "dead_code_whitelist.py"

# Functions a framework calls because of their decorator: routes, validators, fixtures, serialisers.
IGNORE_DECORATORS = [
    "@router.*",
    "@app.*",
    "@*.get",
    "@*.post",
    "@*.put",
    "@*.patch",
    "@*.delete",
    "@*.head",
    "@*.exception_handler",
    "@*.middleware",
    "@field_validator",
    "@model_validator",
    "@pytest.fixture",
    "@schemathesis.*",
]
# Names a framework calls by name.
IGNORE_NAMES = [
    # Alembic's migration modules.
    "revision",
    "down_revision",
    "branch_labels",
    "depends_on",
    "upgrade",
    "downgrade",
    # http.server, aiosmtpd and uvicorn handlers' overrides; pytest's and pydantic-settings' hooks.
    "do_GET",
    "do_POST",
    "do_PUT",
    "log_message",
    "handle_DATA",
    "handle_RCPT",
    "send_400_response",
    "pytest_*",
    "settings_customise_sources",
]
# Unused, in registry_api modules being reshaped elsewhere: they go with that reshaping, and then these names.
# This list should become empty.
NOT_YET_REMOVED = [
    "Text64",  # services/registry_api/oversight.py
]
REPORTED = {"function", "method", "class", "property", "import", "unreachable_code", "variable"}


@cache
def module_level_lines(path: Path) -> frozenset[int]:
    """The lines of a module's own assignments (its constants), as opposed to those of a class body."""
    tree = ast.parse(path.read_text(), str(path))
    return frozenset(n.lineno for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)))


def findings(paths: list[Path] | None = None) -> list[str]:
    """What nothing uses in `paths` (the project and its whitelist unless told otherwise)."""
    v = vulture.Vulture(ignore_names=IGNORE_NAMES + NOT_YET_REMOVED, ignore_decorators=IGNORE_DECORATORS)
    v.scavenge([str(p) for p in (paths or [*(ROOT / p for p in PATHS), WHITELIST])])
    out = []
    for item in v.get_unused_code(min_confidence=60):
        if item.typ not in REPORTED:
            continue
        path = Path(item.filename)
        if item.typ == "variable" and item.first_lineno not in module_level_lines(path):
            continue  # a class body's field, or a parameter a framework's signature requires
        out.append(item.get_report().replace(str(ROOT) + "/", ""))
    return out


def main() -> None:
    found = findings()
    for line in found:
        print(line)
    if found:
        sys.exit(f"{len(found)} unused: remove them, or name a framework's entry point in {WHITELIST.name}")


if __name__ == "__main__":
    main()
