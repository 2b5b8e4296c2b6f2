"""The agency's tip inbox over real HTTP: the triage table walked whole (every state × action × role), agency
isolation, every view audited, and retention with legal hold."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest

from shared.auth import ROLES
from tests.community.conftest import Agency, jpeg_with_gps, send_tip
from tests.conftest import Token
from tests.support import Db

STATES = ("new", "reviewing", "actioned", "closed")
ACTIONS = ("review", "action", "close", "reopen")
AGENCY_ROLES = [r for r in ROLES if r != "service"]
# Written out, not derived from the service's table: (state, action) -> the state it leads to.
LEADS_TO = {
    ("new", "review"): "reviewing",
    ("new", "close"): "closed",
    ("reviewing", "action"): "actioned",
    ("reviewing", "close"): "closed",
    ("actioned", "close"): "closed",
    ("closed", "reopen"): "reviewing",
}


def may(role: str, action: str) -> bool:
    return role == "supervisor" or (role == "investigator" and action != "reopen")


def new_tip(community: httpx.Client, agency: Agency, **fields: Any) -> str:
    r = send_tip(community, agency.slug, **fields)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def audit_count(db: Db, action: str, tip_id: str | None = None, actor: str | None = None) -> int:
    return int(
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE service = 'community_api' AND action = $1"
            " AND ($2::text IS NULL OR subject_id = $2) AND ($3::text IS NULL OR actor = $3)",
            action,
            tip_id,
            actor,
        )
    )


def test_triage_walks_every_state_action_and_role_as_the_table_says(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    tip_id = new_tip(community, agency)
    cases = 0
    for state in STATES:
        for action in ACTIONS:
            for role in AGENCY_ROLES:
                db.execute(
                    "UPDATE community.tips SET state = $2,"
                    " closed_at = CASE WHEN $2 = 'closed' THEN now() END WHERE id = $1",
                    uuid.UUID(tip_id),
                    state,
                )
                before = audit_count(db, f"tip.{action}", tip_id)
                r = community.post(
                    f"/v1/agencies/{agency.slug}/tips/{tip_id}/transitions",
                    json={"action": action},
                    headers=agency.as_(role),
                )
                after_state = db.fetchval("SELECT state FROM community.tips WHERE id = $1", uuid.UUID(tip_id))
                if not may(role, action):
                    expected, final = 403, state
                elif (state, action) in LEADS_TO:
                    expected, final = 200, LEADS_TO[(state, action)]
                else:
                    expected, final = 409, state
                assert r.status_code == expected, (state, action, role, r.text)
                assert after_state == final, (state, action, role)
                assert r.headers["content-type"] in ("application/geo+json", "application/problem+json")
                assert audit_count(db, f"tip.{action}", tip_id) == before + (expected == 200)
                if expected == 200:
                    assert r.json()["properties"]["state"] == final
                    assert (r.json()["properties"]["closed_at"] is not None) == (final == "closed")
                cases += 1
    assert cases == len(STATES) * len(ACTIONS) * len(AGENCY_ROLES)
    print(f"triage cases walked: {cases}")


def test_replies_are_refused_on_a_closed_tip_and_the_tipster_cannot_add_to_it(
    community: httpx.Client, agency: Agency
) -> None:
    r = send_tip(community, agency.slug)
    tip_id, code = r.json()["id"], r.json()["code"]
    close = community.post(
        f"/v1/agencies/{agency.slug}/tips/{tip_id}/transitions",
        json={"action": "close"},
        headers=agency.as_("investigator"),
    )
    assert close.status_code == 200
    reply = community.post(
        f"/v1/agencies/{agency.slug}/tips/{tip_id}/replies",
        json={"message": "too late"},
        headers=agency.as_("investigator"),
    )
    assert reply.status_code == 409
    more = community.post(
        "/v1/tips/mine/messages", files=[("text", (None, "one more thing"))], headers={"X-Tip-Code": code}
    )
    assert more.status_code == 409
    assert community.get("/v1/tips/mine", headers={"X-Tip-Code": code}).json()["state"] == "closed"


@pytest.fixture
def other(registry: httpx.Client, auth: Token) -> Agency:
    from tests.community.conftest import BOX
    from tests.contract.conftest import create_agency

    slug = "o-" + uuid.uuid4().hex[:10]
    create_agency(registry, auth, slug, BOX)
    return Agency(slug, auth)


def test_another_agency_and_other_roles_see_nothing_of_a_tip(
    community: httpx.Client, agency: Agency, other: Agency
) -> None:
    tip_id = new_tip(community, agency)
    own = f"/v1/agencies/{agency.slug}/tips/{tip_id}"
    theirs = f"/v1/agencies/{other.slug}/tips/{tip_id}"
    assert community.get(own, headers=agency.as_("investigator")).status_code == 200
    assert community.get(own, headers=other.as_("investigator")).status_code == 404
    assert community.get(theirs, headers=other.as_("investigator")).status_code == 404
    assert community.get(own).status_code == 401
    for role in ("advocate", "agency_admin", "integrator", "cad", "auditor"):
        assert community.get(own, headers=agency.as_(role)).status_code == 403, role
    listing = community.get(f"/v1/agencies/{other.slug}/tips", headers=other.as_("supervisor"))
    assert listing.status_code == 200 and listing.json()["features"] == []
    for path, body in (("/transitions", {"action": "review"}), ("/replies", {"message": "hi"})):
        assert community.post(theirs + path, json=body, headers=other.as_("supervisor")).status_code == 404
        assert community.post(own + path, json=body, headers=other.as_("supervisor")).status_code == 404
    assert (
        community.put(own + "/legal-hold", json={"hold": True}, headers=other.as_("supervisor")).status_code
        == 404
    )
    assert community.put(own + "/legal-hold", json={"hold": True}, headers=agency.as_("investigator")).status_code == 403  # fmt: skip


def test_every_view_of_a_tip_or_its_media_is_audited_with_who_looked(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    r = send_tip(
        community, agency.slug, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")], lon="-87.9", lat="43.0"
    )
    tip_id = r.json()["id"]
    who = f"inv-{uuid.uuid4().hex[:6]}"
    headers = agency.as_("investigator", sub=who)
    listing = community.get(f"/v1/agencies/{agency.slug}/tips", headers=headers)
    assert listing.status_code == 200
    assert listing.headers["content-type"] == "application/geo+json"
    [feature] = listing.json()["features"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-87.9, 43.0]}  # for the workspace map
    assert audit_count(db, "tips.listed", None, who) == 1
    listed = db.fetchval(
        "SELECT details->'tips' FROM audit.events WHERE action = 'tips.listed' AND actor = $1", who
    )
    assert tip_id in listed
    tip = community.get(f"/v1/agencies/{agency.slug}/tips/{tip_id}", headers=headers).json()
    community.get(f"/v1/agencies/{agency.slug}/tips/{tip_id}", headers=headers)
    assert audit_count(db, "tip.viewed", tip_id, who) == 2
    media_id = tip["properties"]["messages"][0]["media"][0]["id"]
    got = community.get(f"/v1/agencies/{agency.slug}/tips/{tip_id}/media/{media_id}", headers=headers)
    assert got.status_code == 200
    assert audit_count(db, "tip.media_viewed", tip_id, who) == 1
    # A refused look is not a view.
    community.get(f"/v1/agencies/{agency.slug}/tips/{tip_id}/media/{uuid.uuid4()}", headers=headers)
    assert audit_count(db, "tip.media_viewed", tip_id, who) == 1


def wait_until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_closed_tips_are_deleted_after_the_agencys_retention_unless_on_legal_hold(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    policy = community.get(f"/v1/agencies/{agency.slug}/community-policy").json()
    r = community.put(
        f"/v1/agencies/{agency.slug}/community-policy",
        json={**policy, "tip_retention_days": 10},
        headers=agency.as_("agency_admin"),
    )
    assert r.status_code == 200, r.text
    old, held, recent, open_ = (
        new_tip(community, agency, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")]) for _ in range(4)
    )
    for tip_id in (old, held, recent):
        assert (
            community.post(
                f"/v1/agencies/{agency.slug}/tips/{tip_id}/transitions",
                json={"action": "close"},
                headers=agency.as_("investigator"),
            ).status_code
            == 200
        )
    hold = community.put(
        f"/v1/agencies/{agency.slug}/tips/{held}/legal-hold",
        json={"hold": True},
        headers=agency.as_("supervisor"),
    )
    assert hold.status_code == 200 and hold.json()["properties"]["legal_hold"] is True
    # Closed eleven days ago (the one tip still open is as old: only closing starts the clock).
    for tip_id in (old, held, open_):
        db.execute("UPDATE community.tips SET closed_at = closed_at - interval '11 days',"
                   " created_at = created_at - interval '20 days' WHERE id = $1", uuid.UUID(tip_id))  # fmt: skip
    exists = lambda t: db.fetchval("SELECT count(*) FROM community.tips WHERE id = $1", uuid.UUID(t)) == 1  # noqa: E731
    wait_until(lambda: not exists(old))
    assert db.fetchval("SELECT count(*) FROM community.tip_media WHERE tip_id = $1", uuid.UUID(old)) == 0
    assert db.fetchval("SELECT count(*) FROM community.tip_messages WHERE tip_id = $1", uuid.UUID(old)) == 0
    assert audit_count(db, "tip.purged", old) == 1
    assert exists(held) and exists(recent) and exists(open_)
    # Lifting the hold lets the retention take its course.
    lift = community.put(
        f"/v1/agencies/{agency.slug}/tips/{held}/legal-hold",
        json={"hold": False},
        headers=agency.as_("supervisor"),
    )
    assert lift.status_code == 200
    wait_until(lambda: not exists(held))
    assert exists(recent) and exists(open_)


def test_a_tip_never_closed_is_deleted_a_year_after_its_last_activity_unless_on_legal_hold(
    community: httpx.Client, agency: Agency, db: Db
) -> None:
    from services.community_api.config import config

    days = config().tip_open_retention_days
    assert days == 365  # the suite runs with the default
    abandoned, active, held = (
        new_tip(community, agency, files=[("p.jpg", jpeg_with_gps(), "image/jpeg")]) for _ in range(3)
    )
    r = community.post(
        f"/v1/agencies/{agency.slug}/tips/{abandoned}/transitions",
        json={"action": "review"},
        headers=agency.as_("investigator"),
    )
    assert r.status_code == 200  # any open state, not only new
    hold = community.put(
        f"/v1/agencies/{agency.slug}/tips/{held}/legal-hold",
        json={"hold": True},
        headers=agency.as_("supervisor"),
    )
    assert hold.status_code == 200
    # All three arrived over a year ago; the active one was last touched ten days ago.
    db.execute(
        "UPDATE community.tips SET created_at = now() - make_interval(days => $2 + 40),"
        " updated_at = now() - make_interval(days => $2 + 1) WHERE id = ANY($1::uuid[])",
        [uuid.UUID(t) for t in (abandoned, active, held)],
        days,
    )
    db.execute(
        "UPDATE community.tips SET updated_at = now() - interval '10 days' WHERE id = $1", uuid.UUID(active)
    )
    exists = lambda t: db.fetchval("SELECT count(*) FROM community.tips WHERE id = $1", uuid.UUID(t)) == 1  # noqa: E731
    wait_until(lambda: not exists(abandoned))
    assert (
        db.fetchval("SELECT count(*) FROM community.tip_media WHERE tip_id = $1", uuid.UUID(abandoned)) == 0
    )
    assert (
        db.fetchval("SELECT count(*) FROM community.tip_messages WHERE tip_id = $1", uuid.UUID(abandoned))
        == 0
    )
    details = db.fetchval(
        "SELECT details::text FROM audit.events WHERE action = 'tip.purged' AND subject_id = $1", abandoned
    )
    assert details is not None and '"open_retention"' in details and '"reviewing"' in details, details
    assert exists(active) and exists(held)
    # The hold lifted (itself an activity, so the clock starts again): a year later it goes too.
    lift = community.put(
        f"/v1/agencies/{agency.slug}/tips/{held}/legal-hold",
        json={"hold": False},
        headers=agency.as_("supervisor"),
    )
    assert lift.status_code == 200
    assert exists(held)
    db.execute(
        "UPDATE community.tips SET updated_at = now() - make_interval(days => $2 + 1) WHERE id = $1",
        uuid.UUID(held),
        days,
    )
    wait_until(lambda: not exists(held))
    assert exists(active)


def test_a_tip_list_cursor_without_its_instant_or_with_words_beside_it_is_a_400(
    community: httpx.Client, agency: Agency
) -> None:
    """The inbox's cursor carries an instant and an id: one without the instant, with a number for it, or with a
    member of its own (words the listing's audit record would keep) is refused, not a 500."""

    def forge(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    tid = str(uuid.uuid4())
    for cursor in [
        forge(orjson.dumps({"id": tid})),
        forge(orjson.dumps({"at": 5, "id": tid})),
        forge(
            orjson.dumps({"at": "2026-01-01T00:00:00+00:00", "id": tid, "note": "Dana Reyes 414-555-0142"})
        ),
    ]:
        r = community.get(
            f"/v1/agencies/{agency.slug}/tips", params={"cursor": cursor}, headers=agency.as_("supervisor")
        )
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["code"] == "cursor_invalid"
