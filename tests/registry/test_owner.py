"""Owner self-service with the management credential: read, update with If-Match, cameras, pause/withdraw,
sharing (and the `cameras.visible_to` column geo_query relies on), re-confirmation, rotation, re-issue, delete."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import Token
from tests.registry.conftest import NewAgency, Register, fresh_email, owner, point, reset_settled
from tests.support import Db

PROBLEM = "application/problem+json"


def _visible_to(db: Any, rid: str) -> list[set[str]]:
    rows = db.fetch(
        "SELECT visible_to, owner_kind FROM registry.cameras WHERE registration_id = $1 ORDER BY id",
        uuid.UUID(rid),
    )
    return [{str(a) for a in r["visible_to"]} for r in rows]


def test_owner_a_cannot_read_or_change_owner_bs_registration(
    registry: httpx.Client, new_agency: NewAgency, register: Register
) -> None:
    a = new_agency()
    _reg_a, cred_a = register(a)
    reg_b, cred_b = register(a)
    b_url = f"/v1/registrations/{reg_b['id']}"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("GET", {}),
        ("PATCH", {"json": {"business_name": "mine now"}, "headers": {"If-Match": '"1"'}}),
        ("DELETE", {}),
        ("POST", {"url": b_url + "/cameras", "json": {}}),
        ("POST", {"url": b_url + "/credential"}),
        ("POST", {"url": b_url + "/live-windows", "json": {}}),
    ]
    for method, extra in cases:
        url = extra.pop("url", b_url)
        headers = {**owner(cred_a), **extra.pop("headers", {})}
        r = registry.request(method, url, headers=headers, **extra)
        assert r.status_code == 404, (method, url, r.text)
        assert r.headers["content-type"] == PROBLEM
    # A's credential with B's id spliced in is just a wrong secret.
    forged = f"cvo_{uuid.UUID(reg_b['id']).hex}_{cred_a.split('_', 2)[2]}"
    assert registry.get(b_url, headers=owner(forged)).status_code == 401
    assert registry.get(b_url).status_code == 401
    b = registry.get(b_url, headers=owner(cred_b))
    assert b.status_code == 200 and b.json()["properties"]["business_name"] is None
    assert b.json()["properties"]["version"] == 1


def test_update_needs_if_match_and_a_stale_one_gets_412(
    registry: httpx.Client, new_agency: NewAgency, register: Register
) -> None:
    a = new_agency()
    reg, cred = register(a)
    url = f"/v1/registrations/{reg['id']}"
    r = registry.patch(url, json={"business_name": "Bakery"}, headers=owner(cred))
    assert r.status_code == 428 and r.headers["content-type"] == PROBLEM
    r = registry.patch(url, json={"business_name": "Bakery"}, headers={**owner(cred), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    stale = registry.patch(url, json={"business_name": "Other"}, headers={**owner(cred), "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    assert registry.get(url, headers=owner(cred)).json()["properties"]["business_name"] == "Bakery"
    r = registry.patch(
        url,
        json={"contact": {"phone": "+14145550100", "email": None}, "owner_kind": "business"},
        headers={**owner(cred), "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    contact = r.json()["properties"]["contact"]
    assert contact["email"] is None and contact["phone"] == "+14145550100"
    r = registry.patch(url, json={"contact": {"phone": None}}, headers={**owner(cred), "If-Match": '"3"'})
    assert r.status_code == 422  # one way to reach the owner must remain
    r = registry.patch(url, json={"agency": "elsewhere"}, headers={**owner(cred), "If-Match": '"3"'})
    assert r.status_code == 422
    r = registry.patch(url, json={"status": None}, headers={**owner(cred), "If-Match": '"3"'})
    assert r.status_code == 422
    r = registry.patch(url, json={"location": point(a.outside())}, headers={**owner(cred), "If-Match": '"3"'})
    assert r.status_code == 422 and a.slug in r.json()["detail"]


def test_visible_to_follows_pause_withdraw_sharing_and_owner_kind(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    state = new_agency()
    reg, cred = register(city, cameras=[{}, {"location": point(city.inside(0.001, 0.001))}])
    rid, url = reg["id"], f"/v1/registrations/{reg['id']}"
    assert _visible_to(db, rid) == [{city.id}, {city.id}]

    def patch(body: dict[str, Any]) -> dict[str, Any]:
        etag = registry.get(url, headers=owner(cred)).headers["etag"]
        r = registry.patch(url, json=body, headers={**owner(cred), "If-Match": etag})
        assert r.status_code == 200, r.text
        return r.json()

    assert patch({"share_with": [county.slug, state.slug]})["properties"]["shared_with"] == sorted(
        [city.slug, county.slug, state.slug]
    )
    assert _visible_to(db, rid) == [{city.id, county.id, state.id}] * 2
    patch({"status": "paused"})
    assert _visible_to(db, rid) == [set(), set()]
    patch({"share_with": [county.slug]})  # sharing changes while paused stay hidden
    assert _visible_to(db, rid) == [set(), set()]
    patch({"status": "active"})
    assert _visible_to(db, rid) == [{city.id, county.id}] * 2
    patch({"share_with": []})  # the program's agency always remains
    assert _visible_to(db, rid) == [{city.id}] * 2
    patch({"owner_kind": "school"})
    kinds = db.fetch(
        "SELECT DISTINCT owner_kind FROM registry.cameras WHERE registration_id = $1", uuid.UUID(rid)
    )
    assert [k["owner_kind"] for k in kinds] == ["school"]
    patch({"status": "withdrawn"})
    assert _visible_to(db, rid) == [set(), set()]
    # A camera added while withdrawn stays hidden too; added while active it is visible at once.
    r = registry.post(url + "/cameras", json={"label": "side"}, headers=owner(cred))
    assert r.status_code == 201
    assert _visible_to(db, rid) == [set()] * 3
    patch({"status": "active", "share_with": [state.slug]})
    r = registry.post(url + "/cameras", json={"label": "back"}, headers=owner(cred))
    assert _visible_to(db, rid) == [{city.id, state.id}] * 4


def test_owner_adds_changes_and_removes_cameras(
    registry: httpx.Client, new_agency: NewAgency, register: Register
) -> None:
    a = new_agency()
    reg, cred = register(a)
    url = f"/v1/registrations/{reg['id']}"
    only = reg["properties"]["cameras"][0]["id"]
    r = registry.delete(f"{url}/cameras/{only}", headers=owner(cred))
    assert r.status_code == 409  # the last camera: pause, withdraw or delete instead
    r = registry.post(
        url + "/cameras",
        json={"location": point(a.inside(0.002, 0)), "direction_deg": 45},
        headers=owner(cred),
    )
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == '"2"'
    cams = r.json()["properties"]["cameras"]
    assert len(cams) == 2
    new = next(c for c in cams if c["id"] != only)
    assert r.headers["location"] == f"{url}/cameras/{new['id']}"
    r = registry.post(url + "/cameras", json={"location": point(a.outside())}, headers=owner(cred))
    assert r.status_code == 422 and a.name in r.json()["detail"]
    r = registry.patch(f"{url}/cameras/{new['id']}", json={"direction_deg": 90}, headers=owner(cred))
    assert r.status_code == 428
    r = registry.patch(
        f"{url}/cameras/{new['id']}",
        json={"direction_deg": 90, "covers": ["alley"], "live_mode": "on_alert"},
        headers={**owner(cred), "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    changed = next(c for c in r.json()["properties"]["cameras"] if c["id"] == new["id"])
    assert (changed["direction_deg"], changed["covers"], changed["live_mode"]) == (90, ["alley"], "on_alert")
    r = registry.patch(
        f"{url}/cameras/{new['id']}", json={"live_mode": None}, headers={**owner(cred), "If-Match": '"3"'}
    )
    assert r.status_code == 422
    r = registry.delete(f"{url}/cameras/{new['id']}", headers=owner(cred))
    assert r.status_code == 200 and [c["id"] for c in r.json()["properties"]["cameras"]] == [only]
    assert registry.delete(f"{url}/cameras/{uuid.uuid4()}", headers=owner(cred)).status_code == 404


def test_rotating_the_credential_stops_the_old_one(
    registry: httpx.Client, new_agency: NewAgency, register: Register
) -> None:
    a = new_agency()
    reg, cred = register(a)
    url = f"/v1/registrations/{reg['id']}"
    r = registry.post(url + "/credential", headers=owner(cred))
    assert r.status_code == 200, r.text
    new = r.json()["credential"]
    assert new != cred and r.json()["registration_id"] == reg["id"]
    assert r.headers["cache-control"] == "no-store"
    assert registry.get(url, headers=owner(cred)).status_code == 401
    assert registry.get(url, headers=owner(new)).status_code == 200


def test_lost_credential_is_reissued_through_the_emailed_code_without_revealing_addresses(
    registry: httpx.Client, new_agency: NewAgency, register: Register, mailbox: Any, db: Db
) -> None:
    a = new_agency()
    email = fresh_email()
    reg, cred = register(a, email=email)
    url = f"/v1/registrations/{reg['id']}"
    known = registry.post("/v1/credential-resets", json={"email": email.upper()})
    unknown = registry.post("/v1/credential-resets", json={"email": fresh_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    mail = mailbox.wait_for(email, lambda m: "cvr_" in m.get_payload(decode=True).decode())
    found = re.search(r"cvr_[A-Za-z0-9_-]+", mail.get_payload(decode=True).decode())
    assert found is not None
    token = found.group(0)
    assert reg["id"] in mail.get_payload(decode=True).decode()
    # Asking again at once sends no second code (an inbox cannot be flooded), with the same answer: once that
    # request's look-up has run and committed what it decided, there is still one code, and one mail.
    assert reset_settled(registry, db, email).json() == known.json()
    codes = "SELECT count(*) FROM registry.credential_resets WHERE registration_id = $1"
    assert db.fetchval(codes, uuid.UUID(reg["id"])) == 1
    assert len([m for m in mailbox.to(email) if "cvr_" in m.get_payload(decode=True).decode()]) == 1
    r = registry.post("/v1/credential-resets/redeem", json={"token": token})
    assert r.status_code == 200, r.text
    new = r.json()["credential"]
    assert registry.get(url, headers=owner(cred)).status_code == 401
    assert registry.get(url, headers=owner(new)).status_code == 200
    again = registry.post("/v1/credential-resets/redeem", json={"token": token})
    assert again.status_code == 400 and again.headers["content-type"] == PROBLEM
    assert registry.post("/v1/credential-resets/redeem", json={"token": "cvr_" + "x" * 40}).status_code == 400
    assert registry.post("/v1/credential-resets", json={"email": "nope"}).status_code == 422


def test_reconfirmation_is_listed_for_the_agency_until_the_owner_reconfirms(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency(reconfirm_after_days=365)
    reg, cred = register(a)
    fresh, _ = register(a)
    rid = uuid.UUID(reg["id"])
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '400 days' WHERE id = $1", rid
    )
    url = f"/v1/agencies/{a.slug}/reconfirmations-due"
    r = registry.get(url, headers=auth("advocate", a.slug))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == [reg["id"]]
    assert datetime.fromisoformat(items[0]["reconfirm_due_at"]) < datetime.now(UTC)
    soon = registry.get(url, params={"within_days": 366}, headers=auth("advocate", a.slug)).json()["items"]
    assert {i["id"] for i in soon} == {reg["id"], fresh["id"]}
    r = registry.post(f"/v1/registrations/{reg['id']}/confirmation", headers=owner(cred))
    assert r.status_code == 200
    assert r.json()["properties"]["version"] == 2
    assert registry.get(url, headers=auth("advocate", a.slug)).json()["items"] == []
    other = new_agency()
    assert registry.get(url, headers=auth("advocate", other.slug)).status_code == 403
    assert registry.get(url, headers=auth("investigator", a.slug)).status_code == 403
    assert registry.get(url, params={"within_days": -1}, headers=auth("advocate", a.slug)).status_code == 400


def test_reconfirmation_listing_pages(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    ids = {register(a)[0]["id"] for _ in range(3)}
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '800 days'"
        " WHERE agency_id = $1",
        uuid.UUID(a.id),
    )
    url = f"/v1/agencies/{a.slug}/reconfirmations-due"
    first = registry.get(url, params={"limit": 2}, headers=auth("supervisor", a.slug)).json()
    assert len(first["items"]) == 2
    nxt = first["links"][0]["href"]
    second = httpx.get(nxt, headers=auth("supervisor", a.slug)).json()
    assert {i["id"] for i in first["items"] + second["items"]} == ids


def test_delete_removes_every_row_and_the_audit_keeps_only_the_pseudonymous_id(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any, mailbox: Any
) -> None:
    a = new_agency()
    other = new_agency()
    email = fresh_email()
    phone = "+14145550142"
    body, cred = register(
        a,
        email=email,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        share_with=[other.slug],
        address="99 Secret Lane",
        cameras=[{"live_mode": "on_alert", "live_endpoint": "rtsps://secret.example/1"}],
    )
    rid = body["id"]
    url = f"/v1/registrations/{rid}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    registry.patch(url, json={"contact": {"phone": phone}}, headers={**owner(cred), "If-Match": etag})
    assert (
        registry.post(url + "/live-windows", json={"duration_s": 600}, headers=owner(cred)).status_code == 201
    )
    registry.post("/v1/credential-resets", json={"email": email})
    mailbox.wait_for(email, lambda m: "cvr_" in m.get_payload(decode=True).decode())
    uid = uuid.UUID(rid)
    # As if an import were still holding this owner's credential for delivery (those rows have no foreign key).
    db.execute(
        "INSERT INTO registry.import_credentials (registration_id, job_id, ordinal, external_id, delivery,"
        " credential_enc) VALUES ($1, $2, 1, 'ext-1', 'report', '\\x00')",
        uid,
        uuid.uuid4(),
    )
    tables = [
        "cameras",
        "registration_shares",
        "live_windows",
        "credential_resets",
        "idempotency_keys",
        "import_credentials",
    ]
    for t in tables:
        sql = f"SELECT count(*) FROM registry.{t} WHERE registration_id = $1"  # noqa: S608 - table names
        assert db.fetchval(sql, uid) >= 1, t

    assert registry.delete(url, headers={**owner(cred), "If-Match": '"1"'}).status_code == 412
    r = registry.delete(url, headers=owner(cred))
    assert r.status_code == 204
    assert db.fetchval("SELECT count(*) FROM registry.registrations WHERE id = $1", uid) == 0
    for t in tables:
        sql = f"SELECT count(*) FROM registry.{t} WHERE registration_id = $1"  # noqa: S608 - table names
        assert db.fetchval(sql, uid) == 0, t
    # Nothing personal anywhere in the registry schema, and the audit names the registration by id only.
    for needle in (email, phone, "99 Secret Lane", "secret.example"):
        hits = db.fetchval(
            "SELECT count(*) FROM audit.events WHERE details::text LIKE '%' || $1 || '%'"
            " OR actor LIKE '%' || $1 || '%' OR coalesce(subject_id, '') LIKE '%' || $1 || '%'",
            needle,
        )
        assert hits == 0, needle
    actions = {r["action"] for r in db.fetch("SELECT action FROM audit.events WHERE subject_id = $1", rid)}
    assert {"registration.update", "registration.delete"} <= actions
    assert registry.get(url, headers=owner(cred)).status_code == 401


def _reset_code(mailbox: Any, email: str) -> str:
    mail = mailbox.wait_for(email, lambda m: "cvr_" in m.get_payload(decode=True).decode())
    found = re.search(r"cvr_[A-Za-z0-9_-]+", mail.get_payload(decode=True).decode())
    assert found is not None
    return found.group(0)


def test_a_reset_code_mailed_to_the_old_address_dies_with_an_email_change(
    registry: httpx.Client, new_agency: NewAgency, register: Register, mailbox: Any, db: Any
) -> None:
    a = new_agency()
    old, new = fresh_email(), fresh_email()
    reg, cred = register(a, email=old)
    url = f"/v1/registrations/{reg['id']}"
    assert registry.post("/v1/credential-resets", json={"email": old}).status_code == 202
    code = _reset_code(mailbox, old)
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"contact": {"email": new}}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert (
        db.fetchval(
            "SELECT count(*) FROM registry.credential_resets WHERE registration_id = $1", uuid.UUID(reg["id"])
        )
        == 0
    )
    redeem = registry.post("/v1/credential-resets/redeem", json={"token": code})
    assert redeem.status_code == 400 and redeem.headers["content-type"] == PROBLEM
    assert registry.get(url, headers=owner(cred)).status_code == 200  # the owner's credential is untouched

    # A change of something else leaves a pending code alone.
    db.execute("DELETE FROM registry.credential_resets WHERE registration_id = $1", uuid.UUID(reg["id"]))
    assert registry.post("/v1/credential-resets", json={"email": new}).status_code == 202
    code = _reset_code(mailbox, new)
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(
        url, json={"contact": {"email": new, "hours": "evenings"}}, headers={**owner(cred), "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    assert registry.post("/v1/credential-resets/redeem", json={"token": code}).status_code == 200


def test_a_reset_requested_while_an_email_change_waits_issues_no_code_to_the_old_address(
    registry: httpx.Client,
    new_agency: NewAgency,
    register: Register,
    mailbox: Any,
    db: Any,
    database_url: str,
) -> None:
    """The owner's email change and a reset for the old address both wait on the registration, held by the test:
    the change goes first, and the reset, which looked the address up before, issues no code to it."""
    import threading

    from tests.support import Db

    a = new_agency()
    old, new = fresh_email(), fresh_email()
    reg, cred = register(a, email=old)
    rid = uuid.UUID(reg["id"])
    url = f"/v1/registrations/{reg['id']}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    holder = Db(database_url)

    def waiting() -> int:
        """Sessions of this database waiting for a lock."""
        return int(
            db.fetchval(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
                " AND pid IN (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
            )
        )

    def until(check: Any) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    patched: list[httpx.Response] = []
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM registry.registrations WHERE id = $1 FOR UPDATE", rid)
        change = threading.Thread(
            target=lambda: patched.append(
                registry.patch(
                    url, json={"contact": {"email": new}}, headers={**owner(cred), "If-Match": etag}
                )
            )
        )
        change.start()
        until(lambda: waiting() == 1)  # the change waits on the registration
        assert registry.post("/v1/credential-resets", json={"email": old}).status_code == 202
        until(lambda: waiting() == 2)  # and so does the reset's work
        holder.execute("COMMIT")
        change.join(20)
        assert patched and patched[0].status_code == 200, patched
        until(lambda: waiting() == 0)
        until(
            lambda: (
                not db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state <> 'idle' AND query LIKE '%credential_resets%' AND pid <> pg_backend_pid()"
                )
            )
        )
    finally:
        holder.close()
    assert db.fetchval("SELECT count(*) FROM registry.credential_resets WHERE registration_id = $1", rid) == 0
    # The reset for the new address works (no code left behind holds it back for the cool-down).
    assert registry.post("/v1/credential-resets", json={"email": new}).status_code == 202
    assert (
        registry.post("/v1/credential-resets/redeem", json={"token": _reset_code(mailbox, new)}).status_code
        == 200
    )
    assert not any("cvr_" in m.get_payload(decode=True).decode() for m in mailbox.to(old))
