"""Redocly's OpenAPI linter (pinned in tools/contract-lint, installed by `make test` with `npm ci`) finds nothing in
the published contracts under the recommended rules with every warning an error (tools/contract-lint/redocly.yaml
switches a rule off only with its reason)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from scripts.export_openapi import SERVICES
from tests.support import ROOT

TOOL = ROOT / "tools" / "contract-lint"
REDOCLY = TOOL / "node_modules" / ".bin" / "redocly"


def _lint(*files: str) -> subprocess.CompletedProcess[str]:
    if not REDOCLY.exists():  # a run outside `make test`: install the pinned linter the same way
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True, capture_output=True)
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    return subprocess.run(
        [str(REDOCLY), "lint", "--config", str(TOOL / "redocly.yaml"), "--format", "json", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("service", SERVICES)
def test_redocly_finds_no_problem_in_the_contract(service: str) -> None:
    result = _lint(f"openapi/{service}.json")
    report = json.loads(result.stdout[result.stdout.index("{") :])
    problems = [
        f"{p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}" for p in report.get("problems", [])
    ]
    assert result.returncode == 0 and report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, problems


def test_the_linter_fails_on_a_finding(tmp_path: Path) -> None:
    """The step is not a formality: a contract with an operation lacking its id and with a broken reference is
    refused."""
    doc = json.loads((ROOT / "openapi" / "geo_query.json").read_text())
    op = doc["paths"]["/v1/ogc/conformance"]["get"]
    del op["operationId"]
    op["responses"]["200"]["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nowhere"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = _lint(str(bad))
    assert result.returncode != 0
    report = json.loads(result.stdout[result.stdout.index("{") :])
    rules = {p["ruleId"] for p in report["problems"]}
    assert {"operation-operationId", "no-unresolved-refs"} <= rules, rules
