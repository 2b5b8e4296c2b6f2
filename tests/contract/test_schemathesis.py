"""Property-based contract tests: the schemathesis CLI drives each running service from its committed contract
with every check it has (server errors, documented statuses, content types, schemas and headers, schema-valid
requests accepted and schema-violating ones refused, missing headers, methods and Allow, authentication ignored,
resources after deletion), in the example, coverage, fuzzing and stateful phases (the stateful phase follows the
contracts' links from a creating operation to the ones that use what it created). Each operation is called with a
credential that may use it (an owner's for owners' operations, the agency roles' for theirs, none for public ones)
and with path ids of real objects, so the generated cases reach the code behind the authorization checks. Where a
check cannot apply to one operation as it stands, OVERRIDES says so and why. The number of generated cases per
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
        ("GET", r"^/v1/live-windows/check$", "service"),
        ("*", r"^/v1/live-windows", "investigator"),
        ("POST", r"^/v1/edge-agents/enrol$", "anonymous"),
        ("*", r"^/v1/edge-agents/me", "edge_agent"),
        ("GET", r"^/v1/audit/", "auditor"),
        ("*", r"^/v1/registrations/\{registration_id\}", "owner"),
        ("*", r"^/v1/imports", "integrator"),
        ("*", r"^/v1/agencies", "agency_admin"),
    ],
    "geo_query": [
        PROBES,
        ("GET", r"^/v1/coverage$", "anonymous"),
        ("GET", r"^/v1/tiles/coverage", "anonymous"),
        ("GET", r"^/v1/coverage/agency$", "agency_admin"),
        ("*", r".", "investigator"),
    ],
    "requests_api": [
        PROBES,
        ("*", r"^/v1/owner/", "owner"),
        ("GET", r"^/v1/transparency$", "anonymous"),
        ("*", r"^/v1/agencies/", "agency_admin"),
        ("*", r".", "investigator"),
    ],
    "community_api": [
        PROBES,
        ("*", r"^/v1/tips/mine", "tipster"),
        ("*", r"^/v1/subscriptions/mine$", "subscriber"),
        ("*", r"^/v1/(tips|subscriptions|sms|alerts)", "anonymous"),
        ("GET", r"/community-policy$", "anonymous"),
        ("PUT", r"/community-policy$", "agency_admin"),
        ("*", r".", "supervisor"),
    ],
}


# The checks that cannot apply as they stand to an operation, each with its reason: (method or "*", path regex,
# check, the statuses it should also take, or None to switch it off there). Every other check applies to every
# operation with schemathesis' defaults. `positive_data_acceptance` sends schema-valid requests: the statuses
# added here are the service's answers to what is valid in form but not in the data or state behind it.
_STALE = (
    "an If-Match of the right form that is not the object's current ETag is stale: 412, by state, not form"
)
_CURSOR = (
    "a cursor is an opaque token the service signed; one of the right form it did not issue is refused (400)"
)
_GEOMETRY = (
    "a polygon's validity (no self-crossing, distinct positions) is beyond JSON Schema: 422 names the ring"
)
_EMAIL = "email_validator refuses special-use and reserved domains (.test, .invalid...) that the email format admits"
_PRINTABLE = "printable text (no control, format or unassigned characters) is a Unicode property, not a portable pattern"
_DEPENDENT = (
    "query parameters that exclude or need each other (lon/lat or x/y with crs, `facing` needs a point) cannot be "
    "said across parameters in OpenAPI 3.1: the operation's description says them, and they are answered 400"
)
_IMPORT = (
    "the file is read by the job after the 202 (rejected features and unreadable files are in the job's report), "
    "so a schema-violating body is accepted by design"
)
POSITIVE = "positive_data_acceptance"
Override = tuple[str, str, str, tuple[int, ...] | None, str]
OVERRIDES: dict[str, list[Override]] = {
    "registry_api": [
        (
            "POST",
            r"^/v1/credential-resets/redeem$",
            POSITIVE,
            (400,),
            "a code never issued (used, expired) is 400",
        ),
        ("POST", r"^/v1/credential-resets$", POSITIVE, (422,), _EMAIL),
        (
            "POST",
            r"^/v1/edge-agents/enrol$",
            POSITIVE,
            (400,),
            "an enrolment code never issued (used, expired) is 400",
        ),
        (
            "POST",
            r"^/v1/edge-agents/me/live-windows$",
            POSITIVE,
            (422,),
            "the agencies must be ones the agent's registration is shared with, the cameras its own with a live "
            "mode allowing the reason (data), as for the owner's own window",
        ),
        (
            "POST",
            r"^/v1/registrations$",
            POSITIVE,
            (422,),
            "the agency named must exist and each camera lie in its jurisdiction (data); " + _EMAIL,
        ),
        (
            "POST",
            r"^/v1/imports$",
            POSITIVE,
            (400, 422),
            "a CRS of the right form is looked up in the EPSG registry (400 when unknown); an empty file is 400; an "
            "Idempotency-Key replayed with another file is 422 (the Idempotency-Key draft's status)",
        ),
        ("POST", r"^/v1/imports$", "negative_data_rejection", None, _IMPORT),
        (
            "POST",
            r"^/v1/registrations/\{registration_id\}/notifications$",
            POSITIVE,
            (410,),
            "a registration withdrawn, paused or not shared with the agency named is not written to (data)",
        ),
        ("*", r"^/v1/agencies(/\{slug\})?$", POSITIVE, (412, 422), _STALE + "; " + _GEOMETRY),
        ("GET", r"^/v1/agencies(/\{slug\}/reconfirmations-due)?$", POSITIVE, (400,), _CURSOR),
        (
            "*",
            r"^/v1/registrations/\{registration_id\}(/cameras(/\{camera_id\})?|/confirmation)?$",
            POSITIVE,
            (412,),
            _STALE,
        ),
        ("PATCH", r"^/v1/registrations/\{registration_id\}$", POSITIVE, (412, 422), _STALE + "; " + _EMAIL),
        ("GET", r"/contact$", POSITIVE, (400,), "the access reason: " + _PRINTABLE),
        ("GET", r"/access-report$", POSITIVE, (400,), _CURSOR),
        (
            "GET",
            r"^/v1/audit/",
            POSITIVE,
            (400, 422),
            _DEPENDENT
            + " (`near` needs `radius_m`; one place only); "
            + _CURSOR
            + "; a place's GeoJSON, numbers and bounds, and the instants, are checked beyond their form; "
            + _PRINTABLE,
        ),
        (
            "PATCH",
            r"^/v1/agencies/\{slug\}$",
            "missing_required_header",
            (428,),
            "an update without If-Match is 428 Precondition Required (RFC 6585), the status meant for it",
        ),
        (
            "GET",
            r"^/v1/agencies/covering$",
            "allow_header_conformance",
            None,
            "the URL is also /v1/agencies/{slug} (slug 'covering'), whose PATCH the router serves: Allow says so",
        ),
    ],
    "geo_query": [
        (
            "*",
            r"^/v1/cameras/(radius|nearest|bbox|area|route)$",
            POSITIVE,
            (400,),
            _DEPENDENT + "; " + _CURSOR,
        ),
        ("POST", r"^/v1/cameras/area$", POSITIVE, (422,), _GEOMETRY),
        (
            "POST",
            r"^/v1/cameras/route$",
            POSITIVE,
            (422,),
            _GEOMETRY
            + "; a path has a length (2 distinct points, at most the route cap), and its timing is one of two"
            " forms (times, one per vertex, increasing; or start and speed) in the past",
        ),
        (
            "GET",
            r"^/v1/tiles/coverage(/\{z\}/\{x\}/\{y\}\.mvt|\.json)$",
            POSITIVE,
            (404, 422),
            "a slug of the right form names no program (404); the stateful phase sends the tile path's template"
            " names unfilled (422), as for the camera tiles",
        ),
        (
            "GET",
            r"^/v1/coverage(/agency)?$",
            POSITIVE,
            (400, 404),
            "a bbox is four numbers within the lon/lat ranges, south below north, which a schema string cannot say"
            " (400); a slug of the right form names no program (404); an agency's area at a small size may hold"
            " too many cells (400)",
        ),
        (
            "GET",
            r"^/v1/tiles/cameras/\{z\}/\{x\}/\{y\}\.mvt$",
            POSITIVE,
            (422,),
            "schemathesis' stateful phase sends this path's template names unfilled ('/{z}/…/{y}.mvt'), which no"
            " server can read as the integers they stand for; the other phases fill them, and tests/geo_query/"
            "test_tiles.py answers every valid tile 200",
        ),
        (
            "GET",
            r"^/v1/ogc/collections/\{collection_id\}/items$",
            POSITIVE,
            (400,),
            _DEPENDENT
            + "; "
            + _CURSOR
            + "; a CQL2 filter's grammar is beyond a pattern (400 says where it fails)",
        ),
        (
            "GET",
            r"^/v1/ogc/collections/\{collection_id\}/items$",
            "negative_data_rejection",
            None,
            "OGC API - Features Part 1 (/req/core/fc-limit-response-1): a `limit` over the maximum is not an "
            "error, the maximum is used; the contract keeps OGC's `maximum` so clients learn the page size",
        ),
    ],
    "requests_api": [
        (
            "POST",
            r"^/v1/requests$",
            POSITIVE,
            (422,),
            "radius_m or area, not both; the area and window within the agency's caps (its policy: data)",
        ),
        ("POST", r"^/v1/requests/\{request_id\}/transitions$", POSITIVE, (412,), _STALE),
        ("PUT", r"^/v1/requests/\{request_id\}/legal-hold$", POSITIVE, (412,), _STALE),
        (
            "*",
            r"^/v1/requests/\{request_id\}/(transitions|legal-hold)$",
            "missing_required_header",
            (428,),
            "an update without If-Match is 428 Precondition Required (RFC 6585), the status meant for it",
        ),
        ("GET", r"^/v1/requests$", POSITIVE, (400,), _CURSOR),
        (
            "PUT",
            r"^/v1/agencies/\{slug\}/webhook$",
            POSITIVE,
            (422,),
            "a webhook whose host is or resolves to a private, loopback or unspecified address is refused (a "
            "guard against requests into the agency's network): the address, not the URL's form",
        ),
    ],
}
_CLEANABLE = (
    "a file's media type must be one whose metadata can be removed (415 otherwise), and its content must be of "
    "that type (422): a form's parts carry no media type a schema can constrain"
)
OVERRIDES["community_api"] = [
    ("POST", r"^/v1/tips(/mine/messages)?$", POSITIVE, (413, 415, 422), _CLEANABLE + "; text not blank"),
    ("POST", r"^/v1/subscriptions$", POSITIVE, (422, 502), "the contact must be deliverable (" + _EMAIL + "; a "
     "number valid in its region) and the area inside the agency's jurisdiction and cap (data)"),
    ("POST", r"^/v1/subscriptions/unsubscribe$", POSITIVE, (422,), "a token of the right form this service did not sign"),
    ("POST", r"^/v1/subscriptions/\{subscription_id\}/confirm$", POSITIVE, (422,), "a code that is not the one sent"),
    ("POST", r"^/v1/agencies/\{slug\}/alerts$", POSITIVE, (422,), "the expiry within 30 days from now and the "
     "area reaching into the jurisdiction (data); " + _GEOMETRY),
    ("GET", r"^/v1/agencies/\{slug\}/tips$", POSITIVE, (400,), _CURSOR),
    ("POST", r"^/v1/tips(/mine/messages)?$", "negative_data_rejection", None, "every part of a form is text on the "
     "wire: a boolean or a number generated for `text` arrives as its text, which is a valid tip"),
    ("PUT", r"/community-policy$", POSITIVE, (422,), "each media type one that can be cleaned, the size within the "
     "deployment's ceiling"),
    ("*", r"^/v1/subscriptions/mine$", "use_after_free", None,
     "the subscription is named by its manage token: once it ended, the token names nothing (401, not 404)"),
]  # fmt: skip
DEFAULT_EXPECTED = {
    "positive_data_acceptance": ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"],
    "missing_required_header": ["400", "401", "403", "406", "415", "422"],
}


def overrides_for(service: str, method: str, path: str) -> dict[str, tuple[int, ...] | None]:
    out: dict[str, tuple[int, ...] | None] = {}
    for m, pattern, check, statuses, _reason in OVERRIDES[service]:
        if (m == "*" or m == method.upper()) and re.search(pattern, path):
            before = out.get(check, ())
            out[check] = None if statuses is None else tuple(sorted({*(before or ()), *statuses}))
    return out


def checks_table(overrides: dict[str, tuple[int, ...] | None]) -> str:
    parts = []
    for check, statuses in overrides.items():
        if statuses is None:
            parts.append(f"{check} = {{ enabled = false }}")
        else:
            expected = DEFAULT_EXPECTED[check] + [str(s) for s in statuses]
            parts.append(f"{check} = {{ expected-statuses = {json.dumps(expected)} }}")
    return "{ " + ", ".join(parts) + " }"


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
    # Every check (`--checks all`), said here rather than on the command line: a check named there could not be
    # switched off for one operation below.
    lines = [
        f"hooks = {toml_str('tests.contract.st_hooks')}",
        "",
        "[checks]",
        "enabled = true",
        "",
        "[parameters]",
    ]
    lines += [f"{toml_str(k)} = {toml_str(v)}" for k, v in params.items()]
    for path, item in doc["paths"].items():
        for method in item:
            who = caller_for(service, method, path)
            headers = headers_by_caller[who]  # none for public operations: called without credentials
            overrides = overrides_for(service, method, path)
            if not headers and not overrides:
                continue
            # One filter naming the operation: schemathesis ORs separate include-* keys (include-path and
            # include-method together would select every operation of that method).
            op_id = item[method]["operationId"]
            lines += ["", "[[operations]]", f"include-operation-id = {toml_str(op_id)}"]
            if headers:
                inner = ", ".join(f"{toml_str(k)} = {toml_str(v)}" for k, v in headers.items())
                lines.append(f"headers = {{ {inner} }}")
            if overrides:
                lines.append(f"checks = {checks_table(overrides)}")
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
    code = registry.post(f"/v1/registrations/{owner.registration_id}/edge-agents", headers=owner.headers)
    assert code.status_code == 201, code.text
    agent = registry.post("/v1/edge-agents/enrol", json={"code": code.json()["code"]})
    assert agent.status_code == 201, agent.text
    return {
        "edge_agent": agent.json()["credential"],
        "registration_id": owner.registration_id,
        "camera_id": owner.camera_ids[0],
        "credential": owner.credential,
        "request_id": r.json()["id"],
        "slug": world.x,
    }


@pytest.fixture(scope="module")
def community_subjects(world: World, community: httpx.Client, suite: Suite) -> dict[str, str]:
    """A tipster's code and a subscriber's manage token, for the operations they call."""
    tip = community.post("/v1/tips", files={"agency": (None, world.x), "text": (None, "For schemathesis.")})
    assert tip.status_code == 201, tip.text
    number = "+14145550" + str(uuid.uuid4().int % 900 + 100)
    sub = community.post(
        "/v1/subscriptions",
        json={
            "agency": world.x,
            "channel": "sms",
            "contact": number,
            "pin": {"type": "Point", "coordinates": [-87.92, 43.045]},
            "radius_m": 500,
            "categories": ["crime"],
        },
    )
    assert sub.status_code == 202, sub.text
    assert suite.sms is not None
    code = re.findall(r"\b(\d{6})\b", suite.sms.to(number)[-1]["body"])[-1]
    confirmed = community.post(f"/v1/subscriptions/{sub.json()['id']}/confirm", json={"code": code})
    assert confirmed.status_code == 200, confirmed.text
    return {"tip_code": tip.json()["code"], "manage_token": confirmed.json()["manage_token"]}


@pytest.mark.parametrize("service", ["registry_api", "geo_query", "requests_api", "community_api"])
def test_service_conforms_to_its_contract(
    service: str,
    suite: Suite,
    auth: Token,
    world: World,
    subjects: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server = {
        "registry_api": suite.registry,
        "geo_query": suite.geo,
        "requests_api": suite.requests,
        "community_api": suite.community,
    }[service]
    assert server is not None
    community = request.getfixturevalue("community_subjects") if service == "community_api" else {}
    headers = {
        "anonymous": {},
        "owner": {"Authorization": f"Bearer {subjects['credential']}"},
        "service": {"Authorization": "Bearer " + _service_token()},
        "edge_agent": {"Authorization": f"Bearer {subjects['edge_agent']}"},
        **{
            role: auth(role, world.x, sub=f"st-{role}")
            for role in ("investigator", "agency_admin", "integrator", "supervisor", "auditor")
        },
        "tipster": {"X-Tip-Code": community.get("tip_code", "")},
        "subscriber": {"X-Subscription-Token": community.get("manage_token", "")},
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
    for failure in failures:
        print("  FAIL", failure)
    assert not failures, "\n".join(failures[:20])
    assert code == 0, output[-4000:]
    assert len(cases) > 5, "schemathesis generated almost nothing"


def _service_token() -> str:
    from shared.auth import mint_token

    return mint_token("service", None, sub="requests_api")
