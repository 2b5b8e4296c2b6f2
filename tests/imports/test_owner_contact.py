"""An integrator cannot take over an owner's registration: an owner with an email is mailed their credential
whatever the import asked for (the report carries only the credentials of owners without an email), and a
re-import never changes a registration's contact, to which a lost credential is re-issued."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from shared.crypto import keyring
from tests.conftest import Token
from tests.imports.conftest import (
    CREDENTIAL,
    NO_EMAIL,
    Importer,
    collection,
    feature_at,
    mailed_credential,
    report,
)
from tests.registry.conftest import NewAgency, fresh_email, owner, reset_settled
from tests.support import Mailbox, open_owner_text

CONTACT_COLUMNS = (
    "contact_name_enc, contact_email_enc, contact_phone_enc, contact_email_index, preferred_contact_method,"
    " contact_hours_enc"
)


def registration_id(db: Any, agency_id: str, external_id: str) -> uuid.UUID:
    rid = db.fetchval(
        "SELECT id FROM registry.registrations WHERE agency_id = $1 AND external_id = $2",
        uuid.UUID(agency_id),
        external_id,
    )
    assert rid is not None
    return uuid.UUID(str(rid))


def pending_credentials(db: Any, job: dict[str, Any]) -> int:
    return int(
        db.fetchval(
            "SELECT count(*) FROM registry.import_credentials WHERE job_id = $1", uuid.UUID(job["id"])
        )
    )


@pytest.mark.parametrize("credentials", ["report", "email", "none"])
def test_an_owner_with_an_email_is_mailed_their_credential_and_the_report_never_holds_it(
    credentials: str,
    registry: httpx.Client,
    new_agency: NewAgency,
    run_import: Importer,
    mailbox: Mailbox,
    auth: Token,
    db: Any,
) -> None:
    a = new_agency()
    email = fresh_email()
    features = [
        feature_at(a.inside(), "mailed", contact_email=email),
        feature_at(a.inside(0.001, 0), "no-email", **NO_EMAIL),
    ]
    job = run_import(a, collection(features), credentials=credentials)
    assert job["status"] == "succeeded" and job["counts"]["created"] == 2, job
    rep = report(registry, auth, a, job)
    expected = [] if credentials == "none" else ["no-email"]
    assert [c["external_id"] for c in rep["credentials"]] == expected
    assert not any(CREDENTIAL.search(str(c)) for c in rep["rejected"])

    # The owner's credential arrives in their mailbox, and it opens their registration.
    credential = mailed_credential(mailbox, email)
    rid = registration_id(db, a.id, "mailed")
    assert credential.startswith(f"cvo_{rid.hex}_")
    r = registry.get(f"/v1/registrations/{rid}", headers=owner(credential))
    assert r.status_code == 200, r.text
    # Nothing of it stays on the server once delivered.
    deadline = time.monotonic() + 10
    while pending_credentials(db, job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pending_credentials(db, job) == 0


def test_a_reimport_never_changes_the_owners_contact_so_a_reset_cannot_be_diverted(
    registry: httpx.Client,
    new_agency: NewAgency,
    run_import: Importer,
    mailbox: Mailbox,
    auth: Token,
    db: Any,
) -> None:
    a = new_agency()
    at = a.inside()
    email, other = fresh_email(), fresh_email()
    first = feature_at(
        at,
        "contact-1",
        contact_email=email,
        contact_name="Dana",
        contact_phone="(414) 555-0123",
        contact_hours="9-17",
        contact_preferred_method="email",
        business_name="Shop",
    )
    job = run_import(a, collection([first]))
    assert job["status"] == "succeeded" and job["counts"]["created"] == 1, job
    credential = mailed_credential(mailbox, email)
    rid = registration_id(db, a.id, "contact-1")
    query = f"SELECT {CONTACT_COLUMNS}, business_name_enc FROM registry.registrations WHERE id = $1"  # noqa: S608
    before = db.fetch(query, rid)[0]

    # The integrator re-imports the registration with a contact it controls.
    again = feature_at(
        at,
        "contact-1",
        contact_email=other,
        contact_name="Mallory",
        contact_phone="(414) 555-0199",
        contact_hours="0-24",
        contact_preferred_method="phone",
        business_name="Shop Two",
    )
    job2 = run_import(a, collection([again]), credentials="report")
    assert job2["status"] == "succeeded" and job2["counts"]["updated"] == 1, job2
    assert report(registry, auth, a, job2)["credentials"] == []

    after = db.fetch(query, rid)[0]
    business = open_owner_text(rid, after["business_name_enc"], f"registration:{rid}:business_name")
    assert business == "Shop Two"  # what the integrator keeps is updated
    assert [after[k] for k in range(6)] == [before[k] for k in range(6)]  # the contact is not
    ring = keyring()
    assert ring.open(after["contact_email_enc"], f"registration:{rid}:email") == email
    assert ring.open(after["contact_name_enc"], f"registration:{rid}:name") == "Dana"
    assert bytes(after["contact_email_index"]) == ring.blind_index(email)
    hours = open_owner_text(rid, after["contact_hours_enc"], f"registration:{rid}:contact_hours")
    assert (after["preferred_contact_method"], hours) == ("email", "9-17")
    r = registry.get(f"/v1/registrations/{rid}", headers=owner(credential))
    assert r.status_code == 200, r.text

    # A credential reset asked for at the integrator's address sends nothing there (once its look-up has run and
    # committed what it decided, no code was made, so no mail follows); the owner's still works.
    codes = "SELECT count(*) FROM registry.credential_resets WHERE registration_id = $1"
    made = db.fetchval(codes, rid)
    reset_settled(registry, db, other)
    assert db.fetchval(codes, rid) == made
    assert mailbox.to(other) == []
    assert registry.post("/v1/credential-resets", json={"email": email}).status_code == 202
    mailbox.wait_for(email, lambda m: "cvr_" in str(m.get_payload(decode=True)))
    assert db.fetchval(codes, rid) == made + 1
