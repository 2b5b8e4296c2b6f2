"""Property-based contract tests: schemathesis drives each running service from its committed contract, and
every response must conform (no 5xx, documented status codes, content types and schemas), in the example,
coverage, fuzzing and stateful phases. Each operation is called with a credential that may use it (an owner's
for owners' operations, the agency roles' for theirs, none for public ones) and with path ids of real objects,
so the generated cases reach the code behind the authorization checks. The number of generated cases per
operation is printed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import Suite, Token
from tests.contract.conftest import World, register
from tests.support import ROOT

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = 25
SEED = "20261121"

# (method or "*", path regex, who calls it): the first rule that matches an operation wins.
PROBES = ("GET", r"^/(healthz|readyz)$", "anonymous")
RULES: dict[str, list[tuple[str, str, str]]] = {
    "registry_api": [
        PROBES,
        ("POST", r"^/v1/registrations$", "anonymous"),
        ("*", r"^/v1/credential-resets", "anonymous"),
        ("GET", r"^/v1/agencies/covering$", "anonymous"),
        ("*", r"/contact$", "investigator"),
        ("*", r"/notifications$", "service"),
        ("GET", r"^/v1/deleted-registrations$", "service"),
        ("*", r"^/v1/live-windows", "investigator"),
        ("*", r"^/v1/registrations/\{registration_id\}", "owner"),
        ("*", r"^/v1/imports", "integrator"),
        ("*", r"^/v1/agencies", "agency_admin"),
    ],
    "geo_query": [PROBES, ("*", r".", "investigator")],
    "requests_api": [
        PROBES,
        ("*", r"^/v1/owner/", "owner"),
        ("GET", r"^/v1/transparency$", "anonymous"),
        ("*", r"^/v1/agencies/", "agency_admin"),
        ("*", r".", "investigator"),
    ],
}


def caller_for(service: str, method: str, path: str) -> str:
    for m, pattern, who in RULES[service]:
        if (m == "*" or m == method.upper()) and re.search(pattern, path):
            return who
    raise AssertionError(f"no schemathesis caller rule for {method.upper()} {path}")


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def write_config(
    service: str,
    contract: Path,
    headers_by_caller: dict[str, dict[str, str]],
    params: dict[str, str],
    out: Path,
) -> None:
    doc = json.loads(contract.read_text())
    lines = [f"hooks = {toml_str('tests.contract.st_hooks')}", "", "[parameters]"]
    lines += [f"{toml_str(k)} = {toml_str(v)}" for k, v in params.items()]
    for path, item in doc["paths"].items():
        for method in item:
            who = caller_for(service, method, path)
            headers = headers_by_caller[who]
            if not headers:  # public operations are called without credentials
                continue
            inner = ", ".join(f"{toml_str(k)} = {toml_str(v)}" for k, v in headers.items())
            lines += [
                "",
                "[[operations]]",
                f"include-path = {toml_str(path)}",
                f"include-method = {toml_str(method.upper())}",
                f"headers = {{ {inner} }}",
            ]
    out.write_text("\n".join(lines) + "\n")


def run_schemathesis(contract: Path, base_url: str, config: Path, report_dir: Path) -> tuple[int, str]:
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        str(contract),
        "--url",
        base_url,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        # One worker: CPython 3.11's ast.parse is not thread-safe, and hypothesis parses lambdas while
        # building strategies ("AST constructor recursion depth mismatch" with two workers).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**_env(), "PYTHONPATH": str(ROOT)}
    )
    return proc.returncode, proc.stdout + proc.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def cases_and_failures(report_dir: Path) -> tuple[Counter[str], list[str]]:
    cases: Counter[str] = Counter()
    failures: list[str] = []
    for report in report_dir.glob("*.ndjson"):
        for line in report.read_text().splitlines():
            event = json.loads(line)
            done = event.get("ScenarioFinished")
            if not done:
                continue
            recorder = done.get("recorder") or {}
            label = recorder.get("label", "?")
            cases[label] += len(recorder.get("cases") or {})
            for checks in (recorder.get("checks") or {}).values():
                for check in checks:
                    if check.get("status") == "failure":
                        info = (check.get("failure_info") or {}).get("failure") or {}
                        failures.append(
                            f"{label}: {check['name']}: {info.get('title')}: {info.get('message', '')[:300]}"
                        )
    return cases, failures


@pytest.fixture(scope="module")
def subjects(
    world: World, registry: httpx.Client, requests_client: httpx.Client, auth: Token
) -> dict[str, str]:
    """Objects of the agency X for the path parameters: an owner of its own (schemathesis may delete it) and a
    footage request of X's investigator that targets that owner."""
    owner = register(registry, world.x, -87.9200, 43.0450)
    now = "2026-11-20T12:00:00Z"
    r = requests_client.post(
        "/v1/requests",
        json={
            "case_number": f"ST-{uuid.uuid4().hex[:6]}",
            "category": "burglary",
            "incident": {"type": "Point", "coordinates": [-87.9200, 43.0450]},
            "radius_m": 100,
            "window": {"start": now.replace("12:", "08:"), "end": now.replace("12:", "10:")},
            "message": "Footage of the street, please.",
        },
        headers=auth("investigator", world.x, sub="st-det"),
    )
    assert r.status_code == 201, r.text
    return {
        "registration_id": owner.registration_id,
        "camera_id": owner.camera_ids[0],
        "credential": owner.credential,
        "request_id": r.json()["id"],
        "slug": world.x,
    }


@pytest.mark.parametrize("service", ["registry_api", "geo_query", "requests_api"])
def test_service_conforms_to_its_contract(
    service: str, suite: Suite, auth: Token, world: World, subjects: dict[str, str], tmp_path: Path
) -> None:
    server = {"registry_api": suite.registry, "geo_query": suite.geo, "requests_api": suite.requests}[service]
    headers = {
        "anonymous": {},
        "owner": {"Authorization": f"Bearer {subjects['credential']}"},
        "service": {"Authorization": "Bearer " + _service_token()},
        **{
            role: auth(role, world.x, sub=f"st-{role}")
            for role in ("investigator", "agency_admin", "integrator", "supervisor")
        },
    }
    params = {
        "path.slug": subjects["slug"],
        "path.registration_id": subjects["registration_id"],
        "path.camera_id": subjects["camera_id"],
        "path.request_id": subjects["request_id"],
        "path.collection_id": "cameras",
    }
    contract = ROOT / "openapi" / f"{service}.json"
    config = tmp_path / "schemathesis.toml"
    write_config(service, contract, headers, params, config)
    reports = tmp_path / "reports"
    code, output = run_schemathesis(contract, server.url, config, reports)
    cases, failures = cases_and_failures(reports)
    print(f"\nschemathesis {service}: {sum(cases.values())} cases over {len(cases)} operations")
    for label, n in sorted(cases.items()):
        print(f"  {n:5d}  {label}")
    assert not failures, "\n".join(failures[:20])
    assert code == 0, output[-4000:]
    assert len(cases) > 5, "schemathesis generated almost nothing"


def _service_token() -> str:
    from shared.auth import mint_token

    return mint_token("service", None, sub="requests_api")
