"""Agency reads of owners' contact details: only in the agency's jurisdiction, only when shared with it, only
while active, with a case number or a reason from a fixed list, and every read in the audit trail (which keeps no
free text). Everything else is a 404."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.conftest import Token
from tests.registry.conftest import NewAgency, Register, fresh_email, owner, point

PROBLEM = "application/problem+json"


def test_agency_x_reads_contacts_with_a_case_number_and_the_read_is_audited(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    x = new_agency()
    email = fresh_email()
    reg, _ = register(x, email=email, address="5 Oak Ave", notes_for_investigators="Back gate code 1234")
    url = f"/v1/registrations/{reg['id']}/contact"
    investigator = auth("investigator", x.slug, sub="det-alvarez")
    r = registry.get(url, params={"case_number": "2026-004512"}, headers=investigator)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["contact"]["email"] == email and body["address"] == "5 Oak Ave"
    assert body["notes_for_investigators"] == "Back gate code 1234"
    events = db.fetch(
        "SELECT actor, actor_role, agency, case_number, subject_type FROM audit.events"
        " WHERE action = 'registration.contact.read' AND subject_id = $1",
        reg["id"],
    )
    assert [tuple(e) for e in events] == [
        ("det-alvarez", "investigator", x.slug, "2026-004512", "registration")
    ]
    r = registry.get(url, params={"reason": "welfare_check"}, headers=auth("supervisor", x.slug))
    assert r.status_code == 200
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'registration.contact.read' AND subject_id = $1",
            reg["id"],
        )
        == 2
    )
    assert db.fetchval("SELECT ok FROM audit.verify_chain() WHERE NOT ok LIMIT 1") is None


def test_a_contact_read_before_a_case_number_keeps_a_reason_code_in_the_trail_and_never_free_text(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    x = new_agency()
    reg, _ = register(x)
    url = f"/v1/registrations/{reg['id']}/contact"
    det = auth("investigator", x.slug, sub="det-okafor")

    def reads() -> list[Any]:
        return [
            r["details"]
            for r in db.fetch(
                "SELECT details FROM audit.events WHERE action = 'registration.contact.read' AND subject_id = $1"
                " ORDER BY seq",
                reg["id"],
            )
        ]

    # Words a person types (a victim's name, a phone number) are refused before anything is read or kept.
    typed = "Dana Reyes called from 414-555-0142, her ex-partner is outside"
    for reason in (typed, "welfare check", "other"):
        r = registry.get(url, params={"reason": reason}, headers=det)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["pointer"] == "/query/reason"
        assert "welfare_check" in r.text, "the refusal names the reasons that are accepted"
    r = registry.get(url, params={"case_number": "2026-1", "reason": typed}, headers=det)
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/reason"
    assert reads() == []
    assert not db.fetchval("SELECT count(*) FROM audit.events WHERE details::text LIKE '%555-0142%'")
    # A reason from the list reads the contact; the trail keeps its code, and the case number when given.
    for reason in ("imminent_threat", "missing_person", "incident_in_progress", "welfare_check"):
        assert registry.get(url, params={"reason": reason}, headers=det).status_code == 200
    r = registry.get(url, params={"case_number": "2026-77", "reason": "missing_person"}, headers=det)
    assert r.status_code == 200
    assert [d if isinstance(d, dict) else json.loads(d) for d in reads()] == [
        {"reason": "imminent_threat"},
        {"reason": "missing_person"},
        {"reason": "incident_in_progress"},
        {"reason": "welfare_check"},
        {"reason": "missing_person"},
    ]
    assert (
        db.fetchval(
            "SELECT case_number FROM audit.events WHERE action = 'registration.contact.read' AND subject_id = $1"
            " ORDER BY seq DESC LIMIT 1",
            reg["id"],
        )
        == "2026-77"
    )
    assert db.fetchval("SELECT ok FROM audit.verify_chain() WHERE NOT ok LIMIT 1") is None


def test_agency_y_cannot_read_agency_xs_contacts_and_learns_nothing(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    x = new_agency()
    y = new_agency()
    reg, _ = register(x)
    url = f"/v1/registrations/{reg['id']}/contact"
    r = registry.get(url, params={"case_number": "Y-1"}, headers=auth("investigator", y.slug))
    missing = registry.get(
        f"/v1/registrations/{uuid.uuid4()}/contact",
        params={"case_number": "Y-1"},
        headers=auth("investigator", y.slug),
    )
    assert r.status_code == missing.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["title"] == missing.json()["title"]
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'registration.contact.read' AND subject_id = $1",
            reg["id"],
        )
        == 0
    )


def test_contact_reads_need_sharing_jurisdiction_an_active_registration_a_case_and_the_role(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    far = new_agency()
    reg, cred = register(city)
    url = f"/v1/registrations/{reg['id']}/contact"
    case = {"case_number": "C-77"}
    # The county covers the camera but the owner has not shared with it.
    assert registry.get(url, params=case, headers=auth("investigator", county.slug)).status_code == 404
    # Shared with a far agency whose jurisdiction does not hold the camera: still nothing.
    etag = registry.get(f"/v1/registrations/{reg['id']}", headers=owner(cred)).headers["etag"]
    r = registry.patch(
        f"/v1/registrations/{reg['id']}",
        json={"share_with": [county.slug, far.slug]},
        headers={**owner(cred), "If-Match": etag},
    )
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert registry.get(url, params=case, headers=auth("investigator", county.slug)).status_code == 200
    assert registry.get(url, params=case, headers=auth("investigator", far.slug)).status_code == 404
    # No case number or reason; the wrong role; no token.
    r = registry.get(url, headers=auth("investigator", city.slug))
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/query/case_number"
    assert (
        registry.get(
            url, params={"case_number": "'; DROP TABLE x;--"}, headers=auth("investigator", city.slug)
        ).status_code
        == 400
    )
    assert registry.get(url, params=case, headers=auth("advocate", city.slug)).status_code == 403
    assert registry.get(url, params=case).status_code == 401
    assert registry.get(url, params=case, headers=owner(cred)).status_code == 401
    # Paused: hidden from every agency.
    r = registry.patch(
        f"/v1/registrations/{reg['id']}", json={"status": "paused"}, headers={**owner(cred), "If-Match": etag}
    )
    assert r.status_code == 200
    assert registry.get(url, params=case, headers=auth("investigator", city.slug)).status_code == 404


def test_raw_registration_rows_hold_no_plaintext_contact_data(
    registry: httpx.Client, new_agency: NewAgency, db: Any
) -> None:
    a = new_agency()
    email = fresh_email()
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": a.slug,
            "location": point(a.inside()),
            "address": "742 Evergreen Terrace",
            "contact": {"name": "Marge Simpson", "email": email, "phone": "+1 414 555 0177"},
            "cameras": [{"live_endpoint": "rtsps://evergreen.example/cam"}],
        },
    )
    assert r.status_code == 201
    rid = uuid.UUID(r.json()["id"])
    row = db.fetch("SELECT * FROM registry.registrations WHERE id = $1", rid)[0]
    cams = db.fetch("SELECT * FROM registry.cameras WHERE registration_id = $1", rid)
    blobs = b"".join(
        bytes(v) if isinstance(v, (bytes, bytearray, memoryview)) else str(v).encode()
        for rec in [row, *cams]
        for v in rec.values()
        if v is not None
    )
    for secret in (
        email,
        email.split("@")[0],
        "+14145550177",
        "4145550177",
        "Marge Simpson",
        "742 Evergreen",
        "evergreen.example",
    ):
        assert secret.encode() not in blobs, secret
        assert secret.encode("utf-16-le") not in blobs
    # Sealed with a key id, so keys can rotate.
    assert row["key_id"] and bytes(row["contact_email_enc"]).startswith(row["key_id"].encode() + b"\x00")
    # The whole database, as text, does not hold them either.
    dump = db.fetchval("SELECT string_agg(t::text, ' ') FROM registry.registrations t WHERE id = $1", rid)
    assert email not in dump and "Marge" not in dump
