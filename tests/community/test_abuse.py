"""What an attacker or a careless client sends to the alerts and subscriptions, over real HTTP: every bad input a
clear 4xx problem, never a 500, and nothing of it stored or left behind; and the limits that keep a resident's phone
or inbox from being flooded by someone else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.community.conftest import Agency
from tests.community.test_alerts import CENTER, new_email, new_number
from tests.conftest import Suite
from tests.support import Db, Mailbox

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
