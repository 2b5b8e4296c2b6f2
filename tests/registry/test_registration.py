"""One-call registration: the minimum form, the full form, normalised contacts, jurisdiction rules, idempotency,
and bad input answered with a clear 4xx."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from services.registry_api.idempotency import KEYS
from shared.settings import get_settings
from tests.conftest import Token
from tests.registry.conftest import NewAgency, Register, fresh_email, owner, point

PROBLEM = "application/problem+json"


def test_minimum_registration_gives_a_geojson_feature_a_credential_and_one_camera(
    registry: httpx.Client, new_agency: NewAgency, db: Any
) -> None:
    a = new_agency()
    r = registry.post(
        "/v1/registrations",
        json={"agency": a.slug, "location": point(a.inside()), "contact": {"phone": "(414) 555-0123"}},
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["type"] == "Feature" and body["geometry"] == point(a.inside())
    props = body["properties"]
    assert props["agency"] == a.slug and props["status"] == "active" and props["owner_kind"] == "residential"
    assert props["contact"]["phone"] == "+14145550123"  # E.164
    assert props["shared_with"] == [a.slug]
    assert props["source"] == "owner" and props["registered_by"] is None
    assert len(props["cameras"]) == 1 and props["cameras"][0]["location"] == point(a.inside())
    assert body["credential"].startswith(f"cvo_{uuid.UUID(body['id']).hex}_")
    assert body["credential_delivery"] == "response"
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/registrations/{body['id']}"
    assert r.headers["cache-control"] == "no-store"  # personal data and a secret
    # Only the credential's hash is stored.
    stored = db.fetchval(
        "SELECT credential_hash FROM registry.registrations WHERE id = $1", uuid.UUID(body["id"])
    )
    assert body["credential"].split("_", 2)[2].encode() not in bytes(stored)
    assert (
        registry.get(f"/v1/registrations/{body['id']}", headers=owner(body["credential"])).status_code == 200
    )


def test_full_registration_keeps_every_camera_detail(registry: httpx.Client, new_agency: NewAgency) -> None:
    a = new_agency()
    body = {
        "agency": a.slug,
        "location": point(a.inside()),
        "address": "12 Elm St",
        "contact": {
            "name": "Dana Rivera",
            "email": "Dana.Rivera@Example.org",
            "phone": "020 7946 0018",
            "phone_region": "GB",
            "preferred_method": "sms",
            "hours": "after 5 pm",
        },
        "owner_kind": "place_of_worship",
        "business_name": "St. Anne's",
        "cameras": [
            {
                "location": point(a.inside(0.0001, 0.0001)),
                "label": "door",
                "direction_deg": 359,
                "fov_deg": 90,
                "range_m": 12.5,
                "placement": "outdoor",
                "covers": ["street", "parking"],
                "retention_days": 30,
                "recording": "scheduled",
                "schedule": "nights",
                "shares_history": False,
                "live_mode": "emergency",
                "live_endpoint": "rtsps://cam.example.net/1",
            },
            {"placement": "indoor"},
        ],
        "notes_for_investigators": "Call first",
        "terms": {"version": "2026-01", "accepted_at": "2026-11-01T10:00:00+01:00"},
    }
    r = registry.post("/v1/registrations", json=body)
    assert r.status_code == 201, r.text
    props = r.json()["properties"]
    assert props["contact"] == {
        "name": "Dana Rivera",
        "email": "Dana.Rivera@example.org",  # the domain is normalised, the local part kept
        "phone": "+442079460018",
        "preferred_method": "sms",
        "hours": "after 5 pm",
    }
    assert props["address"] == "12 Elm St" and props["owner_kind"] == "place_of_worship"
    assert props["terms"] == {"version": "2026-01", "accepted_at": "2026-11-01T09:00:00Z"}
    first, second = props["cameras"]
    assert first["direction_deg"] == 359 and first["covers"] == ["street", "parking"]
    assert first["shares_history"] is False and first["live_mode"] == "emergency"
    assert first["live_endpoint"] == "rtsps://cam.example.net/1" and first["schedule"] == "nights"
    assert second["location"] == point(a.inside()) and second["placement"] == "indoor"


def test_camera_outside_the_agencys_jurisdiction_is_a_422_naming_the_agency(
    registry: httpx.Client, new_agency: NewAgency
) -> None:
    a = new_agency()
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": a.slug,
            "location": point(a.inside()),
            "contact": {"email": fresh_email()},
            "cameras": [{"location": point(a.inside())}, {"location": point(a.outside())}],
        },
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert a.name in problem["detail"] and a.slug in problem["detail"] and "jurisdiction" in problem["detail"]
    assert "/v1/agencies/covering" in problem["detail"]
    assert [e["pointer"] for e in problem["errors"]] == ["/body/cameras/1/location"]
    assert problem["agency"] == a.slug
    r = registry.post(
        "/v1/registrations",
        json={"agency": a.slug, "location": point(a.outside()), "contact": {"email": fresh_email()}},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/location"


def test_bad_registration_input_is_a_422_naming_the_member(
    registry: httpx.Client, new_agency: NewAgency
) -> None:
    a = new_agency()

    def body(**changes: Any) -> dict[str, Any]:
        b: dict[str, Any] = {
            "agency": a.slug,
            "location": point(a.inside()),
            "contact": {"email": fresh_email()},
        }
        b.update(changes)
        return b

    cases = [
        (body(contact={}), "/body/contact"),
        (body(contact={"email": "not-an-email"}), "/body/contact/email"),
        (body(contact={"phone": "12"}), "/body/contact/phone"),
        (body(contact={"phone": "555-0123", "phone_region": "USA"}), "/body/contact/phone_region"),
        (body(colour="red"), "/body/colour"),
        (body(owner_kind="castle"), "/body/owner_kind"),
        (body(cameras=[{"direction_deg": 360}]), "/body/cameras/0/direction_deg"),
        (body(cameras=[{"direction_deg": "90"}]), "/body/cameras/0/direction_deg"),
        (body(cameras=[{"direction_deg": 90.5}]), "/body/cameras/0/direction_deg"),
        (body(cameras=[{"fov_deg": 0}]), "/body/cameras/0/fov_deg"),
        (body(cameras=[{"range_m": -1}]), "/body/cameras/0/range_m"),
        (body(cameras=[{"retention_days": True}]), "/body/cameras/0/retention_days"),
        (body(cameras=[{"shares_history": "yes"}]), "/body/cameras/0/shares_history"),
        (body(cameras=[{"live_endpoint": "javascript:alert(1)"}]), "/body/cameras/0/live_endpoint"),
        (body(cameras=[{"wheels": 4}]), "/body/cameras/0/wheels"),
        (body(cameras=[]), "/body/cameras"),
        (body(location={"type": "Point", "coordinates": [500, 0]}), "/body/location"),
        (body(location={"type": "Point", "coordinates": ["a", 0]}), "/body/location"),
        (body(business_name="x" * 201), "/body/business_name"),
        (body(business_name="nul\u0000byte"), "/body/business_name"),
        (body(notes_for_investigators="\ud800"), "/body/notes_for_investigators"),
        (body(terms={"version": "1", "accepted_at": "2026-01-01T00:00:00"}), "/body/terms/accepted_at"),
        (body(agency="nobody-here"), "/body/agency"),
        (body(share_with=["nobody-here"]), "/body/share_with/0"),
    ]
    for b, pointer in cases:
        # json.dumps escapes to ASCII, so a lone surrogate travels as the JSON escape \ud800.
        r = registry.post(
            "/v1/registrations", content=json.dumps(b), headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (pointer, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM
        pointers = [e["pointer"] for e in r.json()["errors"]]
        assert any(p.startswith(pointer) for p in pointers), (pointer, pointers)
    r = registry.post(
        "/v1/registrations", content=b'{"agency": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM


def test_injection_strings_are_stored_and_returned_as_plain_data(
    registry: httpx.Client, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    nasty = "Robert'); DROP TABLE registry.cameras;-- <script>alert(1)</script> {{7*7}} ${jndi:x}"
    reg, cred = register(a, business_name=nasty, notes_for_investigators=nasty, address=nasty)
    assert reg["properties"]["business_name"] == nasty
    again = registry.get(f"/v1/registrations/{reg['id']}", headers=owner(cred)).json()
    assert again["properties"]["notes_for_investigators"] == nasty and again["properties"]["address"] == nasty
    assert db.fetchval("SELECT count(*) FROM registry.cameras") >= 1


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    registry: httpx.Client, new_agency: NewAgency, db: Any
) -> None:
    a = new_agency()
    key = str(uuid.uuid4())
    email = fresh_email()
    body = {"agency": a.slug, "location": point(a.inside()), "contact": {"email": email}}
    first = registry.post("/v1/registrations", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    again = registry.post("/v1/registrations", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json() == first.json()  # the same registration and the same credential
    assert again.headers["etag"] == first.headers["etag"] and again.headers["idempotent-replayed"] == "true"
    rid = uuid.UUID(first.json()["id"])
    count = db.fetchval(
        "SELECT count(*) FROM registry.registrations WHERE agency_id = (SELECT id FROM registry.agencies WHERE slug = $1)",
        a.slug,
    )
    assert count == 1
    # The stored replay is sealed: the owner's address is not in it in clear.
    sealed = db.fetchval("SELECT body FROM registry.idempotency_keys WHERE registration_id = $1", rid)
    assert email.encode() not in bytes(sealed)
    other = registry.post(
        "/v1/registrations", json={**body, "business_name": "changed"}, headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
    assert "Idempotency-Key" in other.json()["detail"]
    assert (
        registry.post("/v1/registrations", json=body, headers={"Idempotency-Key": "short"}).status_code == 422
    )


def test_advocate_registration_is_recorded_as_such_and_the_owner_gets_the_credential_by_mail(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, mailbox: Any, db: Any
) -> None:
    a = new_agency()
    email = fresh_email()
    advocate = auth("advocate", a.slug, sub="advocate-jane")
    r = registry.post(
        "/v1/registrations",
        json={"agency": a.slug, "location": point(a.inside()), "contact": {"email": email}},
        headers=advocate,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert (
        body["properties"]["source"] == "advocate" and body["properties"]["registered_by"] == "advocate-jane"
    )
    assert body["credential"] is None and body["credential_delivery"] == "email"
    mail = mailbox.wait_for(email)
    text = mail.get_payload(decode=True).decode()
    credential = next(w for w in text.split() if w.startswith("cvo_"))
    assert registry.get(f"/v1/registrations/{body['id']}", headers=owner(credential)).status_code == 200
    row = db.fetch(
        "SELECT source, registered_by FROM registry.registrations WHERE id = $1", uuid.UUID(body["id"])
    )[0]
    assert (row["source"], row["registered_by"]) == ("advocate", "advocate-jane")
    audit = db.fetch(
        "SELECT actor, actor_role, action FROM audit.events WHERE subject_id = $1 AND action = 'registration.create'",
        body["id"],
    )
    assert [(e["actor"], e["actor_role"]) for e in audit] == [("advocate-jane", "advocate")]

    # Without an email the advocate reads the credential to the owner on the phone.
    r = registry.post(
        "/v1/registrations",
        json={"agency": a.slug, "location": point(a.inside()), "contact": {"phone": "+14145550199"}},
        headers=advocate,
    )
    assert r.status_code == 201 and r.json()["credential"].startswith("cvo_")

    # Advocates register with their own agency's program only; other agency roles do not register at all.
    other = new_agency()
    r = registry.post(
        "/v1/registrations",
        json={"agency": other.slug, "location": point(other.inside()), "contact": {"email": email}},
        headers=advocate,
    )
    assert r.status_code == 403
    r = registry.post(
        "/v1/registrations",
        json={"agency": a.slug, "location": point(a.inside()), "contact": {"email": email}},
        headers=auth("investigator", a.slug),
    )
    assert r.status_code == 403


def test_an_advocate_cannot_turn_on_live_sharing_for_the_owner(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, db: Any
) -> None:
    """Live sharing is a mode only the owner sets: an advocate's registration may not carry a live mode or a
    stream endpoint, and nothing is stored when it tries."""
    a = new_agency()
    advocate = auth("advocate", a.slug, sub="advocate-live")
    before = db.fetchval("SELECT count(*) FROM registry.registrations WHERE registered_by = 'advocate-live'")
    for camera, pointer in [
        ({"live_mode": "emergency"}, "/body/cameras/0/live_mode"),
        ({"live_endpoint": "rtsps://cam.example.net:322/stream1"}, "/body/cameras/0/live_endpoint"),
    ]:
        r = registry.post(
            "/v1/registrations",
            json={
                "agency": a.slug,
                "location": point(a.inside()),
                "contact": {"phone": "+14145550123"},
                "cameras": [{"location": point(a.inside()), **camera}],
            },
            headers=advocate,
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["pointer"] == pointer
    after = db.fetchval("SELECT count(*) FROM registry.registrations WHERE registered_by = 'advocate-live'")
    assert after == before


def test_an_idempotency_key_belongs_to_its_caller_and_starts_afresh_after_the_window(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, db: Any
) -> None:
    a = new_agency()
    key = str(uuid.uuid4())
    body = {"agency": a.slug, "location": point(a.inside()), "contact": {"phone": "+14145550100"}}
    jane = {**auth("advocate", a.slug, sub="advocate-jane"), "Idempotency-Key": key}
    joe = {**auth("advocate", a.slug, sub="advocate-joe"), "Idempotency-Key": key}
    first = registry.post("/v1/registrations", json=body, headers=jane)
    assert first.status_code == 201, first.text
    # Another advocate of the same agency with the same key registers their own owner: no replay of Jane's.
    theirs = registry.post("/v1/registrations", json=body, headers=joe)
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != first.json()["id"]
    assert theirs.json()["properties"]["registered_by"] == "advocate-joe"
    assert (
        registry.post("/v1/registrations", json=body, headers=jane).headers["idempotent-replayed"] == "true"
    )
    # Once the replay window has passed, the key starts afresh.
    db.execute(
        "UPDATE registry.idempotency_keys SET created_at = now() - make_interval(secs => $1)"
        " WHERE key = $2 AND principal = $3",
        float(get_settings().idempotency_replay_window_s + 1),
        key,
        f"{a.slug}:advocate-jane",
    )
    later = registry.post("/v1/registrations", json=body, headers=jane)
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["id"] not in (first.json()["id"], theirs.json()["id"])


def test_notification_ids_outlive_the_sweep_of_expired_idempotency_keys(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    """A notification retried after the replay window is still recognised (never mailed twice): the sweep that
    deletes expired answers (the statement registrations run, `Keys.sweep_sql`) leaves notification ids alone."""
    a = new_agency()
    reg, _ = register(a)
    service = auth("service", None, sub="requests_api")
    note = {
        "notification_id": str(uuid.uuid4()),
        "kind": "request",
        "subject": "A footage request",
        "body": "An agency asks for footage.",
    }
    url = f"/v1/registrations/{reg['id']}/notifications"
    assert registry.post(url, json=note, headers=service).json()["status"] == "sent"
    # Two days pass: the notification id and an ordinary key are both older than the window.
    old = float(get_settings().idempotency_replay_window_s * 2)
    db.execute(
        "UPDATE registry.idempotency_keys SET created_at = now() - make_interval(secs => $1) WHERE key = $2",
        old,
        note["notification_id"],
    )
    db.execute(
        "INSERT INTO registry.idempotency_keys (key, principal, request_hash, status, body, created_at)"
        " VALUES ($1, 'someone:else', '', 201, '', now() - make_interval(secs => $2))",
        key := f"expired-{uuid.uuid4()}",
        old,
    )
    sweep = KEYS.sweep_sql.replace("CAST(:sweep AS boolean)", "true").replace(":window_s", "$1")
    db.execute(sweep, float(get_settings().idempotency_replay_window_s))
    assert db.fetchval("SELECT count(*) FROM registry.idempotency_keys WHERE key = $1", key) == 0
    assert (
        db.fetchval("SELECT count(*) FROM registry.idempotency_keys WHERE key = $1", note["notification_id"])
        == 1
    )
    assert registry.post(url, json=note, headers=service).json()["status"] == "duplicate"


def test_each_refused_member_carries_a_code_and_the_limits_to_word_it(
    registry: httpx.Client, new_agency: NewAgency
) -> None:
    """The problem's `errors` name what is wrong by a stable code (pydantic's error type, or the services' own)
    with the limit crossed, so that a client can say it in its reader's language; the English reason stays."""
    a = new_agency()

    def body(**changes: Any) -> dict[str, Any]:
        b: dict[str, Any] = {
            "agency": a.slug,
            "location": point(a.inside()),
            "contact": {"email": fresh_email()},
        }
        b.update(changes)
        return b

    cases: list[tuple[dict[str, Any], str, str, dict[str, Any] | None]] = [
        (body(business_name="x" * 201), "/body/business_name", "string_too_long", {"max_length": 200}),
        (
            body(cameras=[{"direction_deg": 360}]),
            "/body/cameras/0/direction_deg",
            "less_than_equal",
            {"le": 359},
        ),
        (body(cameras=[{"fov_deg": 0}]), "/body/cameras/0/fov_deg", "greater_than_equal", {"ge": 1}),
        (
            body(cameras=[]),
            "/body/cameras",
            "too_short",
            {"field_type": "List", "min_length": 1, "actual_length": 0},
        ),
        (body(colour="red"), "/body/colour", "extra_forbidden", None),
        (body(agency=None), "/body/agency", "string_type", None),
        (body(contact={}), "/body/contact", "contact_required", None),
        (body(contact={"email": "not-an-email"}), "/body/contact/email", "email_invalid", None),
        # Of the shape of a phone number (ten digits), but no area code 111: only the service can tell.
        (body(contact={"phone": "(111) 555-0199"}), "/body/contact/phone", "phone_invalid", None),
        (body(business_name="nul\u0000byte"), "/body/business_name", "text_invalid", None),
        (body(agency="nobody-here"), "/body/agency", "unknown_agency", None),
        (body(share_with=["nobody-here"]), "/body/share_with/0", "unknown_agency", None),
        (body(location=point(a.outside())), "/body/location", "outside_jurisdiction", {"agency": a.name}),
    ]
    for b, pointer, code, params in cases:
        r = registry.post("/v1/registrations", json=b)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (pointer, r.text)
        member = next(e for e in r.json()["errors"] if e["pointer"] == pointer)
        assert member["code"] == code, (pointer, member)
        assert member.get("params") == params, (pointer, member)
        assert member["reason"], member
    # Missing altogether: pydantic's `missing`; each member of the body is named, each with its code.
    r = registry.post("/v1/registrations", json={"location": point(a.inside())})
    assert {(e["pointer"], e["code"]) for e in r.json()["errors"]} >= {("/body/agency", "missing")}
    # A query parameter given twice: the services' own code, on a 400.
    r = registry.get(f"/v1/agencies/covering?lon={a.centre[0]}&lat={a.centre[1]}&lat=0")
    assert r.status_code == 400 and r.json()["errors"] == [
        {"pointer": "/query/lat", "reason": "given more than once; it takes one value", "code": "repeated"}
    ]
