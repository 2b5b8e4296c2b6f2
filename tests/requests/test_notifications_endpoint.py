"""registry_api's owner-notification endpoint, which requests_api's worker uses: only a Canvass service may call
it; the owner's email is opened in the registry and never returned; a repeated notification id is sent once;
a deleted registration is a 404 and a withdrawn one a 410; the audit record names no personal data."""

from __future__ import annotations

import uuid
from email import message_from_bytes
from typing import Any

import httpx

from shared.auth import mint_token
from tests.conftest import Token
from tests.requests.conftest import Flow, NewAgency, NewOwner, patch_registration
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
    # registry_api hands a notification to the relay before it answers "sent" (and a duplicate is answered
    # without sending): once the first has arrived, any second copy would already be there.
    mailbox.wait_for(owner.email, lambda m: str(m["Subject"]) == note["subject"])
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


def test_an_owner_who_paused_or_stopped_sharing_is_not_written_to_on_the_agencys_behalf(
    flow: Flow, new_agency: NewAgency, new_owner: NewOwner, registry: httpx.Client, mailbox: Mailbox, db: Db
) -> None:
    other = new_agency()
    owner = new_owner(flow.agency, flow.agency.centre, share_with=[other.slug])
    url = f"/v1/registrations/{owner.registration_id}/notifications"
    for slug in (flow.agency.slug, other.slug):
        r = registry.post(url, json=_note(agency=slug), headers=_service())
        assert r.status_code == 202, r.text
    # No longer shared with the other agency: its notices are refused; the program's still go.
    patch_registration(registry, owner, {"share_with": []})
    refused = _note(agency=other.slug, subject=f"Unshared {uuid.uuid4().hex[:6]}")
    r = registry.post(url, json=refused, headers=_service())
    assert r.status_code == 410 and r.json()["type"].endswith("/not-shared"), r.text
    assert registry.post(url, json=_note(agency=flow.agency.slug), headers=_service()).status_code == 202
    # Paused: no agency's notice goes.
    patch_registration(registry, owner, {"status": "paused"})
    paused = _note(agency=flow.agency.slug, subject=f"Paused {uuid.uuid4().hex[:6]}")
    r = registry.post(url, json=paused, headers=_service())
    assert r.status_code == 410 and r.json()["type"].endswith("/not-shared"), r.text
    assert not any(
        str(m["Subject"]) in (refused["subject"], paused["subject"]) for m in mailbox.to(owner.email)
    )
    # Neither refusal was recorded as a mail sent.
    assert not db.fetch(
        "SELECT 1 FROM audit.events WHERE action = 'notify' AND subject_id = ANY($1::text[])",
        [refused["notification_id"], paused["notification_id"]],
    )


def test_the_registry_records_a_notification_sent_with_no_agency_and_no_kind(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    """The record of a mail sent is the registry's own: nothing an agency's trail could count per owner."""
    owner = new_owner(flow.agency, flow.agency.centre)
    note = _note(agency=flow.agency.slug, kind="reminder_due")
    r = registry.post(
        f"/v1/registrations/{owner.registration_id}/notifications", json=note, headers=_service()
    )
    assert r.status_code == 202, r.text
    rows = db.fetch(
        "SELECT agency, details::text AS d FROM audit.events WHERE action = 'notify' AND subject_id = $1",
        note["notification_id"],
    )
    assert len(rows) == 1 and rows[0]["agency"] is None and "reminder" not in rows[0]["d"], rows


def test_a_notification_id_is_committed_before_the_send_and_a_crash_repeats_the_same_message(
    flow: Flow, new_owner: NewOwner, service_env: dict[str, str], db: Db
) -> None:
    """registry_api killed (kill -9, by its process id) while the relay holds the mail: the notification's id is
    already committed, the retry sends the mail again under the same Message-ID, and the next repeat is a
    duplicate, not sent."""
    import asyncio
    import contextlib
    import threading
    from collections import Counter

    from aiosmtpd.controller import Controller

    from shared.mail import message_id
    from tests.requests.conftest import eventually
    from tests.support import free_port, start_server

    owner = new_owner(flow.agency, flow.agency.centre)
    received: list[Any] = []
    entered, release = threading.Event(), threading.Event()

    note = _note(subject=f"Held {uuid.uuid4().hex[:6]}")

    class HoldingRelay:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.original_content or envelope.content)
            if str(message["Subject"]) != note["subject"]:  # another test's mail (an owner notice, say)
                return "250 OK"
            received.append(message)
            entered.set()
            if len(received) == 1:  # the first mail is held until the test has killed the sender
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 60)
            return "250 OK"

    port = free_port()
    relay = Controller(HoldingRelay(), hostname="127.0.0.1", port=port)
    relay.start()
    env = dict(service_env, CANVASS_SMTP_PORT=str(port))
    servers = [start_server("registry_api", env)]
    url = f"/v1/registrations/{owner.registration_id}/notifications"
    try:

        def send() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed while it answers
                httpx.post(servers[0].url + url, json=note, headers=_service(), timeout=90)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        assert entered.wait(30), "the mail never reached the relay"
        status = db.fetchval(
            "SELECT status FROM registry.idempotency_keys WHERE key = $1 AND principal = 'notification'",
            note["notification_id"],
        )
        assert status is not None, "the notification id was not committed before the send"
        servers[0].process.kill()
        servers[0].process.wait(10)
        release.set()
        sender.join(30)
        servers.append(start_server("registry_api", env))
        retry = httpx.post(servers[1].url + url, json=note, headers=_service(), timeout=30)
        assert retry.status_code == 202 and retry.json()["status"] == "sent", retry.text
        again = httpx.post(servers[1].url + url, json=note, headers=_service(), timeout=30)
        assert again.status_code == 202 and again.json()["status"] == "duplicate"
        assert eventually(lambda: len(received) == 2)
        ids = Counter(str(m["Message-ID"]) for m in received)
        assert ids == Counter({message_id("notification", str(note["notification_id"])): 2})
    finally:
        release.set()
        for s in servers:
            s.stop()
        relay.stop()
