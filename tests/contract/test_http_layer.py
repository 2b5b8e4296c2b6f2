"""The HTTP layer every service shares, checked on every operation of the published contracts: who may call at
all (a token for an agency Canvass does not know), query strictness, media types, methods and headers."""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Iterator

import httpx

from shared.auth import mint_token
from shared.pagination import encode_cursor
from tests.contract.conftest import Scene
from tests.contract.operations import AGENCY_ROLES, Operation, credentials, operations, real_ids

PROBLEM = "application/problem+json"


def client_of(scene: Scene, op: Operation) -> httpx.Client:
    return {
        "registry_api": scene.registry,
        "geo_query": scene.geo,
        "requests_api": scene.requests,
        "community_api": scene.community_client,
    }[op.service]


def send(
    scene: Scene, op: Operation, headers: dict[str, str], path: str | None = None, **kw: object
) -> httpx.Response:
    if op.body_types and "content" not in kw:
        kw["content"] = b"{}"
        headers = {**headers, "Content-Type": op.body_types[0]}
    return client_of(scene, op).request(op.method, path or op.fill(), headers=headers, **kw)  # type: ignore[arg-type]


def test_a_token_for_an_agency_canvass_does_not_know_is_refused_on_every_operation(scene: Scene) -> None:
    """Every role at once, validly signed, for an agency that does not exist: 403 wherever an agency token is
    accepted at all (an operation that wants an owner's credential says 401 to any agency token)."""
    ghost = "ghost-" + uuid.uuid4().hex[:8]
    ghost_token = scene.auth("investigator", ghost, roles=AGENCY_ROLES)
    known_token = scene.auth("investigator", scene.world.x, roles=AGENCY_ROLES)
    wrong: list[str] = []
    checked = 0
    for op in operations():
        if not op.secured or op.key == "registry_api POST /v1/agencies":
            continue
        path = op.fill({"slug": ghost})
        known = send(scene, op, known_token, op.fill({"slug": scene.world.x}))
        got = send(scene, op, ghost_token, path)
        expected = 401 if known.status_code == 401 else 403
        checked += 1
        if got.status_code != expected or got.headers.get("content-type") != PROBLEM:
            wrong.append(f"{op.key}: {got.status_code} (expected {expected}) {got.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert checked > 40


def test_the_founding_administrator_of_a_new_agency_may_publish_it(scene: Scene) -> None:
    new = "t-" + uuid.uuid4().hex[:10]
    body = {
        "slug": new,
        "name": "A new program",
        "jurisdiction": {
            "type": "Polygon",
            "coordinates": [[[-90.0, 44.0], [-89.9, 44.0], [-89.9, 44.1], [-90.0, 44.1], [-90.0, 44.0]]],
        },
    }
    admin = scene.auth("agency_admin", new)
    assert scene.registry.get("/v1/live-windows", headers=scene.auth("investigator", new)).status_code == 403
    assert scene.registry.post("/v1/agencies", json=body, headers=admin).status_code == 201
    # known from the moment it exists, on every service
    assert scene.registry.get("/v1/live-windows", headers=scene.auth("investigator", new)).status_code == 200
    assert scene.requests.get("/v1/requests", headers=scene.auth("investigator", new)).status_code == 200


def test_a_claim_of_the_wrong_type_is_a_401_on_every_service(scene: Scene) -> None:
    for client, path in (
        (scene.registry, "/v1/live-windows"),
        (scene.geo, "/v1/ogc"),
        (scene.requests, "/v1/requests"),
    ):
        for claims in ({"role": 7}, {"agency": [scene.world.x]}):
            token = mint_token("investigator", scene.world.x, extra=claims)
            headers = {"Authorization": f"Bearer {token}"}
            r = client.get(path, headers=headers)
            assert r.status_code == 401, (path, claims, r.text)
            assert r.headers["content-type"] == PROBLEM


def is_problem(r: httpx.Response, status: int) -> bool:
    return (
        r.status_code == status and r.headers.get("content-type") == PROBLEM and r.json()["status"] == status
    )


def test_an_unknown_query_parameter_is_a_400_problem_on_every_operation(scene: Scene) -> None:
    wrong = []
    for op in operations():
        r = send(scene, op, credentials(scene, op), params={"not_a_parameter": "1"})
        if not is_problem(r, 400) or r.json()["errors"][0]["pointer"] != "/query/not_a_parameter":
            wrong.append(f"{op.key}: {r.status_code} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)


def test_a_repeated_single_valued_query_parameter_is_a_400_problem_on_every_operation(scene: Scene) -> None:
    wrong, checked = [], 0
    for op in operations():
        for p in op.query():
            if p.get("schema", {}).get("type") == "array":
                continue
            checked += 1
            r = send(scene, op, credentials(scene, op), params=[(p["name"], "1"), (p["name"], "2")])
            if not is_problem(r, 400) or r.json()["errors"][0]["pointer"] != f"/query/{p['name']}":
                wrong.append(f"{op.key} {p['name']}: {r.status_code} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)
    assert checked > 30


def test_a_search_given_lon_twice_is_refused_rather_than_run_at_the_last_one(scene: Scene) -> None:
    r = scene.geo.get(
        "/v1/cameras/radius?lon=-87.9065&lat=43.0389&radius_m=200&lon=0", headers=scene.agent("investigator")
    )
    assert is_problem(r, 400), r.text
    assert r.json()["errors"] == [
        {"pointer": "/query/lon", "reason": "given more than once; it takes one value", "code": "repeated"}
    ]


def test_booleans_and_numbers_in_json_bodies_are_strict_json_types(scene: Scene) -> None:
    admin = scene.agent("agency_admin")
    hook = f"/v1/agencies/{scene.world.x}/webhook"
    for active in ("true", 1, "1"):
        r = scene.requests.put(
            hook, json={"url": "https://hooks.example.org/canvass", "active": active}, headers=admin
        )
        assert is_problem(r, 422), (active, r.text)
        assert r.json()["errors"][0]["pointer"] == "/body/active"
    hold = f"/v1/requests/{scene.request_id}/legal-hold"
    r = scene.requests.put(hold, json={"legal_hold": "true"}, headers=scene.agent("supervisor"))
    assert is_problem(r, 422) and r.json()["errors"][0]["pointer"] == "/body/legal_hold", r.text
    owner = scene.world.a
    for bad in ("90", True):
        r = scene.registry.patch(
            f"/v1/registrations/{owner.registration_id}/cameras/{owner.camera_ids[0]}",
            json={"direction_deg": bad},
            headers=owner.headers,
        )
        assert is_problem(r, 422), (bad, r.text)


def test_an_integer_member_takes_a_number_without_a_fraction_as_json_schema_does(scene: Scene) -> None:
    """JSON has one number type and JSON Schema's `integer` admits 90.0: taken as 90; 90.5 is still refused."""
    owner = scene.world.a
    camera = f"/v1/registrations/{owner.registration_id}/cameras/{owner.camera_ids[0]}"
    etag = scene.registry.get(f"/v1/registrations/{owner.registration_id}", headers=owner.headers).headers[
        "etag"
    ]
    r = scene.registry.patch(
        camera,
        json={"direction_deg": 90.0, "retention_days": 14.0},
        headers={**owner.headers, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    stored = next(c for c in r.json()["properties"]["cameras"] if c["id"] == owner.camera_ids[0])
    assert (stored["direction_deg"], stored["retention_days"]) == (90, 14)  # the world's own values, kept
    assert isinstance(stored["direction_deg"], int)
    for bad in (90.5, 1e300):
        r = scene.registry.patch(camera, json={"direction_deg": bad}, headers=owner.headers)
        assert is_problem(r, 422) and r.json()["errors"][0]["pointer"] == "/body/direction_deg", (bad, r.text)


def oversize() -> Iterator[bytes]:
    yield b'{"x": "'
    for _ in range(40):
        yield b"x" * 65536
    yield b'"}'


def test_a_chunked_body_over_the_limit_is_a_413_problem_on_every_body_operation(scene: Scene) -> None:
    wrong, checked = [], 0
    for op in operations():
        if not op.body_types or op.key.endswith("/v1/imports") or "multipart/form-data" in op.body_types:
            continue  # imports and uploads have their own, larger limits (tests/imports, tests/requests)
        checked += 1
        r = send(scene, op, credentials(scene, op), op.fill(real_ids(scene)), content=oversize())
        if not is_problem(r, 413):
            wrong.append(f"{op.key}: {r.status_code} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 16


def test_a_body_of_another_media_type_is_a_415_problem_on_every_json_operation(scene: Scene) -> None:
    wrong, checked = [], 0
    for op in operations():
        if op.body_types != ["application/json"]:
            continue
        checked += 1
        for media_type, content in (("text/plain", b"{}"), ("application/x-www-form-urlencoded", b"a=1")):
            r = send(scene, op, {**credentials(scene, op), "Content-Type": media_type}, content=content)
            if not is_problem(r, 415):
                wrong.append(f"{op.key} {media_type}: {r.status_code} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 16


def test_a_compressed_body_is_a_415_problem_that_asks_for_identity_on_every_body_operation(
    scene: Scene,
) -> None:
    """No operation decodes Content-Encoding: a gzip body is refused as such, with `Accept-Encoding: identity`
    (RFC 7694), where it used to be read as a malformed body (400)."""
    wrong, checked = [], 0
    for op in operations():
        if not op.body_types:
            continue
        checked += 1
        media_type = op.body_types[0]
        body = gzip.compress(b"{}")
        headers = {**credentials(scene, op), "Content-Type": media_type, "Content-Encoding": "gzip"}
        r = send(scene, op, headers, op.fill(real_ids(scene)), content=body)
        if not is_problem(r, 415) or r.headers.get("accept-encoding") != "identity":
            wrong.append(f"{op.key}: {r.status_code} {r.headers.get('accept-encoding')} {r.text[:150]}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 20


def test_a_body_encoded_under_any_spelling_of_content_encoding_is_a_415_problem_on_every_body_operation(
    scene: Scene,
) -> None:
    """Codings listed in one header or in several (which HTTP reads as one list: `gzip` then `identity` is a
    gzip body), upper case, or on a chunked body: each is an encoded body, refused as such, not read as it is."""
    spellings: list[list[tuple[str, str]]] = [
        [("Content-Encoding", "gzip"), ("Content-Encoding", "identity")],
        [("Content-Encoding", "identity"), ("Content-Encoding", "gzip")],
        [("Content-Encoding", "identity, gzip")],
        [("Content-Encoding", "GZIP")],
    ]
    wrong, checked = [], 0
    for op in operations():
        if not op.body_types:
            continue
        checked += 1
        body = gzip.compress(b"{}")
        base = [*credentials(scene, op).items(), ("Content-Type", op.body_types[0])]
        for spelling in spellings:
            r = client_of(scene, op).request(
                op.method, op.fill(real_ids(scene)), headers=[*base, *spelling], content=body
            )
            if not is_problem(r, 415) or r.headers.get("accept-encoding") != "identity":
                wrong.append(f"{op.key} {spelling}: {r.status_code} {r.text[:150]}")
        chunked = client_of(scene, op).request(
            op.method,
            op.fill(real_ids(scene)),
            headers=[*base, ("Content-Encoding", "gzip")],
            content=iter([body]),
        )
        if not is_problem(chunked, 415):
            wrong.append(f"{op.key} chunked: {chunked.status_code} {chunked.text[:150]}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 20


def test_head_is_answered_wherever_get_is(scene: Scene) -> None:
    wrong = []
    for op in operations():
        if op.method != "get":
            continue
        path = op.fill(real_ids(scene))
        headers = credentials(scene, op)
        got = client_of(scene, op).get(path, headers=headers)
        head = client_of(scene, op).head(path, headers=headers)
        if head.status_code != got.status_code or head.content:
            wrong.append(f"{op.key}: HEAD {head.status_code}, GET {got.status_code}")
    assert not wrong, "\n".join(wrong)
    for client in (scene.registry, scene.geo, scene.requests):
        for probe in ("/healthz", "/readyz"):
            r = client.head(probe)
            assert r.status_code == 200 and r.content == b"", (probe, r.status_code)


def test_a_405_lists_every_method_of_the_path_in_allow(scene: Scene) -> None:
    by_path: dict[tuple[str, str], set[str]] = {}
    for op in operations():
        by_path.setdefault((op.service, op.path), set()).add(op.method.upper())
    wrong, checked = [], 0
    for (service, path), methods in by_path.items():
        absent = next(m for m in ("PUT", "DELETE", "PATCH", "POST", "GET") if m not in methods)
        client = client_of(scene, Operation(service, "get", path, {}))
        concrete = Operation(service, "get", path, {}).fill(real_ids(scene))
        r = client.request(absent, concrete)
        # every operation whose template the concrete path matches (/v1/agencies/covering is also a {slug})
        expected = set().union(
            *(
                m
                for (s, p), m in by_path.items()
                if s == service and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), concrete)
            )
        )
        expected |= {"HEAD"} if "GET" in expected else set()
        allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
        checked += 1
        if not is_problem(r, 405) or allow != expected:
            wrong.append(
                f"{service} {absent} {path}: {r.status_code} Allow={sorted(allow)} want {sorted(expected)}"
            )
    assert not wrong, "\n".join(wrong)
    assert checked > 30


def test_every_answer_says_nosniff_and_every_credentialed_operation_says_no_store(scene: Scene) -> None:
    """Every operation of the contracts that reads a credential, called with one: its answer (the real object's
    where a GET can have it, else the refusal) is not to be kept by a browser or a proxy."""
    wrong, checked = [], 0
    ids = real_ids(scene)
    for op in operations():
        path = op.fill(ids) if op.method == "get" else op.fill()  # nothing real is changed
        r = send(scene, op, credentials(scene, op) if op.secured else {}, path)
        if r.headers.get("x-content-type-options") != "nosniff":
            wrong.append(f"{op.key}: no nosniff ({r.status_code})")
        if op.secured:
            checked += 1
            if r.headers.get("cache-control") != "no-store":
                wrong.append(f"{op.key}: {r.status_code} Cache-Control={r.headers.get('cache-control')}")
    assert not wrong, "\n".join(wrong)
    assert checked > 40
    for client in (scene.registry, scene.geo, scene.requests):
        r = client.get("/v1/nothing-here")
        assert r.headers["x-content-type-options"] == "nosniff"
    # The webhook's answer carries its signing secret: kept by nobody on the way.
    hook = scene.requests.put(
        f"/v1/agencies/{scene.world.x}/webhook",
        json={"url": "https://rms.example.gov/hook", "active": False},
        headers=scene.agent("agency_admin"),
    )
    assert hook.status_code in (200, 201) and hook.headers["cache-control"] == "no-store", hook.text


FORGED = "attacker.example"


def test_a_forged_host_never_appears_in_a_link(scene: Scene) -> None:
    forged = {"Host": FORGED, "X-Forwarded-Host": FORGED}
    x = scene.world.x
    lon, lat = scene.a_lonlat
    answers = [
        scene.geo.get(
            "/v1/cameras/radius",
            params={"lon": lon, "lat": lat, "radius_m": 500, "limit": 1},
            headers={**scene.agent("investigator"), **forged},
        ),
        scene.geo.get(
            "/v1/cameras/nearest", params={"lon": lon, "lat": lat}, headers={**scene.agent("cad"), **forged}
        ),
        scene.geo.get("/v1/ogc", headers={**scene.agent("investigator"), **forged}),
        scene.geo.get("/v1/ogc/collections", headers={**scene.agent("investigator"), **forged}),
        scene.geo.get(
            "/v1/ogc/collections/cameras/items",
            params={"limit": 1},
            headers={**scene.agent("investigator"), **forged},
        ),
        scene.registry.get("/v1/agencies", params={"limit": 1}, headers=forged),
        scene.requests.get(
            "/v1/requests", params={"limit": 1}, headers={**scene.agent("investigator"), **forged}
        ),
        scene.registry.get(
            f"/v1/agencies/{x}/reconfirmations-due",
            params={"limit": 1},
            headers={**scene.agent("agency_admin"), **forged},
        ),
    ]
    # The TileJSON's tile URL template is a link too, though not under `links`.
    tilejson = scene.geo.get("/v1/tiles/cameras.json", headers={**scene.agent("investigator"), **forged})
    assert tilejson.status_code == 200, tilejson.text
    assert FORGED not in tilejson.text, tilejson.text[:300]
    assert all(t.startswith(client_base(scene, tilejson)) for t in tilejson.json()["tiles"]), tilejson.text
    linked = 0
    for r in answers:
        assert r.status_code == 200, (r.request.url, r.text)
        assert FORGED not in r.text, (r.request.url, r.text[:300])
        links = [lk["href"] for lk in r.json().get("links", [])]
        linked += bool(links)
        for href in links:
            assert href.startswith(str(client_base(scene, r))), href
    assert linked >= 6


def client_base(scene: Scene, r: httpx.Response) -> str:
    port = r.request.url.port
    return f"http://127.0.0.1:{port}/"


def test_a_requests_cursor_still_pages_and_one_at_the_calendars_edge_is_a_400(scene: Scene) -> None:
    scene.draft()
    h = scene.agent("investigator")
    first = scene.requests.get("/v1/requests", params={"limit": 1}, headers=h).json()
    nxt = next(lk["href"] for lk in first["links"] if lk["rel"] == "next")
    second = httpx.get(nxt, headers=h)
    assert second.status_code == 200 and second.json()["items"][0]["id"] != first["items"][0]["id"]
    edge = encode_cursor({"at": "0001-01-01T00:00:00+14:00", "id": str(uuid.uuid4())})
    r = scene.requests.get("/v1/requests", params={"limit": 1, "cursor": edge}, headers=h)
    assert is_problem(r, 400), r.text
