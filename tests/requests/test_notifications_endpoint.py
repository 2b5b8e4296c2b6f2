"""registry_api's owner-notification endpoint, which requests_api's worker uses: only a Canvass service may call
it; the owner's email is opened in the registry and never returned; a repeated notification id is sent once;
a deleted registration is a 404 and a withdrawn one a 410; the audit record names no personal data."""

from __future__ import annotations

import uuid

import httpx

from shared.auth import mint_token
from tests.conftest import Token
from tests.requests.conftest import Flow, NewOwner
from tests.support import Db, Mailbox


def _service() -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token("service", None, sub="requests_api")}


def _note(**over: object) -> dict[str, object]:
    return {
        "notification_id": str(uuid.uuid4()),
        "kind": "request",
        "subject": "Footage request",
        "body": "Hello",
        **over,
    }


def test_only_a_service_may_notify_and_a_repeated_id_is_sent_once(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, auth: Token, mailbox: Mailbox, db: Db
) -> None:
    owner = new_owner(flow.agency, flow.agency.centre)
    url = f"/v1/registrations/{owner.registration_id}/notifications"
    note = _note(subject=f"Subject {uuid.uuid4().hex[:6]}")
    assert registry.post(url, json=note).status_code == 401
    assert registry.post(url, json=note, headers=auth("investigator", flow.agency.slug)).status_code == 403
    assert registry.post(url, json=note, headers=owner.headers).status_code == 401
    first = registry.post(url, json=note, headers=_service())
    assert first.status_code == 202 and first.json()["status"] == "sent", first.text
    assert owner.email not in first.text
    again = registry.post(url, json=note, headers=_service())
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    mailbox.wait_for(owner.email, lambda m: str(m["Subject"]) == note["subject"])
    import time

    time.sleep(0.5)
    assert sum(str(m["Subject"]) == note["subject"] for m in mailbox.to(owner.email)) == 1
    # Audited under the notification's id: nothing in the trail names the registration written to.
    rows = db.fetch(
        "SELECT actor_role, subject_type, details::text AS d FROM audit.events WHERE action = 'notify'"
        " AND subject_id = $1",
        note["notification_id"],
    )
    assert len(rows) == 1 and (rows[0]["actor_role"], rows[0]["subject_type"]) == ("service", "notification")
    assert owner.email not in rows[0]["d"] and owner.registration_id not in rows[0]["d"]
    assert registry.post(url, json=_note(subject="two\nlines"), headers=_service()).status_code == 422


def test_deleted_and_withdrawn_registrations_are_not_notified(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client
) -> None:
    gone = new_owner(flow.agency, flow.agency.centre)
    assert (
        registry.delete(f"/v1/registrations/{gone.registration_id}", headers=gone.headers).status_code == 204
    )
    r = registry.post(
        f"/v1/registrations/{gone.registration_id}/notifications", json=_note(), headers=_service()
    )
    assert r.status_code == 404
    left = new_owner(flow.agency, flow.agency.centre)
    current = registry.get(f"/v1/registrations/{left.registration_id}", headers=left.headers)
    patch = registry.patch(
        f"/v1/registrations/{left.registration_id}",
        json={"status": "withdrawn"},
        headers={**left.headers, "If-Match": current.headers["etag"]},
    )
    assert patch.status_code == 200, patch.text
    r = registry.post(
        f"/v1/registrations/{left.registration_id}/notifications", json=_note(), headers=_service()
    )
    assert r.status_code == 410
