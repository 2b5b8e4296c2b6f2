"""Opt-in area alerts over real HTTP: double opt-in, the fan-out to exactly the intersecting subscriptions
(checked against shapely), STOP, the link and the portal ending a subscription before the next alert, retried
deliveries never sent twice, counts without names, and the public page."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from shapely.geometry import shape

from services.community_api.sms import signature
from tests.community.conftest import Agency, mail_text
from tests.community.sms_receiver import AUTH_TOKEN, SmsReceiver
from tests.conftest import Suite, Token
from tests.contract.conftest import polygon
from tests.support import Db, Mailbox

CENTER = (-87.92, 43.04)


@pytest.fixture
def sms(suite: Suite) -> SmsReceiver:
    assert suite.sms is not None
    return suite.sms


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def new_number() -> str:
    return "+1414555" + f"{random.randrange(10_000):04d}"


def new_email() -> str:
    return f"resident-{uuid.uuid4().hex[:10]}@example.org"


def subscribe(community: httpx.Client, agency: Agency, channel: str, contact: str, **area: Any) -> str:
    body = {"agency": agency.slug, "channel": channel, "contact": contact, "categories": ["crime"], **area}
    r = community.post("/v1/subscriptions", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def code_sent(channel: str, contact: str, mailbox: Mailbox, sms: SmsReceiver) -> str:
    if channel == "email":
        text = mail_text(mailbox.wait_for(contact, lambda m: "confirmation code" in mail_text(m)))  # fmt: skip
    else:
        text = wait_until(lambda: [m["body"] for m in sms.to(contact) if "confirmation code" in m["body"]])[
            -1
        ]
    return re.findall(r"\b(\d{6})\b", text)[-1]


def confirmed(
    community: httpx.Client,
    agency: Agency,
    mailbox: Mailbox,
    sms: SmsReceiver,
    channel: str,
    contact: str,
    **area: Any,
) -> tuple[str, str]:
    """A confirmed subscription: (its id, its manage token)."""
    sid = subscribe(community, agency, channel, contact, **area)
    r = community.post(
        f"/v1/subscriptions/{sid}/confirm", json={"code": code_sent(channel, contact, mailbox, sms)}
    )
    assert r.status_code == 200, r.text
    return sid, str(r.json()["manage_token"])


def pin(lon: float, lat: float, radius_m: int) -> dict[str, Any]:
    return {"pin": {"type": "Point", "coordinates": [lon, lat]}, "radius_m": radius_m}


def send_alert(
    community: httpx.Client, agency: Agency, area: dict[str, Any], category: str = "crime"
) -> dict[str, Any]:
    r = community.post(
        f"/v1/agencies/{agency.slug}/alerts",
        json={
            "title": "Armed robbery",
            "message": "Avoid the area of 5th and Main; police are on scene.",
            "category": category,
            "area": area,
            "expires_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
        },
        headers=agency.as_("supervisor"),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def counts(community: httpx.Client, agency: Agency, alert_id: str) -> dict[str, int]:
    r = community.get(f"/v1/agencies/{agency.slug}/alerts/{alert_id}", headers=agency.as_("investigator"))
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]  # type: ignore[no-any-return]


def settled(community: httpx.Client, agency: Agency, alert_id: str) -> dict[str, int]:
    return wait_until(lambda: (c := counts(community, agency, alert_id))["queued"] == 0 and c)  # type: ignore[no-any-return]


def recipients(db: Db, alert_id: str) -> list[str]:
    """An alert's recipients, whether the outbox has turned their batch into deliveries yet or not."""
    rows = db.fetch(
        """SELECT subscription_id::text AS id FROM community.deliveries WHERE alert_id = $1
           UNION ALL
           SELECT unnest(subscription_ids)::text FROM community.delivery_batches WHERE alert_id = $1""",
        uuid.UUID(alert_id),
    )
    return sorted(r["id"] for r in rows)


