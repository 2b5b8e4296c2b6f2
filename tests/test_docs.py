"""The documentation kept true by the suite.

- Every shell example (a fenced block in `sh`, `bash`, `shell` or `console`) of README.md, the services' READMEs,
  CONTRIBUTING.md and docs/ carries a marker on the line just above it:
      <!-- doc-test: run; stdout has line "200"; stdout contains "Layer name: cameras" -->
      <!-- doc-test: skip: why it cannot run inside the test session -->
  A `run` block is executed with bash (`-e -o pipefail`) from the repository's root against this session's live
  services, the addresses `make run` uses (127.0.0.1:8001, 8002, 8003) replaced by theirs and the demo data loaded
  as `make run` loads it; it must exit 0 and print what its marker states.
- Every setting (environment variable), make target, role and route the same documents name exists in the code:
  settings in the sources, the Makefile, the compose file or the scripts; make targets in the Makefile and in
  `make help`; roles in `shared/auth.py`; routes in the committed contracts (`openapi/*.json`).
- The pre-commit hooks run what `make lint` runs, and the set-up installs (or names) the Debian packages the README
  says it does.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.auth import ROLES
from shared.settings import Settings
from tests.conftest import Suite

ROOT = Path(__file__).resolve().parent.parent
# Written by `make bench` from its measurements: what it says is checked by the bench itself.
GENERATED = {"docs/bench-results.md"}
SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
# The ports `make run` serves each service on, as the documents name them.
DOCUMENTED_ADDRESSES = {
    "http://127.0.0.1:8001": "registry",
    "http://127.0.0.1:8002": "geo",
    "http://127.0.0.1:8003": "requests",
}
# Names the documents give to other programs' settings, not Canvass's.
FOREIGN_SETTINGS = {
    "GDAL_HTTP_HEADERS": "GDAL's configuration option",
    "GDAL_HTTP_AUTH": "GDAL's configuration option",
    "GDAL_HTTP_BEARER": "GDAL's configuration option",
}
# Where a setting that exists is read or passed on.
SETTING_SOURCES = ("shared", "services", "scripts", "migrations", "bench")
SETTING_FILES = ("Makefile", "docker-compose.yml", "Dockerfile", "alembic.ini")


def documents() -> list[Path]:
    paths = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "services").glob("*/README.md"))]
    paths += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in paths if p.exists() and p.relative_to(ROOT).as_posix() not in GENERATED]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{rel(self.path)}:{self.line}"


@dataclass
class Marker:
    run: bool
    reason: str = ""
    lines: list[str] = field(default_factory=list)  # stdout has line "..."
    contains: list[str] = field(default_factory=list)  # stdout contains "..."


FENCE = re.compile(r"^(\s*)```([A-Za-z0-9_-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")


def code_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, language = m.group(1), m.group(2).lower()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            i += 1
        i += 1
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(before)
        yield Block(path, start + 1, language, "\n".join(body) + "\n", marker.group(1) if marker else None)


def parse_marker(block: Block) -> Marker:
    assert block.marker is not None, (
        f"{block.where}: a shell example needs a marker on the line above it: "
        '<!-- doc-test: run; stdout has line "..." --> or <!-- doc-test: skip: <why> -->'
    )
    parts = [p.strip() for p in block.marker.split(";")]
    if parts[0].startswith("skip:"):
        reason = parts[0].removeprefix("skip:").strip()
        assert len(reason) >= 10, f"{block.where}: say why the example cannot run in the test session"
        return Marker(run=False, reason=reason)
    assert parts[0] == "run", f"{block.where}: a marker starts with 'run' or 'skip: <why>', not {parts[0]!r}"
    marker = Marker(run=True)
    for part in parts[1:]:
        m = re.fullmatch(r'stdout (has line|contains) "(.*)"', part)
        assert m, (
            f'{block.where}: unknown expectation {part!r} (stdout has line "...", stdout contains "...")'
        )
        (marker.lines if m.group(1) == "has line" else marker.contains).append(m.group(2))
    assert marker.lines or marker.contains, f"{block.where}: state what the example prints"
    return marker


def shell_blocks() -> list[Block]:
    return [b for p in documents() for b in code_blocks(p) if b.language in SHELL_LANGUAGES]


def test_every_shell_example_is_marked_runnable_or_says_why_not() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 6  # the README's, the services' and docs/' examples are found at all
    for block in blocks:
        parse_marker(block)


@pytest.fixture(scope="module")
def docs_env(suite: Suite) -> dict[str, str]:
    """The environment the examples run in: the session's services and database, the demo data `make run`
    loads, and make told that the Python environment is the one this test runs in."""
    env = {k: v for k, v in suite.env.items() if not k.startswith(("GDAL_", "CPL_"))}
    subprocess.run(
        [sys.executable, "scripts/demo_data.py"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    # `make token` depends on `make env`; pytest runs inside that environment, built from the same uv.lock.
    synced = ROOT / ".venv" / ".synced"
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        up_to_date = subprocess.run(["make", "-s", "-q", ".venv/.synced"], cwd=ROOT, env=env).returncode == 0
        if not up_to_date:
            synced.touch()
    return env


def runnable_blocks() -> list[Block]:
    return [b for b in shell_blocks() if b.marker is not None and parse_marker(b).run]


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.where)
def test_shell_example_runs_against_the_live_suite(
    block: Block, suite: Suite, docs_env: dict[str, str]
) -> None:
    marker = parse_marker(block)
    servers = {"registry": suite.registry, "geo": suite.geo, "requests": suite.requests}
    script = block.text
    for documented, name in DOCUMENTED_ADDRESSES.items():
        script = script.replace(documented, servers[name].url)
    r = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env=docs_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, f"{block.where} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    out_lines = [line.strip() for line in r.stdout.splitlines()]
    for line in marker.lines:
        assert line in out_lines, f"{block.where}: no line {line!r} in\n{r.stdout}\n{r.stderr}"
    for text in marker.contains:
        assert text in r.stdout, f"{block.where}: {text!r} not in\n{r.stdout}\n{r.stderr}"


# ------------------------------------------------------------------------------------------ names in the docs

INLINE_CODE = re.compile(r"`([^`\n]+)`")
SETTING = re.compile(
    r"\b(CANVASS_[A-Z0-9_]+|[A-Z_]*DATABASE_URL|[A-Z_]+_API_URL|GEO_QUERY_URL|[A-Z_]+_PORT)\b"
)


def prose(path: Path) -> str:
    """A document without its fenced blocks."""
    return re.sub(r"^\s*```.*?^\s*```\s*$", "", path.read_text(), flags=re.S | re.M)


def documented_settings() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in documents():
        for name in SETTING.findall(path.read_text()):
            found.setdefault(name, rel(path))
        for code in INLINE_CODE.findall(path.read_text()):
            for name in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", code):
                if name.startswith(("CANVASS_", "GDAL_")):
                    found.setdefault(name, rel(path))
    return found


def code_text() -> str:
    texts = [(ROOT / f).read_text() for f in SETTING_FILES if (ROOT / f).exists()]
    for folder in SETTING_SOURCES:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".sh", ".sql") and "__pycache__" not in path.parts:
                texts.append(path.read_text())
    return "\n".join(texts)


def test_every_documented_setting_exists_in_the_code() -> None:
    settings = documented_settings()
    assert {"CANVASS_SECRET_KEY", "CANVASS_JWT_ISSUER", "DATABASE_URL"} <= set(settings)
    code = code_text()
    missing = {
        name: where
        for name, where in settings.items()
        if name not in FOREIGN_SETTINGS and not re.search(rf"\b{re.escape(name)}\b", code)
    }
    assert not missing, f"settings the docs name that the code does not read: {missing}"


def test_the_owslib_call_the_gis_page_shows_is_one_owslib_has() -> None:
    """docs/gis-clients.md shows OWSLib's constructor with its import: the module exists and holds that name."""
    text = " ".join((ROOT / "docs" / "gis-clients.md").read_text().split())
    sentence = text[text.index("OWSLib (") :].split(") work the same way", 1)[0]
    imported = re.search(r"`from (owslib[\w.]*) import (\w+)`", sentence)
    assert imported, f"docs/gis-clients.md: no `from owslib... import ...` beside the call: {sentence!r}"
    module = importlib.import_module(imported.group(1))
    called = re.findall(r"`(\w+)\(url, headers=", sentence)
    assert called == [imported.group(2)] and hasattr(module, called[0]), sentence


