"""Property-based contract tests: schemathesis drives each running service from its committed contract, with
valid credentials, and every response must conform (no 5xx, documented status codes, content types and
schemas). The number of generated cases per operation is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import Suite, Token
from tests.support import ROOT

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
MAX_EXAMPLES = 25
SEED = "20261121"


def run_schemathesis(
    contract: Path, base_url: str, headers: dict[str, str], report_dir: Path
) -> tuple[int, str]:
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
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
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--report",
        "ndjson",
        "--report-dir",
        str(report_dir),
        "--no-color",
    ]
    for name, value in headers.items():
        cmd += ["--header", f"{name}: {value}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


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
def agency(registry_agency: str) -> str:
    return registry_agency


@pytest.mark.parametrize(
    ("service", "role"),
    [("registry_api", "agency_admin"), ("geo_query", "investigator"), ("requests_api", "investigator")],
)
def test_service_conforms_to_its_contract(
    service: str, role: str, suite: Suite, auth: Token, agency: str, tmp_path: Path
) -> None:
    server = {"registry_api": suite.registry, "geo_query": suite.geo, "requests_api": suite.requests}[service]
    code, output = run_schemathesis(
        ROOT / "openapi" / f"{service}.json", server.url, auth(role, agency), tmp_path
    )
    cases, failures = cases_and_failures(tmp_path)
    print(f"\nschemathesis {service}: {sum(cases.values())} cases over {len(cases)} operations")
    for label, n in sorted(cases.items()):
        print(f"  {n:5d}  {label}")
    assert not failures, "\n".join(failures[:20])
    assert code == 0, output[-4000:]
    assert cases, "schemathesis generated no case"
