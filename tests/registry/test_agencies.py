"""Agencies: an admin publishes and updates only their own agency; the public reads name, slug, jurisdiction and
privacy notice."""

from __future__ import annotations

import itertools
import json
import math
import uuid
from typing import Any

import httpx

from shared.mail import message_id
from tests.conftest import Token
from tests.registry.conftest import NewAgency, Register, box, fresh_email, owner, point
from tests.support import Db, eventually

PROBLEM = "application/problem+json"


def _ring_area(ring: list[list[float]]) -> float:
    return sum(a[0] * b[1] - b[0] * a[1] for a, b in itertools.pairwise(ring)) / 2


def test_admin_creates_own_agency_and_public_reads_name_slug_and_right_hand_jurisdiction(
    registry: httpx.Client, auth: Token, slug: str
) -> None:
    body = {
        "slug": slug,
        "name": "Chicopee Police",
        "jurisdiction": box(-72.65, 42.13, -72.55, 42.20),  # clockwise input
        "policy": {"max_request_area_m2": 800000, "max_request_window_hours": 6, "requires_approval": False},
    }
    r = registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/agencies/{slug}"

    public = registry.get(f"/v1/agencies/{slug}")
    assert public.status_code == 200
    feature = public.json()
    assert feature["properties"] == {
        "slug": slug,
        "name": "Chicopee Police",
        "disclosure_delay_days": 0,
    }  # no policy for the public, but its disclosure delay
    geometry = feature["geometry"]
    assert geometry["type"] == "MultiPolygon"
    ring = geometry["coordinates"][0][0]
    assert _ring_area(ring) > 0, "exterior ring must be counter-clockwise (RFC 7946 right-hand rule)"
    assert {tuple(p) for p in ring} == {(-72.65, 42.13), (-72.55, 42.13), (-72.55, 42.2), (-72.65, 42.2)}

    own = registry.get(f"/v1/agencies/{slug}", headers=auth("investigator", slug)).json()
    assert own["properties"]["policy"]["max_request_area_m2"] == 800000
    assert own["properties"]["policy"]["max_request_window_hours"] == 6
    assert own["properties"]["policy"]["requires_approval"] is False
    assert own["properties"]["policy"]["default_request_expiry_days"] == 14  # the default


def test_admin_cannot_create_or_update_another_agency(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, slug: str
) -> None:
    other = new_agency()
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": "X", "jurisdiction": box(0, 0, 1, 1)},
        headers=auth("agency_admin", "someone-else"),
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = registry.patch(
        f"/v1/agencies/{other.slug}",
        json={"name": "Hijacked"},
        headers={**auth("agency_admin", slug), "If-Match": '"1"'},
    )
    assert r.status_code == 403
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": "X", "jurisdiction": box(0, 0, 1, 1)},
        headers=auth("investigator", slug),
    )
    assert r.status_code == 403
    r = registry.post("/v1/agencies", json={"slug": slug, "name": "X", "jurisdiction": box(0, 0, 1, 1)})
    assert r.status_code == 401
    assert registry.get(f"/v1/agencies/{other.slug}").json()["properties"]["name"] == other.name