def test_a_fan_out_over_several_batches_queues_every_recipient_once_and_each_becomes_one_delivery(
    agency: Agency, db: Db
) -> None:
    from services.community_api.alerts import COUNTS_SQL, FAN_OUT_BATCH, FAN_OUT_SQL
    from services.community_api.outbox import EXPAND_SQL

    inside = 2 * FAN_OUT_BATCH + 123
    subscriptions = """
        INSERT INTO community.subscriptions
            (agency, channel, contact, contact_index, area, categories, language, status, manage_hash)
        SELECT $1, CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END, '\\x00',
               sha256(convert_to($1 || ':contact:' || $5 || $2::float8 || array_to_string($4::text[], ',') || i, 'UTF8')),
               ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint($2 + (i % 40) * 0.0001, $3), 4326), 0.0005)),
               $4::text[], 'en', $5, sha256(convert_to($1 || $5 || $2 || array_to_string($4, ',') || i, 'UTF8'))
        FROM generate_series(1, $6) i
        RETURNING id::text, channel"""
    # Everything is written in one transaction that is rolled back: the service's outbox never sees it.
    db.execute("BEGIN")
    try:
        expected = {
            r["id"]: r["channel"] for r in db.fetch(subscriptions, agency.slug, *CENTER, ["crime"], "confirmed", inside)
        }  # fmt: skip
        # Not to be reached: far from the alert, pending, or of another category.
        db.fetch(subscriptions, agency.slug, -87.97, 42.99, ["crime"], "confirmed", 50)
        db.fetch(subscriptions, agency.slug, *CENTER, ["crime"], "pending", 50)
        db.fetch(subscriptions, agency.slug, *CENTER, ["weather"], "confirmed", 50)
        alert_id = db.fetchval(
            """INSERT INTO community.alerts (agency, title, message, category, area, expires_at, created_by)
               VALUES ($1, 't', 'm', 'crime', ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint($2, $3), 4326), 0.01)),
                       now() + interval '1 hour', 'test') RETURNING id""",
            agency.slug,
            *CENTER,
        )
        assert db.fetchval(FAN_OUT_SQL, alert_id, FAN_OUT_BATCH) == inside
        batches = db.fetch(
            "SELECT channel, subscription_ids::text[] AS ids FROM community.delivery_batches WHERE alert_id = $1",
            alert_id,
        )
        assert len(batches) > 2 and all(1 <= len(b["ids"]) <= FAN_OUT_BATCH for b in batches)
        queued = [(i, b["channel"]) for b in batches for i in b["ids"]]
        assert sorted(queued) == sorted(expected.items())  # each recipient once, under its own channel
        assert db.fetch(COUNTS_SQL, alert_id)[0]["queued"] == inside
        for channel in ("email", "sms"):
            while db.execute(EXPAND_SQL, channel) != "INSERT 0 0":
                pass
        delivered = db.fetch(
            "SELECT subscription_id::text AS id, channel FROM community.deliveries WHERE alert_id = $1",
            alert_id,
        )
        assert sorted((d["id"], d["channel"]) for d in delivered) == sorted(expected.items())
        assert (
            db.fetchval("SELECT count(*) FROM community.delivery_batches WHERE alert_id = $1", alert_id) == 0
        )
        assert db.fetch(COUNTS_SQL, alert_id)[0]["queued"] == inside
    finally:
        db.execute("ROLLBACK")


