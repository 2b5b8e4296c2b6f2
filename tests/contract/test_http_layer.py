"""The HTTP layer every service shares, checked on every operation of the published contracts: who may call at
all (a token for an agency Canvass does not know), query strictness, media types, methods and headers."""

from __future__ import annotations

import uuid

import httpx

from shared.auth import ROLES, mint_token
from tests.contract.conftest import Scene
from tests.contract.operations import Operation, operations

PROBLEM = "application/problem+json"
AGENCY_ROLES = [r for r in ROLES if r != "service"]


def client_of(scene: Scene, op: Operation) -> httpx.Client:
    return {"registry_api": scene.registry, "geo_query": scene.geo, "requests_api": scene.requests}[
        op.service
    ]


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