def test_creating_an_existing_agency_is_a_conflict(
    registry: httpx.Client, auth: Token, new_agency: NewAgency
) -> None:
    a = new_agency()
    r = registry.post(
        "/v1/agencies",
        json={"slug": a.slug, "name": "Again", "jurisdiction": box(0, 0, 1, 1)},
        headers=auth("agency_admin", a.slug),
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM


def test_an_empty_if_match_is_no_if_match_a_428_not_a_stale_412(
    registry: httpx.Client, auth: Token, new_agency: NewAgency
) -> None:
    a = new_agency()
    admin = auth("agency_admin", a.slug)
    for blank in ("",):  # (a blank of spaces is not a header value a client can send)
        r = registry.patch(
            f"/v1/agencies/{a.slug}", json={"name": "Renamed"}, headers={**admin, "If-Match": blank}
        )
        assert r.status_code == 428 and r.headers["content-type"] == PROBLEM, (blank, r.text)
    assert registry.get(f"/v1/agencies/{a.slug}").json()["properties"]["name"] != "Renamed"


def test_a_geometry_bbox_takes_numbers_only(
    registry: httpx.Client, auth: Token, new_agency: NewAgency
) -> None:
    a = new_agency()
    admin = {**auth("agency_admin", a.slug), "If-Match": '"1"'}
    square = box(a.west, a.south, a.east, a.north)
    for bbox in ([False, 0, 1, 1], ["1", 0, 1, 1], [0, 1]):
        r = registry.patch(
            f"/v1/agencies/{a.slug}", json={"jurisdiction": {**square, "bbox": bbox}}, headers=admin
        )
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (bbox, r.text)
        assert "/body/jurisdiction" in r.json()["errors"][0]["pointer"], r.text


def test_update_needs_if_match_and_refuses_a_stale_one(
    registry: httpx.Client, auth: Token, new_agency: NewAgency
) -> None:
    a = new_agency()
    admin = auth("agency_admin", a.slug)
    r = registry.patch(f"/v1/agencies/{a.slug}", json={"name": "Renamed"}, headers=admin)
    assert r.status_code == 428 and r.headers["content-type"] == PROBLEM
    r = registry.patch(
        f"/v1/agencies/{a.slug}", json={"name": "Renamed"}, headers={**admin, "If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    r = registry.patch(
        f"/v1/agencies/{a.slug}",
        json={"policy": {"max_request_window_hours": 4}},
        headers={**admin, "If-Match": '"1"'},
    )
    assert r.status_code == 412
    assert r.headers["etag"] == '"2"'
    r = registry.patch(
        f"/v1/agencies/{a.slug}",
        json={
            "jurisdiction": {
                "type": "MultiPolygon",
                "coordinates": [
                    box(a.west, a.south, a.east, a.north)["coordinates"],
                    box(a.east + 1, a.south, a.east + 1.1, a.north)["coordinates"],
                ],
            },
            "policy": {"max_request_window_hours": 4},
        },
        headers={**admin, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["properties"]["name"] == "Renamed"
    assert body["properties"]["policy"]["max_request_window_hours"] == 4
    assert len(body["geometry"]["coordinates"]) == 2


def test_covering_lists_exactly_the_agencies_whose_jurisdiction_holds_the_point(
    registry: httpx.Client, new_agency: NewAgency
) -> None:
    city = new_agency()
    county = new_agency(within=city)
    lon, lat = city.centre
    r = registry.get("/v1/agencies/covering", params={"lon": lon, "lat": lat})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    slugs = {f["properties"]["slug"] for f in r.json()["features"]}
    assert {city.slug, county.slug} <= slugs
    lon2, lat2 = city.outside()
    far = {
        f["properties"]["slug"]
        for f in registry.get("/v1/agencies/covering", params={"lon": lon2, "lat": lat2}).json()["features"]
    }
    assert city.slug not in far
    assert registry.get("/v1/agencies/covering", params={"lon": 200, "lat": 0}).status_code == 400
    assert registry.get("/v1/agencies/covering", params={"lon": "x", "lat": 0}).status_code == 400


def test_agency_listing_pages_with_next_links(registry: httpx.Client, new_agency: NewAgency) -> None:
    for _ in range(3):
        new_agency()
    first = registry.get("/v1/agencies", params={"limit": 2}).json()
    assert first["numberReturned"] == 2
    nxt = [link for link in first["links"] if link["rel"] == "next"]
    assert nxt
    second = httpx.get(nxt[0]["href"]).json()
    assert {f["id"] for f in first["features"]}.isdisjoint({f["id"] for f in second["features"]})
    assert registry.get("/v1/agencies", params={"cursor": "garbage!"}).status_code == 400


def test_bad_agency_input_is_a_clear_4xx(registry: httpx.Client, auth: Token, slug: str) -> None:
    admin = auth("agency_admin", slug)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    cases = [
        ({"slug": slug, "name": "X", "jurisdiction": bowtie}, "/body/jurisdiction"),
        (
            {"slug": slug, "name": "X", "jurisdiction": {"type": "Point", "coordinates": [0, 0]}},
            "/body/jurisdiction",
        ),
        ({"slug": slug, "name": "X", "jurisdiction": box(0, 0, 1, 1), "colour": "red"}, "/body/colour"),
        (
            {
                "slug": slug,
                "name": "X",
                "jurisdiction": box(0, 0, 1, 1),
                "policy": {"max_request_area_m2": -5},
            },
            "/body/policy",
        ),
        (  # no agency may allow requests larger than half a square mile or longer than twelve hours
            {
                "slug": slug,
                "name": "X",
                "jurisdiction": box(0, 0, 1, 1),
                "policy": {"max_request_area_m2": 2e6},
            },
            "/body/policy",
        ),
        (
            {
                "slug": slug,
                "name": "X",
                "jurisdiction": box(0, 0, 1, 1),
                "policy": {"max_request_window_hours": 24},
            },
            "/body/policy",
        ),
        (
            {
                "slug": slug,
                "name": "X",
                "jurisdiction": box(0, 0, 1, 1),
                "policy": {"requires_approval": "yes"},
            },
            "/body/policy",
        ),
        ({"slug": "Bad Slug!", "name": "X", "jurisdiction": box(0, 0, 1, 1)}, "/body/slug"),
        ({"slug": slug, "name": "X\u0000", "jurisdiction": box(0, 0, 1, 1)}, "/body/name"),
    ]
    for body, pointer in cases:
        r = registry.post("/v1/agencies", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()
    r = registry.post(
        "/v1/agencies", content=b"{not json", headers={**admin, "content-type": "application/json"}
    )
    assert r.status_code == 400
    assert registry.get("/v1/agencies/NOT_A_SLUG").status_code == 422
    assert registry.get(f"/v1/agencies/{slug}").status_code == 404


def test_shrinking_a_jurisdiction_reports_the_registrations_left_outside_and_tells_their_owners(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, mailbox: Any, db: Any
) -> None:
    a = new_agency()
    east_email, west_email = fresh_email(), fresh_email()
    east, _ = register(a, email=east_email, location=point(a.inside(0.03)))
    west, _ = register(a, email=west_email, location=point(a.inside(-0.03)))
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '800 days' WHERE agency_id = $1",
        uuid.UUID(a.id),
    )
    due_url = f"/v1/agencies/{a.slug}/reconfirmations-due"
    admin = auth("agency_admin", a.slug)
    assert {i["id"] for i in registry.get(due_url, headers=admin).json()["items"]} == {east["id"], west["id"]}

    lon, _lat = a.centre
    url = f"/v1/agencies/{a.slug}"
    r = registry.patch(
        url,
        json={"jurisdiction": box(a.west, a.south, lon, a.north)},  # the western half only
        headers={**admin, "If-Match": registry.get(url).headers["etag"]},
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["registrations_outside"], props["registrations_newly_outside"]) == (1, 1)

    # The owner left outside is told, with what they can do; the other owner hears nothing.
    mail = mailbox.wait_for(east_email, lambda m: "outside" in str(m["Subject"]))
    text = mail.get_payload(decode=True).decode()
    assert east["id"] in text and east["properties"]["cameras"][0]["id"] in text
    assert "/cameras/" in text and "/v1/agencies/covering" in text and "DELETE" in text
    # The row is marked sent after the mail server took the message: wait for it.
    notice = eventually(
        lambda: db.fetchval(
            "SELECT id FROM registry.owner_notices WHERE registration_id = $1 AND status = 'sent'",
            uuid.UUID(east["id"]),
        )
    )
    assert notice is not None and str(mail["Message-ID"]) == message_id("notice", notice)
    assert mailbox.to(west_email) == []

    # Every agency-facing read applies the search's rule: the listing no longer shows where the camera is.
    items = registry.get(due_url, headers=admin).json()["items"]
    assert [i["id"] for i in items] == [west["id"]]
    investigator = auth("investigator", a.slug)
    read = f"/v1/registrations/{east['id']}/contact"
    assert registry.get(read, params={"case_number": "C-1"}, headers=investigator).status_code == 404

    # Another change of the same area reports it again, but tells nobody a second time.
    r = registry.patch(
        url,
        json={"name": "Renamed PD", "jurisdiction": box(a.west, a.south, lon, a.north)},
        headers={**admin, "If-Match": r.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["properties"]["registrations_outside"],
        r.json()["properties"]["registrations_newly_outside"],
    ) == (
        1,
        0,
    )
    assert (
        db.fetchval(
            "SELECT count(*) FROM registry.owner_notices WHERE registration_id = $1", uuid.UUID(east["id"])
        )
        == 1
    )
    audited = db.fetchval(
        "SELECT details->>'registrations_newly_outside' FROM audit.events WHERE action = 'agency.update'"
        " AND subject_id = $1 ORDER BY seq LIMIT 1",
        a.id,
    )
    assert audited == "1"


def test_a_jurisdiction_change_counts_and_tells_only_registrations_the_agency_could_see(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, mailbox: Any, db: Any
) -> None:
    """A paused registration is not the agency's to see (its searches do not find it): a jurisdiction change that
    leaves it outside neither counts it, which would tell the agency where it is, nor writes to its owner."""
    a = new_agency()
    paused_email, active_email = fresh_email(), fresh_email()
    paused, paused_cred = register(a, email=paused_email, location=point(a.inside(0.03)))
    active, _ = register(a, email=active_email, location=point(a.inside(0.02)))
    url = f"/v1/registrations/{paused['id']}"
    etag = registry.get(url, headers=owner(paused_cred)).headers["etag"]
    r = registry.patch(url, json={"status": "paused"}, headers={**owner(paused_cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    admin = auth("agency_admin", a.slug)
    lon, _lat = a.centre
    agency_url = f"/v1/agencies/{a.slug}"
    r = registry.patch(
        agency_url,
        json={"jurisdiction": box(a.west, a.south, lon, a.north)},  # both now outside
        headers={**admin, "If-Match": registry.get(agency_url).headers["etag"]},
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["registrations_outside"], props["registrations_newly_outside"]) == (1, 1)
    notified = db.fetch(
        "SELECT registration_id FROM registry.owner_notices WHERE registration_id = ANY($1::uuid[])",
        [uuid.UUID(paused["id"]), uuid.UUID(active["id"])],
    )
    assert [str(n["registration_id"]) for n in notified] == [active["id"]]
    mailbox.wait_for(active_email, lambda m: "outside" in str(m["Subject"]))
    assert mailbox.to(paused_email) == []


def test_a_paused_registration_is_not_in_the_reconfirmation_listing_as_it_is_not_in_searches(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, register: Register, db: Any
) -> None:
    a = new_agency()
    reg, cred = register(a)
    db.execute(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '800 days' WHERE id = $1",
        uuid.UUID(reg["id"]),
    )
    due_url = f"/v1/agencies/{a.slug}/reconfirmations-due"
    admin = auth("agency_admin", a.slug)
    assert [i["id"] for i in registry.get(due_url, headers=admin).json()["items"]] == [reg["id"]]
    url = f"/v1/registrations/{reg['id']}"
    etag = registry.get(url, headers=owner(cred)).headers["etag"]
    r = registry.patch(url, json={"status": "paused"}, headers={**owner(cred), "If-Match": etag})
    assert r.status_code == 200, r.text
    assert registry.get(due_url, headers=admin).json()["items"] == []


NOTICE = (
    "Chicopee Police keeps your contact details and camera locations only to ask you for footage.\n\n"
    "Ask us to erase them at any time: privacy@chicopee.example."
)


def _public_notice(registry: httpx.Client, slug: str, lon: float, lat: float) -> list[dict[str, Any]]:
    """The agency's public properties as GET /v1/agencies/{slug}, GET /v1/agencies and the covering search give them."""
    one = registry.get(f"/v1/agencies/{slug}").json()["properties"]
    listed = [
        f["properties"]
        for f in registry.get("/v1/agencies", params={"limit": 1000}).json()["features"]
        if f["properties"]["slug"] == slug
    ]
    covering = [
        f["properties"]
        for f in registry.get("/v1/agencies/covering", params={"lon": lon, "lat": lat}).json()["features"]
        if f["properties"]["slug"] == slug
    ]
    assert len(listed) == 1 and len(covering) == 1
    return [one, listed[0], covering[0]]


def test_an_agency_publishes_a_privacy_notice_that_every_public_read_returns(
    registry: httpx.Client, auth: Token, slug: str, db: Db
) -> None:
    admin = auth("agency_admin", slug)
    body = {
        "slug": slug,
        "name": "Chicopee Police",
        "jurisdiction": box(-72.65, 42.13, -72.55, 42.20),
        "privacy_notice": f"  {NOTICE}\n",  # surrounding white space is dropped, line breaks inside are kept
        "privacy_notice_url": "https://chicopee.example/police/privacy",
    }
    r = registry.post("/v1/agencies", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["privacy_notice"] == NOTICE
    for props in _public_notice(registry, slug, -72.6, 42.16):
        assert props["privacy_notice"] == NOTICE
        assert props["privacy_notice_url"] == "https://chicopee.example/police/privacy"
        assert "policy" not in props  # the notice is public; the policy still is not

    # Updating one leaves the other; null removes one.
    r = registry.patch(
        f"/v1/agencies/{slug}",
        json={"privacy_notice": "Shorter notice.", "privacy_notice_url": None},
        headers={**admin, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["privacy_notice"] == "Shorter notice."
    assert "privacy_notice_url" not in r.json()["properties"]
    for props in _public_notice(registry, slug, -72.6, 42.16):
        assert props["privacy_notice"] == "Shorter notice." and "privacy_notice_url" not in props
    r = registry.patch(
        f"/v1/agencies/{slug}",
        json={"privacy_notice_url": "https://chicopee.example/p"},
        headers={**admin, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    for props in _public_notice(registry, slug, -72.6, 42.16):
        assert props["privacy_notice"] == "Shorter notice."
        assert props["privacy_notice_url"] == "https://chicopee.example/p"
    stored = db.fetch(
        "SELECT privacy_notice, privacy_notice_url FROM registry.agencies WHERE slug = $1", slug
    )
    assert [tuple(r) for r in stored] == [("Shorter notice.", "https://chicopee.example/p")]


def test_a_bad_privacy_notice_is_a_422_and_changes_nothing(
    registry: httpx.Client, auth: Token, new_agency: NewAgency, slug: str
) -> None:
    admin = auth("agency_admin", slug)
    base: dict[str, Any] = {"slug": slug, "name": "X", "jurisdiction": box(0, 0, 1, 1)}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"privacy_notice": "x" * 4001}, "/body/privacy_notice"),
        ({"privacy_notice": "We keep\u0000 nothing."}, "/body/privacy_notice"),
        ({"privacy_notice": "   "}, "/body/privacy_notice"),
        ({"privacy_notice": 12}, "/body/privacy_notice"),
        ({"privacy_notice_url": "http://chicopee.example/privacy"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "javascript:alert(1)"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "HTTPS://chicopee.example/privacy"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://chicopee.example/a b"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://user:pw@chicopee.example/"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://[::1/"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://chicopee.example/\u0000"}, "/body/privacy_notice_url"),
        ({"privacy_notice_url": "https://chicopee.example/" + "a" * 2048}, "/body/privacy_notice_url"),
    ]
    for extra, pointer in cases:
        r = registry.post("/v1/agencies", json=base | extra, headers=admin)
        assert r.status_code == 422, (extra, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert [e["pointer"] for e in r.json()["errors"]] == [pointer], r.json()
    assert registry.get(f"/v1/agencies/{slug}").status_code == 404  # none of them was stored

    a = new_agency()
    a_admin = {**auth("agency_admin", a.slug), "If-Match": '"1"'}
    for extra, pointer in cases:
        r = registry.patch(f"/v1/agencies/{a.slug}", json=extra, headers=a_admin)
        assert r.status_code == 422, (extra, r.text)
        assert [e["pointer"] for e in r.json()["errors"]] == [pointer], r.json()
    r = registry.get(f"/v1/agencies/{a.slug}")
    assert r.headers["etag"] == '"1"' and "privacy_notice" not in r.json()["properties"]
    # The longest notice allowed is stored whole.
    r = registry.patch(f"/v1/agencies/{a.slug}", json={"privacy_notice": "é" * 4000}, headers=a_admin)
    assert r.status_code == 200, r.text
    assert registry.get(f"/v1/agencies/{a.slug}").json()["properties"]["privacy_notice"] == "é" * 4000


def _boundary(lon: float, lat: float, vertices: int) -> dict[str, Any]:
    """A jurisdiction drawn as a real one is: thousands of vertices around ~10 km, each to seven decimals."""
    ring = [
        [
            round(lon + (0.05 + 0.002 * math.sin(i * 7.3)) * math.cos(2 * math.pi * i / vertices), 7),
            round(lat + (0.05 + 0.002 * math.sin(i * 7.3)) * math.sin(2 * math.pi * i / vertices), 7),
        ]
        for i in range(vertices)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_skip_geometry_lists_the_same_agencies_without_their_jurisdictions_in_far_fewer_bytes(
    registry: httpx.Client, auth: Token
) -> None:
    made = []
    for i in range(4):
        slug = f"t-skip-{uuid.uuid4().hex[:8]}"
        body = {"slug": slug, "name": f"County {i}", "jurisdiction": _boundary(-100 + i, 40, 3000)}
        assert registry.post("/v1/agencies", json=body, headers=auth("agency_admin", slug)).status_code == 201
        made.append(slug)

    full = registry.get("/v1/agencies", params={"limit": 1000})
    names = registry.get("/v1/agencies", params={"limit": 1000, "skipGeometry": "true"})
    assert full.status_code == names.status_code == 200, names.text
    assert names.headers["content-type"] == "application/geo+json"
    listed, bare = full.json()["features"], names.json()["features"]
    assert set(made) <= {f["properties"]["slug"] for f in bare}
    # The same agencies, in the same order, with the same properties: only the geometry is left out (null).
    assert [(f["id"], f["properties"]) for f in bare] == [(f["id"], f["properties"]) for f in listed]
    assert all(f["type"] == "Feature" and f["geometry"] is None for f in bare)
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in listed)
    # Far fewer bytes for these agencies (the list also holds other tests' agencies, with small boundaries).
    ours = [
        sum(len(json.dumps(f, separators=(",", ":"))) for f in features if f["properties"]["slug"] in made)
        for features in (bare, listed)
    ]
    assert ours[0] * 50 < ours[1], ours
    # false is the default: the jurisdictions as before.
    explicit = registry.get("/v1/agencies", params={"limit": 1000, "skipGeometry": "false"})
    assert explicit.json()["features"] == listed

    # The same for one agency, and for those covering a point.
    one = registry.get(f"/v1/agencies/{made[0]}", params={"skipGeometry": "true"})
    assert one.status_code == 200 and one.json()["geometry"] is None
    assert len(one.content) * 50 < len(registry.get(f"/v1/agencies/{made[0]}").content)
    assert one.json()["properties"]["slug"] == made[0]
    assert registry.get(f"/v1/agencies/{made[0]}").json()["geometry"]["type"] == "MultiPolygon"
    covering = registry.get("/v1/agencies/covering", params={"lon": -100, "lat": 40, "skipGeometry": "true"})
    assert covering.status_code == 200
    # Other tests' agencies may cover the same point (one database for the run): ours is among them, and none
    # carries its jurisdiction.
    found = covering.json()["features"]
    assert made[0] in {f["properties"]["slug"] for f in found}
    assert found and all(f["geometry"] is None for f in found)


def test_a_bad_skip_geometry_is_a_problem_not_a_guess(registry: httpx.Client, new_agency: NewAgency) -> None:
    agency = new_agency()
    lon, lat = agency.centre
    for path, query in [
        ("/v1/agencies", "skipGeometry=maybe"),
        ("/v1/agencies", "skipGeometry="),
        ("/v1/agencies", "skipGeometry=true&skipGeometry=false"),
        ("/v1/agencies", "skipGeometry=%00"),
        (f"/v1/agencies/{agency.slug}", "skipGeometry=2"),
        ("/v1/agencies/covering", f"lon={lon}&lat={lat}&skipGeometry=null"),
    ]:
        r = registry.get(f"{path}?{query}")
        assert r.status_code in (400, 422), (query, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM, query
        assert r.json()["status"] == r.status_code