def test_an_alert_reaches_exactly_the_confirmed_subscriptions_whose_areas_intersect(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    rng = random.Random(20261205)
    contacts: dict[str, tuple[str, str]] = {}  # subscription id -> (channel, contact)
    for i in range(24):
        channel = "email" if i % 2 else "sms"
        contact = new_email() if channel == "email" else new_number()
        lon, lat = CENTER[0] + rng.uniform(-0.04, 0.04), CENTER[1] + rng.uniform(-0.04, 0.04)
        if i % 3:
            area = pin(lon, lat, rng.choice([100, 400, 1500]))
        else:
            area = {"area": polygon(lon - 0.004, lat - 0.003, lon + 0.004, lat + 0.003)}
        sid, _ = confirmed(community, agency, mailbox, sms, channel, contact, **area)
        contacts[sid] = (channel, contact)
    # Near the alert but not to be reached: a pending subscription, and one for another category.
    pending = new_email()
    subscribe(community, agency, "email", pending, **pin(*CENTER, 2000))
    other = community.post(
        "/v1/subscriptions",
        json={"agency": agency.slug, "channel": "email", "contact": (weather := new_email()),
              "categories": ["weather"], **pin(*CENTER, 2000)},
    )  # fmt: skip
    assert other.status_code == 202
    alert_area = polygon(CENTER[0] - 0.015, CENTER[1] - 0.01, CENTER[0] + 0.015, CENTER[1] + 0.01)
    alert = send_alert(community, agency, alert_area)
    # What shapely says intersects, on the areas as stored.
    stored = {
        str(r["id"]): shape(orjson.loads(r["area"]))
        for r in db.fetch(
            "SELECT id, ST_AsGeoJSON(area)::text AS area FROM community.subscriptions WHERE id = ANY($1::uuid[])",
            [uuid.UUID(s) for s in contacts],
        )
    }
    expected = {sid for sid, geom in stored.items() if geom.intersects(shape(alert_area))}
    assert 0 < len(expected) < len(contacts)  # the test means something: some in, some out
    assert alert["deliveries"]["queued"] == len(expected)
    final = settled(community, agency, alert["id"])
    assert final == {"queued": 0, "sent": len(expected), "failed": 0, "cancelled": 0}
    for sid, (channel, contact) in contacts.items():
        if channel == "email":
            got = len([m for m in mailbox.to(contact) if "Armed robbery" in str(m["Subject"])])
        else:
            got = len([m for m in sms.to(contact) if m["body"].startswith("Armed robbery")])
        assert got == (1 if sid in expected else 0), (sid, channel)
    assert not [m for m in mailbox.to(pending) if "Armed robbery" in str(m["Subject"])]
    assert not [m for m in mailbox.to(weather) if "Armed robbery" in str(m["Subject"])]
    # Staff see counts, never who: nothing in the staff or public answers names a subscriber.
    staff_view = community.get(f"/v1/agencies/{agency.slug}/alerts", headers=agency.as_("supervisor")).text
    public_view = community.get(f"/v1/alerts/{alert['id']}")
    assert public_view.status_code == 200 and "deliveries" not in public_view.json()
    for sid, (_, contact) in contacts.items():
        assert contact not in staff_view and sid not in staff_view and contact not in public_view.text


def test_the_contact_is_sealed_and_double_opt_in_needs_the_code(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    email = new_email()
    sid = subscribe(community, agency, "email", email, **pin(*CENTER, 500))
    stored = db.fetch(
        "SELECT contact, contact_index, status FROM community.subscriptions WHERE id = $1", uuid.UUID(sid)
    )[0]
    assert email.encode() not in bytes(stored["contact"]) and stored["status"] == "pending"
    code = code_sent("email", email, mailbox, sms)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        r = community.post(f"/v1/subscriptions/{sid}/confirm", json={"code": wrong})
        assert r.status_code == 422
    void = community.post(f"/v1/subscriptions/{sid}/confirm", json={"code": code})
    assert void.status_code == 409  # five wrong guesses void the code, even the right one after them
    # A fresh subscription confirms with its code; the manage token reads it back, masked.
    number = new_number()
    sid, token = confirmed(community, agency, mailbox, sms, "sms", number, **pin(*CENTER, 500))
    mine = community.get("/v1/subscriptions/mine", headers={"X-Subscription-Token": token})
    assert mine.status_code == 200 and mine.json()["id"] == sid
    assert mine.json()["contact_hint"].endswith(number[-4:]) and number not in mine.text
    assert community.post(f"/v1/subscriptions/{sid}/confirm", json={"code": "000000"}).status_code == 409
    change = community.patch("/v1/subscriptions/mine", json={"language": "es", "categories": ["crime", "traffic"]},
                             headers={"X-Subscription-Token": token})  # fmt: skip
    assert change.status_code == 200 and change.json()["language"] == "es"


def test_subscriptions_stay_within_the_cap_and_the_jurisdiction(
    community: httpx.Client, agency: Agency
) -> None:
    base = {"agency": agency.slug, "channel": "email", "contact": new_email(), "categories": ["crime"]}
    cases = [
        (pin(*CENTER, 5000), "/body/radius_m"),  # the default cap is 2,000 m
        (pin(-89.4, 43.07, 500), "/body/pin"),  # another city
        ({"area": polygon(-88.5, 42.9, -87.9, 43.0)}, "/body/area"),  # reaches out of the jurisdiction
        ({**pin(*CENTER, 500), "area": polygon(-87.93, 43.03, -87.92, 43.04)}, "/body"),
    ]
    for area, pointer in cases:
        r = community.post("/v1/subscriptions", json={**base, **area})
        assert r.status_code == 422, (area, r.text)
        assert r.json()["errors"][0]["pointer"].startswith(pointer), r.json()
    for contact, channel in (("+1 414 555 0123", "sms"), ("4145550123", "sms"), ("not-an-email", "email")):
        r = community.post(
            "/v1/subscriptions", json={**base, "channel": channel, "contact": contact, **pin(*CENTER, 500)}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/body/contact"


def stop_reply(
    community: httpx.Client, suite: Suite, number: str, text: str = "STOP", sign: bool = True
) -> httpx.Response:
    assert suite.community is not None
    params = [("From", number), ("To", "+14145550100"), ("Body", text), ("MessageSid", "SM" + uuid.uuid4().hex),
              ("AccountSid", "AC" + "1" * 32)]  # fmt: skip
    url = suite.community.url + "/v1/sms/inbound"
    sig = signature(url, params, AUTH_TOKEN if sign else "wrong-token")
    return community.post("/v1/sms/inbound", data=dict(params), headers={"X-Twilio-Signature": sig})


def test_stop_the_link_and_the_portal_end_a_subscription_before_the_next_alert(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db, suite: Suite
) -> None:
    area = pin(*CENTER, 300)
    stopper = new_number()
    linker = new_email()
    portal = new_email()
    keeper = new_number()
    ids = {}
    tokens = {}
    for channel, contact in (("sms", stopper), ("email", linker), ("email", portal), ("sms", keeper)):
        ids[contact], tokens[contact] = confirmed(community, agency, mailbox, sms, channel, contact, **area)
    zone = polygon(CENTER[0] - 0.001, CENTER[1] - 0.001, CENTER[0] + 0.001, CENTER[1] + 0.001)
    first = send_alert(community, agency, zone)
    assert settled(community, agency, first["id"])["sent"] == 4
    # STOP by SMS (an unsigned one is refused and changes nothing), the link in the mail, the portal.
    assert stop_reply(community, suite, stopper, sign=False).status_code == 403
    assert (
        db.fetchval("SELECT count(*) FROM community.subscriptions WHERE id = $1", uuid.UUID(ids[stopper]))
        == 1
    )
    r = stop_reply(community, suite, stopper, "stop please")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    mail = mailbox.wait_for(linker, lambda m: "Armed robbery" in str(m["Subject"]))
    link = re.search(r"/alerts/unsubscribe#(\S+)", mail_text(mail))
    assert link is not None
    assert community.post("/v1/subscriptions/unsubscribe", json={"token": link.group(1)}).status_code == 204
    assert (
        community.delete(
            "/v1/subscriptions/mine", headers={"X-Subscription-Token": tokens[portal]}
        ).status_code
        == 204
    )
    # Each is gone, with its contact, at once.
    for contact in (stopper, linker, portal):
        assert (
            db.fetchval("SELECT count(*) FROM community.subscriptions WHERE id = $1", uuid.UUID(ids[contact]))
            == 0
        )
    assert (
        community.get("/v1/subscriptions/mine", headers={"X-Subscription-Token": tokens[portal]}).status_code
        == 401
    )
    second = send_alert(community, agency, zone)
    assert second["deliveries"]["queued"] == 1
    assert settled(community, agency, second["id"])["sent"] == 1
    assert len([m for m in sms.to(keeper) if m["body"].startswith("Armed robbery")]) == 2
    assert len([m for m in sms.to(stopper) if m["body"].startswith("Armed robbery")]) == 1
    for contact in (linker, portal):
        assert len([m for m in mailbox.to(contact) if "Armed robbery" in str(m["Subject"])]) == 1


@contextmanager
def queued_behind_a_held_send(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, number: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """A confirmed SMS subscription of `number` and an alert to it whose delivery stays queued while the block runs:
    the SMS outbox is held mid-send on an earlier alert to another subscriber (the provider does not answer until
    the block ends). Yields the subscription's token and the queued alert."""
    first = new_number()
    confirmed(community, agency, mailbox, sms, "sms", first, **pin(*CENTER, 100))
    far = (CENTER[0] + 0.02, CENTER[1] + 0.02)
    _, token = confirmed(community, agency, mailbox, sms, "sms", number, **pin(*far, 100))
    arrived, release = threading.Event(), threading.Event()
    sms.hold[first] = (arrived, release)
    try:
        send_alert(community, agency, polygon(CENTER[0] - 0.0005, CENTER[1] - 0.0005, CENTER[0] + 0.0005, CENTER[1] + 0.0005))  # fmt: skip
        assert arrived.wait(20)
        alert = send_alert(community, agency, polygon(far[0] - 0.0005, far[1] - 0.0005, far[0] + 0.0005, far[1] + 0.0005))  # fmt: skip
        assert alert["deliveries"]["queued"] == 1
        yield token, alert
    finally:
        release.set()


def test_a_delivery_queued_before_an_unsubscribe_is_cancelled_not_sent(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    leaver = new_number()
    with queued_behind_a_held_send(community, agency, mailbox, sms, leaver) as (token, alert):
        left = community.delete("/v1/subscriptions/mine", headers={"X-Subscription-Token": token})
        assert left.status_code == 204
    assert settled(community, agency, alert["id"]) == {"queued": 0, "sent": 0, "failed": 0, "cancelled": 1}
    assert not [m for m in sms.to(leaver) if m["body"].startswith("Armed robbery")]


def test_a_retried_delivery_is_sent_once_and_an_interrupted_sms_is_never_resent(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    flaky = new_number()
    sid, _ = confirmed(community, agency, mailbox, sms, "sms", flaky, **pin(*CENTER, 300))
    sms.fail_next[flaky] = 2  # the provider fails twice, then accepts
    zone = polygon(CENTER[0] - 0.001, CENTER[1] - 0.001, CENTER[0] + 0.001, CENTER[1] + 0.001)
    alert = send_alert(community, agency, zone)
    final = settled(community, agency, alert["id"])
    assert final == {"queued": 0, "sent": 1, "failed": 0, "cancelled": 0}
    assert len([m for m in sms.to(flaky) if m["body"].startswith("Armed robbery")]) == 1
    attempts = db.fetchval(
        "SELECT attempts FROM community.deliveries WHERE alert_id = $1", uuid.UUID(alert["id"])
    )
    assert attempts == 3
    # A delivery whose sender died mid-send (claimed, its lease run out, no outcome) may have reached the phone:
    # it is marked failed, never sent again.
    interrupted = db.fetchval(
        """INSERT INTO community.deliveries (alert_id, subscription_id, channel, attempts, lease_until)
           SELECT a.id, $2, 'sms', 1, now() - interval '1 second' FROM community.alerts a WHERE a.id = $1
           ON CONFLICT (alert_id, subscription_id) DO NOTHING RETURNING id""",
        uuid.UUID(send_alert(community, agency, polygon(-87.97, 43.09, -87.969, 43.091))["id"]),
        uuid.UUID(sid),
    )
    assert interrupted is not None
    wait_until(
        lambda: db.fetchval("SELECT status FROM community.deliveries WHERE id = $1", interrupted) != "queued"
    )
    assert db.fetchval("SELECT status FROM community.deliveries WHERE id = $1", interrupted) == "failed"
    assert len([m for m in sms.to(flaky) if m["body"].startswith("Armed robbery")]) == 1


def test_only_the_agencys_supervisors_send_alerts_and_only_its_staff_see_counts(
    community: httpx.Client, agency: Agency
) -> None:
    body: dict[str, Any] = {
        "title": "t", "message": "m", "category": "crime",
        "area": polygon(CENTER[0] - 0.001, CENTER[1] - 0.001, CENTER[0] + 0.001, CENTER[1] + 0.001),
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    path = f"/v1/agencies/{agency.slug}/alerts"
    for role in ("investigator", "advocate", "agency_admin", "auditor"):
        assert community.post(path, json=body, headers=agency.as_(role)).status_code == 403
    assert community.post(path, json=body).status_code == 401
    assert (
        community.post(path, json=body, headers=agency.auth("supervisor", "another-agency-slug")).status_code
        == 403
    )
    expired = community.post(
        path, json={**body, "expires_at": "2020-01-01T00:00:00Z"}, headers=agency.as_("supervisor")
    )
    assert expired.status_code == 422
    alert = send_alert(community, agency, body["area"])
    assert community.get(f"{path}/{alert['id']}", headers=agency.as_("advocate")).status_code == 403
    assert community.get(f"/v1/alerts/{uuid.uuid4()}").status_code == 404


def test_a_retried_alert_send_with_the_same_idempotency_key_sends_one_alert(
    community: httpx.Client, agency: Agency, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    email = new_email()
    sid, _ = confirmed(community, agency, mailbox, sms, "email", email, **pin(*CENTER, 200))
    body: dict[str, Any] = {
        "title": "Gas leak", "message": "Stay indoors near 5th and Main.", "category": "crime",
        "area": polygon(CENTER[0] - 0.001, CENTER[1] - 0.001, CENTER[0] + 0.001, CENTER[1] + 0.001),
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }  # fmt: skip
    path = f"/v1/agencies/{agency.slug}/alerts"
    headers = {**agency.as_("supervisor"), "Idempotency-Key": str(uuid.uuid4())}
    first = community.post(path, json=body, headers=headers)
    assert first.status_code == 201, first.text
    retry = community.post(path, json=body, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["Location"] == first.headers["Location"]
    other = community.post(path, json={**body, "title": "Another"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["Content-Type"].startswith("application/problem+json")
    alerts = db.fetch("SELECT id FROM community.alerts WHERE agency = $1", agency.slug)
    assert [str(a["id"]) for a in alerts] == [first.json()["id"]]
    assert recipients(db, first.json()["id"]) == [sid]
    # Another supervisor's same key is their own new alert.
    theirs = community.post(path, json=body, headers={**agency.as_("supervisor", sub="other-supervisor"),
                                                       "Idempotency-Key": headers["Idempotency-Key"]})  # fmt: skip
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != first.json()["id"]


def test_a_pin_by_the_antimeridian_is_reached_by_an_alert_over_it_and_not_by_one_far_away(
    community: httpx.Client, registry: httpx.Client, auth: Token, mailbox: Mailbox, sms: SmsReceiver, db: Db
) -> None:
    """A pin's circle that crosses ±180° is stored as two parts, one each side (not a strip around the globe)."""
    slug = "c-" + uuid.uuid4().hex[:10]
    halves = [[177.0, -19.0, 180.0, -15.0], [-180.0, -19.0, -178.0, -15.0]]
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": f"Police {slug}",
            "jurisdiction": {
                "type": "MultiPolygon",
                "coordinates": [[[[w, s], [e, s], [e, n], [w, n], [w, s]]] for w, s, e, n in halves],
            },
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    fiji = Agency(slug, auth)
    sid, _ = confirmed(community, fiji, mailbox, sms, "email", new_email(), **pin(179.99, -17.0, 2000))
    [row] = db.fetch(
        "SELECT ST_IsValid(area) AS valid, ST_NumGeometries(area) AS parts FROM community.subscriptions"
        " WHERE id = $1",
        uuid.UUID(sid),
    )
    assert row["valid"] and row["parts"] == 2
    over_pin = box_area(179.985, -17.005, 179.995, -16.995)
    across = box_area(-179.999, -17.001, -179.995, -16.999)  # the circle's part west of the antimeridian
    far = box_area(178.0, -17.02, 178.1, -16.98)  # about 200 km west
    for area, reached in ((over_pin, True), (across, True), (far, False)):
        alert = send_alert(community, fiji, area)
        assert (sid in recipients(db, alert["id"])) is reached, area


def box_area(w: float, s: float, e: float, n: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
