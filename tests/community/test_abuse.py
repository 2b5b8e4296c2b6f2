"""What an attacker or a careless client sends to the alerts and subscriptions, over real HTTP: every bad input a
clear 4xx problem, never a 500, and nothing of it stored or left behind; and the limits that keep a resident's phone
or inbox from being flooded by someone else."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import Message
from functools import partial
from typing import Any

import httpx

from services.community_api.sms import signature
from tests.community.conftest import Agency, mail_text, send_tip
from tests.community.sms_receiver import SmsReceiver
from tests.community.test_alerts import (
    CENTER,
    code_sent,
    confirmed,
    new_email,
    new_number,
    pin,
    queued_behind_a_held_send,
    send_alert,
    settled,
    subscribe,
)
from tests.community.test_tips import client_from, loopback_address
from tests.conftest import Suite
from tests.contract.conftest import polygon
from tests.support import Db, Mailbox, eventually, free_port

AREA = {
    "type": "Polygon",
    "coordinates": [[[-87.93, 43.03], [-87.91, 43.03], [-87.91, 43.05], [-87.93, 43.05], [-87.93, 43.03]]],
}


def subscription_body(agency: Agency, channel: str, contact: str, **area: Any) -> dict[str, Any]:
    where = area or {"pin": {"type": "Point", "coordinates": list(CENTER)}, "radius_m": 500}
    return {"agency": agency.slug, "channel": channel, "contact": contact, "categories": ["crime"], **where}


def alert_body(**changes: Any) -> dict[str, Any]:
    return {
        "title": "Armed robbery",
        "message": "Avoid the area of 5th and Main.",
        "category": "crime",
        "area": AREA,
        "expires_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
        **changes,
    }


def stored_subscriptions(db: Db, agency: Agency) -> int:
    return int(db.fetchval("SELECT count(*) FROM community.subscriptions WHERE agency = $1", agency.slug))


def assert_problem(r: httpx.Response, status: int, pointer: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    if pointer is not None:
        assert r.json()["errors"][0]["pointer"] == pointer, r.json()


def test_areas_and_pins_with_a_third_coordinate_are_taken_flat_not_a_500(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    ring = [[x, y, 180.0] for x, y in AREA["coordinates"][0]]
    r = community.post(
        "/v1/subscriptions",
        json=subscription_body(agency, "email", new_email(), area={"type": "Polygon", "coordinates": [ring]}),
    )
    assert r.status_code == 202, r.text
    pinned = {"pin": {"type": "Point", "coordinates": [*CENTER, 12.5]}, "radius_m": 300}
    r = community.post("/v1/subscriptions", json=subscription_body(agency, "email", new_email(), **pinned))
    assert r.status_code == 202, r.text
    dims = db.fetch("SELECT ST_NDims(area) AS d FROM community.subscriptions WHERE agency = $1", agency.slug)
    assert [d["d"] for d in dims] == [2, 2]
    sent = community.post(
        f"/v1/agencies/{agency.slug}/alerts",
        json=alert_body(area={"type": "Polygon", "coordinates": [ring]}),
        headers=agency.as_("supervisor"),
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["area"]["coordinates"][0][0][0] == [-87.93, 43.03]


def test_an_email_address_the_relay_cannot_take_is_refused_before_anything_is_stored(
    community: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox
) -> None:
    local = f"josé-{uuid.uuid4().hex[:8]}@example.org"
    assert_problem(
        community.post("/v1/subscriptions", json=subscription_body(agency, "email", local)),
        422,
        "/body/contact",
    )
    assert stored_subscriptions(db, agency) == 0
    # An internationalised domain is fine: it is written, and mailed to, in its ASCII form.
    name = f"resident-{uuid.uuid4().hex[:8]}"
    r = community.post("/v1/subscriptions", json=subscription_body(agency, "email", f"{name}@exämple.org"))
    assert r.status_code == 202, r.text
    mailbox.wait_for(f"{name}@xn--exmple-cua.org", lambda m: "confirm" in str(m["Subject"]).lower())


def test_a_confirmation_code_that_could_not_be_sent_leaves_no_subscription_behind(
    community: httpx.Client, agency: Agency, db: Db, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    number = new_number()
    sms.fail_next[number] = 1  # the provider has a bad minute
    assert_problem(community.post("/v1/subscriptions", json=subscription_body(agency, "sms", number)), 502)
    assert (
        stored_subscriptions(db, agency) == 0
    )  # the contact of a subscription nobody can confirm is not kept
    r = community.post("/v1/subscriptions", json=subscription_body(agency, "sms", number))
    assert r.status_code == 202, r.text  # trying again works
    assert stored_subscriptions(db, agency) == 1


def test_an_alerts_title_and_message_take_no_control_characters_and_are_not_blank(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    cases = [
        ({"title": "Robbery\r\nBcc: everyone@example.org"}, "/body/title"),  # would break the mail's subject
        ({"title": "Robbery\x1b[31m"}, "/body/title"),
        ({"title": "Robbery\tnow"}, "/body/title"),
        ({"title": "   "}, "/body/title"),
        ({"message": "Avoid\x07 the area"}, "/body/message"),
        ({"message": "Avoid\x85 the area"}, "/body/message"),
        ({"message": " \n "}, "/body/message"),
    ]
    for change, pointer in cases:
        r = community.post(
            f"/v1/agencies/{agency.slug}/alerts", json=alert_body(**change), headers=agency.as_("supervisor")
        )
        assert_problem(r, 422, pointer)
    assert db.fetchval("SELECT count(*) FROM community.alerts WHERE agency = $1", agency.slug) == 0
    fine = community.post(
        f"/v1/agencies/{agency.slug}/alerts",
        json=alert_body(message="Avoid the area.\r\n\tPolice are on scene.\nStay inside."),
        headers=agency.as_("supervisor"),
    )
    assert fine.status_code == 201, fine.text


def test_a_contact_is_sent_at_most_three_codes_at_a_time_whoever_asks(
    community: httpx.Client, agency: Agency, db: Db, suite: Suite, mailbox: Mailbox
) -> None:
    sms = suite.sms
    assert sms is not None
    victim = new_number()
    # Someone subscribes another's phone over and over (from anywhere: the count is the contact's).
    answers = [
        community.post("/v1/subscriptions", json=subscription_body(agency, "sms", victim)) for _ in range(5)
    ]
    assert [r.status_code for r in answers] == [202, 202, 202, 429, 429]
    assert_problem(answers[3], 429)
    assert 1 <= int(answers[3].headers["retry-after"]) <= 86400
    assert len([m for m in sms.to(victim) if "confirmation code" in m["body"]]) == 3
    assert stored_subscriptions(db, agency) == 3
    # The owner of the phone confirms one: a slot is free again, for them.
    first = answers[0].json()["id"]
    code = code_sent("sms", victim, mailbox, sms)  # the latest code is the third subscription's
    third = answers[2].json()["id"]
    assert community.post(f"/v1/subscriptions/{third}/confirm", json={"code": code}).status_code == 200
    assert (
        community.post("/v1/subscriptions", json=subscription_body(agency, "sms", victim)).status_code == 202
    )
    assert first != third
    # An email address is counted however its case is written.
    email = new_email()
    for contact in (email, email.upper(), email.capitalize()):
        r = community.post("/v1/subscriptions", json=subscription_body(agency, "email", contact))
        assert r.status_code == 202, r.text
    assert_problem(community.post("/v1/subscriptions", json=subscription_body(agency, "email", email)), 429)


def test_every_subscribe_counts_against_the_client_addresss_budget_with_its_tips(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    server = own_instance(CANVASS_TIP_RATE_LIMIT="3")
    with client_from(server.url, loopback_address()) as c:
        answers = [
            c.post("/v1/subscriptions", json=subscription_body(agency, "email", new_email()))
            for _ in range(3)
        ]
        assert [r.status_code for r in answers] == [202, 202, 202]
        refused = c.post("/v1/subscriptions", json=subscription_body(agency, "email", new_email()))
        tip = send_tip(c, agency.slug)
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert_problem(tip, 429)  # one budget for the address's anonymous writes
    assert stored_subscriptions(db, agency) == 3


def test_an_unconfirmed_subscription_is_deleted_with_its_contact_when_its_code_expires(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    r = community.post("/v1/subscriptions", json=subscription_body(agency, "email", new_email()))
    assert r.status_code == 202, r.text
    sid = uuid.UUID(r.json()["id"])
    kept = community.post("/v1/subscriptions", json=subscription_body(agency, "email", new_email()))
    db.execute(
        "UPDATE community.subscriptions SET created_at = now() - interval '25 hours' WHERE id = $1", sid
    )
    gone = eventually(
        lambda: not db.fetchval("SELECT count(*) FROM community.subscriptions WHERE id = $1", sid)
    )
    assert gone, "the unconfirmed subscription past its window was not swept"
    assert db.fetchval(
        "SELECT count(*) FROM community.subscriptions WHERE id = $1", uuid.UUID(kept.json()["id"])
    ), "a fresh pending subscription was swept too"


def test_a_code_past_its_window_does_not_confirm(
    agency: Agency, db: Db, mailbox: Mailbox, own_instance
) -> None:  # type: ignore[no-untyped-def]
    # An instance whose sweep runs once at start only, so the expired subscription is still there to be tried.
    server = own_instance(CANVASS_COMMUNITY_HOUSEKEEPING_S="3600")
    email = new_email()
    with client_from(server.url, loopback_address()) as c:
        r = c.post("/v1/subscriptions", json=subscription_body(agency, "email", email))
        assert r.status_code == 202, r.text
        sid = r.json()["id"]
        code = code_sent("email", email, mailbox, None)  # type: ignore[arg-type]
        db.execute(
            "UPDATE community.subscriptions SET created_at = now() - interval '25 hours' WHERE id = $1",
            uuid.UUID(sid),
        )
        late = c.post(f"/v1/subscriptions/{sid}/confirm", json={"code": code})
    assert_problem(late, 409)
    assert "expired" in late.json()["detail"]
    assert (
        db.fetchval("SELECT status FROM community.subscriptions WHERE id = $1", uuid.UUID(sid)) == "pending"
    )


def nth_code(channel: str, contact: str, nth: int, mailbox: Mailbox, sms: SmsReceiver) -> str:
    """The `nth` confirmation code sent to a contact, once it has come."""

    def codes() -> list[str]:
        if channel == "email":
            texts = [mail_text(m) for m in mailbox.to(contact)]
        else:
            texts = [m["body"] for m in sms.to(contact)]
        return [re.findall(r"\b(\d{6})\b", t)[-1] for t in texts if "confirmation code" in t]

    sent = eventually(lambda: len(codes()) >= nth and codes())
    assert sent, f"no {nth}th code to {contact}"
    return str(sent[nth - 1])


def test_an_alert_email_unsubscribes_its_one_subscription_in_one_click(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, db: Db, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    leaver, keeper = new_email(), new_email()
    far = (CENTER[0] + 0.02, CENTER[1] + 0.02)
    left, _ = confirmed(community, agency, mailbox, sms, "email", leaver, **pin(*CENTER, 300))
    elsewhere = subscribe(community, agency, "email", leaver, **pin(*far, 100))
    code = nth_code("email", leaver, 2, mailbox, sms)
    assert community.post(f"/v1/subscriptions/{elsewhere}/confirm", json={"code": code}).status_code == 200
    kept, _ = confirmed(community, agency, mailbox, sms, "email", keeper, **pin(*CENTER, 300))
    zone = polygon(CENTER[0] - 0.001, CENTER[1] - 0.001, CENTER[0] + 0.001, CENTER[1] + 0.001)
    first = send_alert(community, agency, zone)
    assert settled(community, agency, first["id"])["sent"] == 2
    mail = mailbox.wait_for(leaver, lambda m: "Armed robbery" in str(m["Subject"]))
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = re.fullmatch(r"<(\S+)>", str(mail["List-Unsubscribe"]))
    assert header is not None, mail["List-Unsubscribe"]
    url = header.group(1)
    assert (
        url.startswith(community.base_url.scheme + "://")
        and "/v1/subscriptions/unsubscribe/one-click/" in url
    )
    assert leaver.split("@")[0] not in url and "example.org" not in url  # nothing of the contact
    # A link scanner's GET ends nothing; mail software's POST ends the subscription, without any other step.
    assert community.get(url).status_code == 405
    assert db.fetchval("SELECT count(*) FROM community.subscriptions WHERE id = $1", uuid.UUID(left)) == 1
    r = httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert r.status_code == 204, r.text
    assert (
        httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=30).status_code == 204
    )  # twice is as good
    # That one subscription only: the same contact's other one and the other contact's stay.
    remaining = db.fetch(
        "SELECT id::text AS id FROM community.subscriptions WHERE id = ANY($1::uuid[])",
        [uuid.UUID(x) for x in (left, elsewhere, kept)],
    )
    assert sorted(r["id"] for r in remaining) == sorted([elsewhere, kept])
    second = send_alert(community, agency, zone)
    assert second["deliveries"]["queued"] == 1
    assert settled(community, agency, second["id"])["sent"] == 1
    mailbox.wait_for(
        keeper, lambda m: "Armed robbery" in str(m["Subject"]) and second["id"] in str(m["Message-ID"])
    )
    assert len([m for m in mailbox.to(leaver) if "Armed robbery" in str(m["Subject"])]) == 1
    # A token that this service did not issue ends nothing.
    forged = url[:-1] + ("0" if url[-1] != "0" else "1")
    r = httpx.post(forged, data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_a_contact_with_two_subscriptions_under_an_alert_receives_it_once(
    community: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    # A resident subscribes their home and their work, both under the alert; a neighbour subscribes once.
    email, number, neighbour = new_email(), new_number(), new_email()
    for channel, contact in (("email", email), ("sms", number)):
        for nth, lon in enumerate((CENTER[0] - 0.002, CENTER[0] + 0.002), start=1):
            sid = subscribe(community, agency, channel, contact, **pin(lon, CENTER[1], 300))
            code = nth_code(channel, contact, nth, mailbox, sms)
            assert community.post(f"/v1/subscriptions/{sid}/confirm", json={"code": code}).status_code == 200
    confirmed(community, agency, mailbox, sms, "email", neighbour, **pin(*CENTER, 300))
    alert = send_alert(community, agency, AREA)
    assert alert["deliveries"]["queued"] == 3
    assert settled(community, agency, alert["id"]) == {"queued": 0, "sent": 3, "failed": 0, "cancelled": 0}
    for contact in (email, neighbour):
        assert len([m for m in mailbox.to(contact) if "Armed robbery" in str(m["Subject"])]) == 1
    assert len([m for m in sms.to(number) if m["body"].startswith("Armed robbery")]) == 1


@contextmanager
def refusing_relay() -> Iterator[int]:
    """A mail relay that refuses every recipient, quoting the address as real relays do: its port."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
        ) -> str:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_a_relay_refusing_an_address_leaves_neither_the_address_in_the_logs_nor_a_subscription(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    email = new_email()
    with refusing_relay() as port:
        server = own_instance(CANVASS_SMTP_PORT=str(port))
        with client_from(server.url, loopback_address()) as c:
            r = c.post("/v1/subscriptions", json=subscription_body(agency, "email", email))
    assert_problem(r, 502)
    assert stored_subscriptions(db, agency) == 0
    log = server.log_path.read_text()
    assert "confirmation mail not sent" in log  # the failure is logged, without whom it was for
    assert email.split("@")[0] not in log


def test_a_delivery_whose_message_cannot_be_made_fails_once_and_the_others_go_out(
    community: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    broken, fine = new_email(), new_email()
    broken_id, _ = confirmed(community, agency, mailbox, sms, "email", broken, **pin(*CENTER, 300))
    confirmed(community, agency, mailbox, sms, "email", fine, **pin(*CENTER, 300))
    # The contact was sealed under a key no longer in the ring (a rotation that dropped it too early).
    db.execute(
        "UPDATE community.subscriptions SET contact = '\\x726574697265640001020304'::bytea WHERE id = $1",
        uuid.UUID(broken_id),
    )
    alert = send_alert(community, agency, AREA)
    assert settled(community, agency, alert["id"]) == {"queued": 0, "sent": 1, "failed": 1, "cancelled": 0}
    assert [m for m in mailbox.to(fine) if "Armed robbery" in str(m["Subject"])]
    assert not [m for m in mailbox.to(broken) if "Armed robbery" in str(m["Subject"])]


def test_a_subscription_whose_contact_cannot_be_opened_is_a_410_in_the_portal_not_a_500(
    community: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    for how in ("key left the ring", "another key of the same id"):
        sid, token = confirmed(community, agency, mailbox, sms, "email", new_email(), **pin(*CENTER, 300))
        sealed = bytes(
            db.fetchval("SELECT contact FROM community.subscriptions WHERE id = $1", uuid.UUID(sid))
        )
        # A kid no ring holds; or the same kid's ciphertext that no longer authenticates (a key replaced).
        broken = (
            b"retired\x00" + sealed[sealed.index(b"\x00") + 1 :]
            if how == "key left the ring"
            else sealed[:-1] + bytes([sealed[-1] ^ 1])
        )
        db.execute("UPDATE community.subscriptions SET contact = $2 WHERE id = $1", uuid.UUID(sid), broken)
        headers = {"X-Subscription-Token": token}
        assert_problem(community.get("/v1/subscriptions/mine", headers=headers), 410)
        changed = community.patch("/v1/subscriptions/mine", json={"categories": ["traffic"]}, headers=headers)
        assert_problem(changed, 410)
        assert db.fetchval(
            "SELECT categories FROM community.subscriptions WHERE id = $1", uuid.UUID(sid)
        ) == ["crime"]  # nothing changed on a subscription that reaches no one
        # It can still be ended, with its contact.
        assert community.delete("/v1/subscriptions/mine", headers=headers).status_code == 204
        assert db.fetchval("SELECT count(*) FROM community.subscriptions WHERE id = $1", uuid.UUID(sid)) == 0


def test_a_forged_sms_webhook_signature_of_any_bytes_is_a_403(community: httpx.Client) -> None:
    for forged in (b"\xe9t\xe9", b"x" * 200, b"\x80" * 28):
        headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"x-twilio-signature", forged)]
        r = community.post("/v1/sms/inbound", content=b"From=%2B14145550123&Body=STOP", headers=headers)
        assert_problem(r, 403)


def names_alert(alert_id: str, mail: Message) -> bool:
    return alert_id in str(mail["Message-ID"])


def test_an_alert_mails_message_id_carries_no_sequence_number(
    community: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    email = new_email()
    confirmed(community, agency, mailbox, sms, "email", email, **pin(*CENTER, 300))
    ids = []
    for _ in range(2):
        alert_id = str(send_alert(community, agency, AREA)["id"])
        settled(community, agency, alert_id)
        ids.append(str(mailbox.wait_for(email, partial(names_alert, alert_id))["Message-ID"]))
    delivery_ids = {str(r["id"]) for r in db.fetch("SELECT id FROM community.deliveries")}
    for mid in ids:
        # <alert.{alert}.{…}@domain>: nothing but random ids, so a recipient learns nothing of how many were sent.
        parts = mid.strip("<>").partition("@")[0].split(".")
        assert parts[0] == "alert" and len(parts) == 3, mid
        for part in parts[1:]:
            assert str(uuid.UUID(part)) == part and part not in delivery_ids, mid


def test_a_category_dropped_while_an_alert_is_queued_cancels_its_delivery(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    changer = new_number()
    with queued_behind_a_held_send(community, agency, mailbox, sms, changer) as (token, alert):
        change = community.patch(
            "/v1/subscriptions/mine",
            json={"categories": ["traffic"]},
            headers={"X-Subscription-Token": token},
        )
        assert change.status_code == 200, change.text
    assert settled(community, agency, alert["id"]) == {"queued": 0, "sent": 0, "failed": 0, "cancelled": 1}
    assert not [m for m in sms.to(changer) if m["body"].startswith("Armed robbery")]


def test_an_alert_reaches_no_subscription_left_outside_the_jurisdiction_after_it_shrank(
    community: httpx.Client, registry: httpx.Client, agency: Agency, db: Db, mailbox: Mailbox, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    west, east = new_email(), new_email()
    confirmed(community, agency, mailbox, sms, "email", west, **pin(-87.95, 43.04, 300))
    confirmed(community, agency, mailbox, sms, "email", east, **pin(-87.89, 43.04, 300))
    # The agency gives up its eastern half: the east subscriber is no longer its resident.
    admin = agency.as_("agency_admin")
    etag = registry.get(f"/v1/agencies/{agency.slug}", headers=admin).headers["etag"]
    shrunk = registry.patch(
        f"/v1/agencies/{agency.slug}",
        json={"jurisdiction": polygon(-87.98, 42.98, -87.92, 43.10)},
        headers={**admin, "If-Match": etag},
    )
    assert shrunk.status_code == 200, shrunk.text
    # An alert drawn over both (it reaches into the jurisdiction, so it is taken) is sent to the west one only.
    alert = send_alert(community, agency, polygon(-87.96, 43.03, -87.88, 43.05))
    assert alert["deliveries"]["queued"] == 1
    assert settled(community, agency, alert["id"]) == {"queued": 0, "sent": 1, "failed": 0, "cancelled": 0}
    assert [m for m in mailbox.to(west) if "Armed robbery" in str(m["Subject"])]
    assert not [m for m in mailbox.to(east) if "Armed robbery" in str(m["Subject"])]


def test_a_premium_rate_or_shared_cost_number_is_refused_before_any_text_is_sent(
    community: httpx.Client, agency: Agency, db: Db, suite: Suite
) -> None:
    sms = suite.sms
    assert sms is not None
    for number in ("+19005550123", "+448712345678"):  # a US 900 number; a UK shared-cost 0871 number
        r = community.post("/v1/subscriptions", json=subscription_body(agency, "sms", number))
        assert_problem(r, 422, "/body/contact")
        assert not sms.to(number)
    assert stored_subscriptions(db, agency) == 0
    # An ordinary number is fine.
    r = community.post("/v1/subscriptions", json=subscription_body(agency, "sms", new_number()))
    assert r.status_code == 202, r.text


def test_an_agency_sends_at_most_its_alert_rate_and_a_replay_still_answers(
    agency: Agency, db: Db, own_instance
) -> None:  # type: ignore[no-untyped-def]
    server = own_instance(CANVASS_ALERT_RATE_LIMIT="2")
    sup = agency.as_("supervisor")
    url = f"/v1/agencies/{agency.slug}/alerts"
    once = alert_body()
    with httpx.Client(base_url=server.url, timeout=60) as c:
        first = c.post(url, json=once, headers={**sup, "Idempotency-Key": "first-alert"})
        second = c.post(url, json=alert_body(title="Road closed"), headers=sup)
        assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
        third = c.post(url, json=alert_body(title="Third"), headers=sup)
        assert_problem(third, 429)
        assert 1 <= int(third.headers["retry-after"]) <= 3600
        replay = c.post(url, json=once, headers={**sup, "Idempotency-Key": "first-alert"})
        assert (
            replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
        )  # a retry is no new alert
    assert db.fetchval("SELECT count(*) FROM community.alerts WHERE agency = $1", agency.slug) == 2


def test_a_deployment_without_the_sms_providers_token_takes_no_text_message_subscription_nor_any_callback(
    agency: Agency, own_instance
) -> None:
    """Without CANVASS_SMS_AUTH_TOKEN the deployment sends no text messages: subscribing by SMS is a 422 at the
    channel (nothing stored, no code sent), email still works, and the provider's webhook is a 404, so no callback
    signed with a token anyone could know (the development placeholder there was) ends anyone's subscriptions."""
    server = own_instance(
        CANVASS_TIP_RATE_LIMIT="1000000"
    )  # the suite's environment without the SMS provider's
    with httpx.Client(base_url=server.url, timeout=30) as community:
        body = subscription_body(agency, "sms", new_number())
        r = community.post("/v1/subscriptions", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
        [error] = r.json()["errors"]
        assert error["pointer"] == "/body/channel" and "email" in error["reason"], error
        assert (
            community.post(
                "/v1/subscriptions", json=subscription_body(agency, "email", new_email())
            ).status_code
            == 202
        )
        params = [("From", body["contact"]), ("Body", "STOP")]
        url = server.url + "/v1/sms/inbound"
        offered = community.get("/v1/subscriptions/channels")
        assert offered.status_code == 200 and offered.json() == {"channels": ["email"]}, offered.text
        forged = community.post(
            "/v1/sms/inbound",
            data=dict(params),
            headers={"X-Twilio-Signature": signature(url, params, "development-token")},
        )
        assert forged.status_code == 404 and forged.headers["content-type"] == "application/problem+json", (
            forged.text
        )


def test_the_subscription_form_is_told_the_channels_alerts_go_by(community: httpx.Client) -> None:
    """The suite's deployment has an SMS provider: both channels are offered."""
    r = community.get("/v1/subscriptions/channels")
    assert r.status_code == 200 and r.json() == {"channels": ["email", "sms"]}, r.text
    assert "public" in r.headers["cache-control"]