# A production deployment that sets all of these starts; one left out is refused at start-up (shared/settings.py).
PRODUCTION_REQUIRED = {
    "CANVASS_SECRET_KEY": "s" * 40,
    "CANVASS_ENCRYPTION_KEY": "k1:" + base64.urlsafe_b64encode(b"e" * 32).decode(),
    "CANVASS_PUBLIC_BASE_URL": "https://canvass.example",
    "CANVASS_KEYSTORE_URL": "postgresql://canvass_keys@keystore.example/canvass_keys",
    "CANVASS_KEYSTORE_KEY": "w1:" + base64.urlsafe_b64encode(b"w" * 32).decode(),
}


def test_the_deployment_table_names_every_setting_production_refuses_to_start_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/deployment.md's table of what production requires has a row for each setting whose absence stops a
    service, quoting what the service then says."""
    for name in PRODUCTION_REQUIRED:
        monkeypatch.delenv(name, raising=False)
    Settings(CANVASS_ENV="production", **PRODUCTION_REQUIRED)  # type: ignore[arg-type]
    section = (ROOT / "docs" / "deployment.md").read_text().split("## The settings production requires", 1)[1]
    table = section.split("\n\n", 2)[1]
    rows = {row.split("|")[1].strip() for row in table.splitlines()[2:]}
    for name in PRODUCTION_REQUIRED:
        given = {k: v for k, v in PRODUCTION_REQUIRED.items() if k != name}
        with pytest.raises(ValidationError) as refused:
            Settings(CANVASS_ENV="production", **given)  # type: ignore[arg-type]
        said = refused.value.errors()[0]["msg"].removeprefix("Value error, ")
        assert any(name in row for row in rows), f"docs/deployment.md: no row for {name}"
        assert f"`{said}`" in table, f"docs/deployment.md: {name}'s row does not quote {said!r}"


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def documented_make_targets() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in documents():
        text = path.read_text()
        snippets = INLINE_CODE.findall(text) + [b.text for b in code_blocks(path)]
        for snippet in snippets:
            for target in re.findall(r"(?:^|[\s($])make\s+(?:-s\s+)?([a-z][a-z-]*)\b", snippet, flags=re.M):
                found.setdefault(target, rel(path))
    return found


def test_every_documented_make_target_exists_and_make_help_lists_it() -> None:
    targets = documented_make_targets()
    assert {"run", "test", "token", "setup", "help"} <= set(targets)
    missing = {t: where for t, where in targets.items() if t not in makefile_targets()}
    assert not missing, f"make targets the docs name that the Makefile lacks: {missing}"
    helped = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"^\s*make ([a-z][a-z-]*)", helped, flags=re.M))
    assert set(targets) <= listed, f"`make help` does not list: {set(targets) - listed}"


ROLE_LIST = re.compile(
    r"(?<!group )(?<!login )\b[Rr]oles?:?\s+((?:`[a-z_]+`(?:,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)?)+)"
)


def documented_roles() -> dict[str, set[str]]:
    """Roles named where the documents list roles: after "role(s)", and in "who may call it" columns."""
    found: dict[str, set[str]] = {}
    for path in documents():
        text = prose(path)
        names: set[str] = set()
        for listing in ROLE_LIST.findall(text):
            names |= set(re.findall(r"`([a-z_]+)`", listing))
        for row in text.splitlines():
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            if len(cells) == 3 and row.lstrip().startswith("|") and "/v1/" in cells[0]:
                names |= {n for n in re.findall(r"`([a-z_]+)`", cells[1])}
        if names:
            found[rel(path)] = names
    return found


def test_every_documented_role_exists_and_the_readme_lists_them_all() -> None:
    roles = documented_roles()
    assert "services/registry_api/README.md" in roles and "services/requests_api/README.md" in roles
    unknown = {where: names - set(ROLES) for where, names in roles.items() if names - set(ROLES)}
    assert not unknown, f"roles the docs name that shared/auth.py does not define: {unknown}"
    readme = re.search(r"^Roles: (.*?)\n\n", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    assert readme, "README.md lists the roles in a paragraph starting 'Roles: '"
    assert set(re.findall(r"`([a-z_]+)`", readme.group(1))) == set(ROLES)


def contract_paths() -> list[list[str]]:
    paths: list[list[str]] = []
    for contract in sorted((ROOT / "openapi").glob("*.json")):
        for p in json.loads(contract.read_text())["paths"]:
            paths.append(p.strip("/").split("/"))
    return paths


def _matches(doc: list[str], real: list[str]) -> bool:
    return len(doc) == len(real) and all(
        d == r or (r.startswith("{") and r.endswith("}")) for d, r in zip(doc, real, strict=True)
    )


def route_exists(route: str, paths: list[list[str]]) -> bool:
    """`/v1/a/{x}/b` names a path of a contract (any parameter name, or a literal where it has a parameter);
    `/v1/a/...` or `/v1/a` a group of paths under it; `.../b/{y}` the end of one."""
    if route.startswith("..."):
        tail = route.removeprefix("...").strip("/").split("/")
        return any(len(p) >= len(tail) and _matches(tail, p[-len(tail) :]) for p in paths)
    segments = route.removesuffix("...").strip("/").split("/")
    return any(_matches(segments, p) or _matches(segments, p[: len(segments)]) for p in paths)


ROUTE = re.compile(r"(?:/v1|/healthz|/readyz|\.\.\.)(?:/[A-Za-z0-9_{}.-]*)*")


def documented_routes() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in documents():
        for code in INLINE_CODE.findall(prose(path)):
            for route in ROUTE.findall(code.split("?")[0]):
                if route.startswith(("/v1", "/healthz", "/readyz")) or route.startswith(".../"):
                    found.setdefault(route.rstrip("/") if route != "/" else route, rel(path))
    return found


def test_every_documented_route_exists_in_the_contracts() -> None:
    routes = documented_routes()
    assert {"/v1/registrations/{id}/contact", "/v1/ogc", "/v1/requests"} <= set(routes)
    paths = contract_paths()
    missing = {r: where for r, where in routes.items() if not route_exists(r, paths)}
    assert not missing, f"routes the docs name that no contract has: {missing}"


def test_pre_commit_runs_exactly_what_make_lint_runs() -> None:
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe, "the Makefile has a lint target"
    lint = {line.strip() for line in recipe.group(1).splitlines()}
    hooks = re.findall(r"^\s*entry:\s*(.+)$", (ROOT / ".pre-commit-config.yaml").read_text(), flags=re.M)
    assert set(hooks) == lint


def test_the_names_checks_catch_a_name_that_is_gone() -> None:
    """The checks themselves can fail: a renamed setting, target, role or route is reported."""
    paths = contract_paths()
    assert not route_exists("/v1/registrations/{id}/contacts", paths)
    assert not route_exists("/v1/cameras/circle", paths)
    assert route_exists(".../live-windows/{window_id}/close", paths)
    assert not re.search(r"\bCANVASS_NO_SUCH_SETTING\b", code_text())
    assert "no-such-target" not in makefile_targets()
    assert "detective" not in ROLES and "service" in ROLES


# ------------------------------------------------------------------------------------ the set-up the README promises


def _without_apt(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has python3 and id but no apt-get: ensure_debian.sh then only reports."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())
    found = subprocess.run(["bash", "-c", "command -v id"], capture_output=True, text=True, check=True)
    (bin_dir / "id").symlink_to(found.stdout.strip())
    return {"PATH": str(bin_dir)}


def test_ensure_debian_names_the_packages_of_missing_commands_paths_and_python_modules(
    tmp_path: Path,
) -> None:
    env = _without_apt(tmp_path)
    script = str(ROOT / "scripts" / "ensure_debian.sh")
    present = subprocess.run(
        ["/bin/bash", script, "python3=python3", "py:json=python3", f"{sys.executable}=python3"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert present.returncode == 0, present.stderr
    missing = subprocess.run(
        [
            "/bin/bash",
            script,
            "py:json=python3",
            "py:no_such_module_here=python3-venv",
            "/no/such/dir/bin/postgres=postgresql-15",
            "no-such-command=some-package",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1
    assert "missing: python3-venv postgresql-15 some-package;" in missing.stderr
    assert "sudo apt-get install -y python3-venv postgresql-15 some-package" in missing.stderr


def test_the_set_up_checks_for_python3_venv_before_making_a_virtual_environment() -> None:
    plan = subprocess.run(
        ["make", "-n", "-B", ".tools/bin/uv"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ensure = next(
        i for i, line in enumerate(plan) if "ensure_debian.sh" in line and "py:ensurepip=python3-venv" in line
    )
    venv = next(i for i, line in enumerate(plan) if line.startswith("python3 -m venv"))
    assert ensure < venv
