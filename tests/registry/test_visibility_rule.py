"""Who may see a registration is written once, in the database (migration 0024): `registry.sees` (the agency's
half: the owner's choices show the camera to the agency, and it lies in the agency's jurisdiction) and
`registry.visible_to` (the owner's half: the agencies shared with while active). Each test changes one function
in this run's database and checks that every answer built on it changes with it, then puts it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.conftest import Token
from tests.registry.conftest import Agency, NewAgency, Register, box, owner
from tests.support import Db

SEES = "registry.sees(uuid, geometry, uuid[], geometry)"
VISIBLE_TO = "registry.visible_to(text, uuid[])"
CASE = {"case_number": "V-1"}


@contextmanager
def rule_replaced(db: Db, signature: str, body: str) -> Iterator[None]:
    """The function `signature` returns `body` until the block ends; then it is as the migration made it."""
    original = db.fetchval("SELECT pg_get_functiondef(CAST($1 AS regprocedure))", signature)
    head = original[: original.index("RETURN ")]
    db.execute(head + "RETURN " + body)
    try:
        yield
    finally:
        db.execute(original)


def _answers(registry: httpx.Client, auth: Token, agency: Agency, rid: str, wid: str) -> dict[str, Any]:
    """Every agency-facing answer that asks whether the agency sees the registration."""
    investigator = auth("investigator", agency.slug)
    admin = auth("agency_admin", agency.slug)
    url = f"/v1/agencies/{agency.slug}"
    same = {"jurisdiction": box(agency.west, agency.south, agency.east, agency.north)}
    changed = registry.patch(url, json=same, headers={**admin, "If-Match": registry.get(url).headers["etag"]})
    assert changed.status_code == 200, changed.text
    return {
        "contact": registry.get(
            f"/v1/registrations/{rid}/contact", params=CASE, headers=investigator
        ).status_code,
        "due": [
            i["id"]
            for i in registry.get(f"/v1/agencies/{agency.slug}/reconfirmations-due", headers=admin).json()[
                "items"
            ]
        ],
        "windows": [w["id"] for w in registry.get("/v1/live-windows", headers=investigator).json()],
        "window": registry.get(f"/v1/live-windows/{wid}", headers=investigator).status_code,
        "outside": changed.json()["properties"]["registrations_outside"],
    }


def test_a_change_to_registry_sees_changes_every_agency_facing_answer(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    a = new_agency()
    reg, cred = register(
        a,
        cameras=[{"label": "door", "live_mode": "on_alert", "live_endpoint": "rtsps://cam.example.net/door"}],
    )
    rid = reg["id"]
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '800 days' WHERE id = $1",
        uuid.UUID(rid),
    )
    r = registry.post(
        f"/v1/registrations/{rid}/live-windows",
        json={"agencies": [a.slug], "duration_s": 600, "reason": "alert"},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    wid = r.json()["id"]

    seen = {"contact": 200, "due": [rid], "windows": [wid], "window": 200, "outside": 0}
    assert _answers(registry, auth, a, rid, wid) == seen
    # The rule changed in its one place: no agency sees any camera. Every answer follows.
    with rule_replaced(db, SEES, "false"):
        assert _answers(registry, auth, a, rid, wid) == {
            "contact": 404,
            "due": [],
            "windows": [],
            "window": 404,
            "outside": 1,  # shown to the agency by the owner, yet not seen by it
        }
    assert _answers(registry, auth, a, rid, wid) == seen


def test_a_change_to_registry_visible_to_changes_what_every_writer_stores(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Db
) -> None:
    a = new_agency()
    other = new_agency(within=a)
    before, cred = register(a, share_with=[other.slug])
    investigator = auth("investigator", a.slug)
    service = auth("service", None, sub="requests_api")

    def contact(rid: str) -> int:
        return registry.get(f"/v1/registrations/{rid}/contact", params=CASE, headers=investigator).status_code

    def notify(rid: str) -> int:
        note = {
            "notification_id": str(uuid.uuid4()),
            "kind": "request",
            "agency": a.slug,
            "subject": "s",
            "body": "b",
        }
        return registry.post(f"/v1/registrations/{rid}/notifications", json=note, headers=service).status_code

    assert (contact(before["id"]), notify(before["id"])) == (200, 202)
    # The rule changed in its one place: the owner's choices show a registration to nobody.
    with rule_replaced(db, VISIBLE_TO, "CAST('{}' AS uuid[])"):
        # The one-statement registration writes its cameras' copy with it...
        new, _ = register(a)
        assert contact(new["id"]) == 404
        assert db.fetchval(
            "SELECT bool_and(cardinality(visible_to) = 0) FROM registry.cameras WHERE registration_id = $1",
            uuid.UUID(new["id"]),
        )
        # ...so does every change of sharing (registry.sync_cameras)...
        url = f"/v1/registrations/{before['id']}"
        etag = registry.get(url, headers=owner(cred)).headers["etag"]
        r = registry.patch(url, json={"share_with": []}, headers={**owner(cred), "If-Match": etag})
        assert r.status_code == 200, r.text
        assert contact(before["id"]) == 404
        # ...and the consent to an agency's contact reads it.
        assert notify(before["id"]) == 410
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"share_with": [other.slug]}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert (contact(before["id"]), notify(before["id"])) == (200, 202)
