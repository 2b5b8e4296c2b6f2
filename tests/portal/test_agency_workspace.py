"""The agency workspace end to end, in Chromium against the real services: an investigator finds the cameras
near an incident (ranked, with bearing, those facing it marked), reads one owner's contact for a case (recorded),
draws an area and creates a request; a supervisor approves it from the queue (it is sent); the owner accepts and
uploads on the public pages; the investigator downloads the evidence with its SHA-256 checked in the browser, and
a file tampered on disk is shown as a failure. Another agency's investigator sees none of it. The caps refuse a
request over them before the API would, and a CAD's x/y in its EPSG code finds the same cameras."""

from __future__ import annotations

import hashlib
import math
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import FilePayload, expect
from pyproj import Transformer

from tests.conftest import Suite, Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Owner, Visit, sign_in
from tests.portal.oidc import next_staff_agency


@dataclass
class Agency:
    slug: str
    lon: float  # the incident, inside the jurisdiction
    lat: float


@dataclass
class Scene:
    agency: Agency
    owners: list[Owner]  # nearest first: the first faces the incident
    cameras: list[str]


M_PER_DEG = 111_320.0


def offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        round(lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))), 7),
        round(lat + north_m / M_PER_DEG, 7),
    )


def new_agency(registry: httpx.Client, auth: Token, **policy: Any) -> Agency:
    """An agency of the identity provider's (its staff sign in through it), with a jurisdiction of its own."""
    slug = next_staff_agency()
    west, south = round(random.uniform(-120, -75), 4), round(random.uniform(28, 47), 4)
    ring = [[west, south], [west + 0.1, south], [west + 0.1, south + 0.1], [west, south + 0.1], [west, south]]
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": slug,
            "name": f"Police Department {slug}",
            "jurisdiction": {"type": "Polygon", "coordinates": [ring]},
            "policy": {"requires_approval": True, **policy},
        },
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    return Agency(slug, round(west + 0.05, 6), round(south + 0.05, 6))


def register(
    registry: httpx.Client, agency: Agency, lon: float, lat: float, name: str, **camera: Any
) -> Owner:
    email = f"owner-{uuid.uuid4().hex[:12]}@example.org"
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": agency.slug,
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "contact": {"name": name, "email": email},
            "cameras": [{"retention_days": 30, **camera}],
        },
    )
    assert r.status_code == 201, r.text
    return Owner(r.json()["id"], r.json()["credential"], email)


@pytest.fixture
def scene(registry: httpx.Client, auth: Token) -> Scene:
    return make_scene(registry, auth)


def make_scene(registry: httpx.Client, auth: Token) -> Scene:
    """Three owners around the incident: 20 m south looking north at it, 60 m east looking east (away), 150 m
    north with no direction."""
    a = new_agency(registry, auth)
    facing = register(
        registry, a, *offset(a.lon, a.lat, 0, -20), "Dana Rivera", direction_deg=0, fov_deg=90, range_m=40
    )
    away = register(
        registry, a, *offset(a.lon, a.lat, 60, 0), "Lee Chen", direction_deg=90, fov_deg=60, range_m=40
    )
    far = register(registry, a, *offset(a.lon, a.lat, 0, 150), "Sam Okafor")
    owners = [facing, away, far]
    cameras = [
        registry.get(f"/v1/registrations/{o.id}", headers={"Authorization": f"Bearer {o.credential}"}).json()[
            "properties"
        ]["cameras"][0]["id"]
        for o in owners
    ]
    return Scene(a, owners, cameras)


def search_nearest(visit: Visit, lat: float, lon: float, case: str | None = None) -> None:
    page = visit.page
    if case is not None:
        page.get_by_label("Case number").fill(case)
    page.get_by_label("Latitude", exact=True).fill(str(lat))
    page.get_by_label("Longitude", exact=True).fill(str(lon))
    page.get_by_role("button", name="Find cameras").click()


def test_investigator_to_verified_evidence_end_to_end(
    visit: Visit,
    scene: Scene,
    registry: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    suite: Suite,
    sql: Callable[..., Any],
) -> None:
    page = visit.page
    a = scene.agency
    case = f"C-{uuid.uuid4().hex[:8]}"

    # The investigator's map: the jurisdiction's cameras, then the nearest to the incident, ranked.
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")
    expect(page.get_by_role("status").filter(has_text="cameras shared with")).to_have_text(
        f"3 cameras shared with Police Department {a.slug} are on the map."
    )
    visit.check("agency-map")
    search_nearest(visit, a.lat, a.lon, case)
    expect(page.get_by_role("heading", name="3 cameras, nearest first")).to_be_visible()
    items = page.locator("li.ws-result")
    assert [items.nth(i).get_attribute("data-camera") for i in range(3)] == scene.cameras
    expect(items.nth(0).get_by_role("heading")).to_have_text("1. 20 m S (180°)")
    expect(items.nth(0).get_by_text("Faces the incident")).to_be_visible()
    expect(items.nth(1).get_by_text("Faces the incident")).to_have_count(0)
    expect(page.get_by_text("1 of them faces the incident.")).to_be_visible()
    visit.check("agency-map-results")

    # One contact, read for the case and said to be recorded; the others stay unread.
    items.nth(0).get_by_role("button", name="Show the owner's contact").click()
    expect(
        items.nth(0).get_by_text(f"This view is recorded in the audit trail under case {case}.")
    ).to_be_visible()
    expect(items.nth(0).get_by_text("Dana Rivera")).to_be_visible()
    assert "Lee Chen" not in page.content()
    visit.check("agency-contact")
    audited = sql(
        "SELECT action, subject_id::text AS subject FROM audit.events WHERE case_number = $1 AND action LIKE '%contact%'",
        case,
    )
    assert [r["subject"] for r in audited] == [scene.owners[0].id]

    # A request over an area drawn corner by corner around the incident.
    page.get_by_role("link", name="Request footage around here").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request footage")
    expect(page.get_by_label("Case number")).to_have_value(case)
    page.locator("label[for=rq-shape-polygon]").click()
    box = page.locator("#ws-draw-map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in [(-60, -60), (60, -60), (60, 60), (-60, 60)]:
        page.mouse.click(cx + dx, cy + dy)
    expect(page.locator("#ws-draw-map")).to_have_attribute("data-corners", "4")
    expect(page.locator("[data-cap=area]")).to_contain_text("m² your agency allows")
    page.get_by_label("Message to the owners").fill(
        "A burglary on this block this afternoon. Street footage would help."
    )
    visit.check("agency-new-request")
    page.get_by_role("button", name="Create the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {case}: Burglary")
    expect(page.locator(".ws-request-state")).to_contain_text("Draft")
    rid = page.url.rsplit("/", 1)[1]
    visit.check("agency-request-draft")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator(".ws-request-state")).to_contain_text("Waiting for approval")
    expect(page.get_by_role("button", name="Approve and send")).to_have_count(0)

    # The supervisor's queue: approved, and so sent.
    sign_in_agency(visit, "supervisor", a.slug)
    visit.open("/agency/approvals")
    card = page.locator(f"[data-request='{rid}']")
    expect(card).to_contain_text(f"Case {case}: Burglary")
    visit.check("agency-approvals")
    card.get_by_role("link").click()
    page.get_by_label("Note for the history").fill("Proportionate.")
    page.get_by_role("button", name="Approve and send").click()
    expect(page.locator(".ws-request-state")).to_contain_text("Sent")
    expect(page.get_by_text("Proportionate.")).to_be_visible()
    visit.check("agency-request-sent")

    # The owner facing the incident accepts and uploads on the public pages.
    sign_in(visit, scene.owners[0])
    page.get_by_role("link", name="Footage requests").click()
    owner_card = page.locator("section.portal-card", has_text="A burglary on this block this afternoon.")
    owner_card.get_by_role("button", name="Share footage").click()
    footage = os.urandom(2 * 1024 * 1024 + 5)
    expected = hashlib.sha256(footage).hexdigest()
    upload: FilePayload = {"name": "front-door.mp4", "mimeType": "video/mp4", "buffer": footage}
    owner_card = page.locator("section.portal-card", has_text="A burglary on this block this afternoon.")
    owner_card.get_by_label("Video file").set_input_files(files=[upload])
    owner_card.get_by_role("button", name="Upload").click()
    expect(owner_card.get_by_text("Received intact: the fingerprints match")).to_be_visible()

    # The investigator downloads it: the hash computed as it streams matches the record.
    sign_in_agency(visit, "investigator", a.slug)
    visit.open(f"/agency/requests/{rid}")
    evidence = page.locator("section.ws-evidence")
    expect(evidence.locator("[data-hash=record]")).to_have_text(expected)
    expect(evidence).to_contain_text("video/mp4")
    expect(page.get_by_text("Who declined or did not answer is never shown")).to_be_visible()
    assert "Lee Chen" not in page.content() and scene.owners[1].id not in page.content()
    evidence.get_by_role("button", name="Download and check").click()
    expect(evidence.locator("[data-verdict=ok]")).to_contain_text("matches the record")
    expect(evidence.get_by_role("link", name="Save front-door.mp4")).to_be_visible()
    visit.check("agency-evidence-verified")
    evidence.get_by_role("button", name="Re-verify the stored file").click()
    expect(evidence.locator("[data-verdict=ok]")).to_contain_text("Re-verified")
    evidence.get_by_role("button", name="Export the chain of custody").click()
    expect(evidence.locator("[data-verdict=ok]")).to_contain_text("records, intact.")
    with page.expect_download() as saved:
        evidence.get_by_role("link", name="Save the chain of custody (JSON)").click()
    assert saved.value.suggested_filename.startswith("custody-")

    # The stored file tampered with on disk: the download is a failure and nothing is offered to save.
    path = Path(suite.env["CANVASS_EVIDENCE_DIR"]) / "objects" / expected[:2] / expected[2:4] / expected
    os.chmod(path, 0o644)
    with path.open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00tampered\x00")
    visit.open(f"/agency/requests/{rid}")
    evidence = page.locator("section.ws-evidence")
    evidence.get_by_role("button", name="Download and check").click()
    expect(evidence.locator("[data-verdict=failure]")).to_contain_text("Failure")
    expect(evidence.get_by_role("link", name="Save front-door.mp4")).to_have_count(0)
    visit.check("agency-evidence-tampered")
    evidence.get_by_role("button", name="Re-verify the stored file").click()
    expect(evidence.locator("[data-verdict=failure]")).to_contain_text("does not match its SHA-256")

    # The legal hold, set and lifted by the supervisor.
    sign_in_agency(visit, "supervisor", a.slug)
    visit.open(f"/agency/requests/{rid}")
    page.get_by_role("button", name="Set a legal hold").click()
    expect(page.get_by_text("Legal hold: this request's evidence is never deleted")).to_be_visible()
    held = requests_client.get(f"/v1/requests/{rid}", headers=auth("supervisor", a.slug))
    assert held.json()["legal_hold"] is True
    page.get_by_role("button", name="Lift the legal hold").click()
    expect(page.get_by_role("button", name="Set a legal hold")).to_be_visible()
    assert (
        requests_client.get(f"/v1/requests/{rid}", headers=auth("supervisor", a.slug)).json()["legal_hold"]
        is False
    )


def test_another_agency_sees_none_of_it(
    visit: Visit, scene: Scene, registry: httpx.Client, requests_client: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    now = datetime.now(UTC)
    case = f"C-{uuid.uuid4().hex[:8]}"
    body = {
        "case_number": case,
        "category": "theft",
        "incident": {"type": "Point", "coordinates": [a.lon, a.lat]},
        "radius_m": 200,
        "window": {
            "start": (now - timedelta(hours=5)).isoformat(),
            "end": (now - timedelta(hours=4)).isoformat(),
        },
        "message": "A bicycle was taken from the rack.",
    }
    r = requests_client.post("/v1/requests", json=body, headers=auth("investigator", a.slug, sub="det-a"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    other = new_agency(registry, auth)
    page = visit.page

    sign_in_agency(visit, "investigator", other.slug)
    visit.open("/agency/requests")
    expect(page.get_by_text("No request yet.")).to_be_visible()
    assert case not in page.content()
    visit.check("agency-other-requests")
    visit.open(f"/agency/requests/{rid}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Request not found")
    assert case not in page.content()
    visit.check("agency-other-request")
    visit.open("/agency")
    expect(page.get_by_role("status").filter(has_text="cameras shared with")).to_have_text(
        f"0 cameras shared with Police Department {other.slug} are on the map."
    )
    # The API refuses the other agency alike: the request, its evidence, an owner's contact.
    theirs = auth("investigator", other.slug)
    assert requests_client.get(f"/v1/requests/{rid}", headers=theirs).status_code == 404
    assert requests_client.get(f"/v1/requests/{rid}/evidence", headers=theirs).status_code == 404
    contact = registry.get(
        f"/v1/registrations/{scene.owners[0].id}/contact", params={"case_number": case}, headers=theirs
    )
    assert contact.status_code == 404


def test_a_request_over_the_caps_cannot_be_sent_and_the_api_problem_is_shown_at_its_field(
    visit: Visit, registry: httpx.Client, auth: Token, sql: Callable[..., Any]
) -> None:
    a = new_agency(registry, auth, max_request_area_m2=100_000, max_request_window_hours=4)
    case = f"C-{uuid.uuid4().hex[:8]}"
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open(f"/agency/requests/new?lon={a.lon}&lat={a.lat}&case={case}")
    page.get_by_label("Radius in metres").fill("400")  # 502,655 m² > 100,000
    expect(page.locator("[data-cap=area]")).to_have_text(
        "The area, 502,655 m², is over the 100,000 m² your agency allows."
    )
    page.get_by_label("Message to the owners").fill("Shots heard on the corner.")
    page.get_by_role("button", name="Create the request").click()
    expect(page.locator("#rq-radius-error")).to_contain_text("is over the 100,000 m² your agency allows")
    visit.check("agency-new-request-over-cap")
    assert sql("SELECT count(*) AS n FROM requests.requests WHERE case_number = $1", case)[0]["n"] == 0

    # Within the caps here, but the window starts in the future: the API's problem, at its field, worded from its
    # code in the officer's language.
    page.get_by_label("Radius in metres").fill("100")
    later = datetime.now() + timedelta(hours=2)
    page.get_by_label("From", exact=True).fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("To", exact=True).fill((later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Create the request").click()
    expect(page.locator("#rq-start-error")).to_have_text("Time window: Enter a time that has already passed")
    assert sql("SELECT count(*) AS n FROM requests.requests WHERE case_number = $1", case)[0]["n"] == 0


def test_a_cad_xy_in_its_epsg_code_finds_the_same_cameras_and_a_contact_needs_a_case(
    visit: Visit, scene: Scene
) -> None:
    a = scene.agency
    zone = int((a.lon + 180) // 6) + 1
    epsg = 32600 + zone  # the UTM zone of the incident, in metres
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(a.lon, a.lat)
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")
    page.locator("label[for=ws-coords-xy]").click()
    page.get_by_label("x (easting)").fill(f"{x:.2f}")
    page.get_by_label("y (northing)").fill(f"{y:.2f}")
    page.get_by_label("EPSG code", exact=True).fill(str(epsg))
    page.get_by_role("button", name="Find cameras").click()
    expect(page.get_by_role("heading", name="3 cameras, nearest first")).to_be_visible()
    items = page.locator("li.ws-result")
    assert [items.nth(i).get_attribute("data-camera") for i in range(3)] == scene.cameras
    expect(items.nth(0).get_by_text("Faces the incident")).to_be_visible()
    # No case number: the contact is not read, and the page says why at the case field.
    items.nth(0).get_by_role("button", name="Show the owner's contact").click()
    expect(page.locator("#ws-case-error")).to_contain_text("an owner's contact is read only for a case")
    assert "Dana Rivera" not in page.content()
    visit.check("agency-map-xy")


def test_the_workspace_speaks_spanish(visit: Visit, scene: Scene) -> None:
    a = scene.agency
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cámaras cerca de un incidente")
    expect(page.get_by_role("status").filter(has_text="cámaras compartidas con")).to_have_text(
        f"3 cámaras compartidas con Police Department {a.slug} están en el mapa."
    )
    page.get_by_label("Latitud", exact=True).fill(str(a.lat))
    page.get_by_label("Longitud", exact=True).fill(str(a.lon))
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.get_by_role("heading", name="3 cámaras, la más cercana primero")).to_be_visible()
    expect(page.locator("li.ws-result").nth(0).get_by_role("heading")).to_have_text("1. a 20 m S (180°)")
    expect(page.get_by_text("Orientada hacia el incidente", exact=True)).to_be_visible()
    visit.check("agency-map-es")
    page.get_by_role("link", name="Solicitar video de esta zona").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Solicitar video")
    expect(page.locator("[data-cap=window]")).to_contain_text("que permite su agencia")
    visit.check("agency-new-request-es")


def test_a_radius_search_facing_only_lists_just_the_camera_facing_the_incident(
    visit: Visit, scene: Scene
) -> None:
    a = scene.agency
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")
    page.locator("label[for=ws-search-radius]").click()
    page.get_by_label("Distance in metres").fill("100")
    page.locator("label[for=ws-facing]").click()
    page.get_by_label("Latitude", exact=True).fill(str(a.lat))
    page.get_by_label("Longitude", exact=True).fill(str(a.lon))
    page.get_by_role("button", name="Find cameras").click()
    expect(page.get_by_role("heading", name="1 camera", exact=True)).to_be_visible()
    assert page.locator("li.ws-result").get_attribute("data-camera") == scene.cameras[0]
    visit.check("agency-map-radius-facing")
    # Without anything typed, the fields say what is missing, and nothing is searched.
    page.get_by_label("Latitude", exact=True).fill("")
    page.get_by_role("button", name="Find cameras").click()
    expect(page.locator("#ws-lat-error")).to_have_text("Enter a latitude between -90 and 90.")
    visit.check("agency-map-missing-latitude")


def test_the_workspace_asks_for_an_agency_sign_in(visit: Visit) -> None:
    page = visit.page
    visit.open("/agency/requests")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the agency workspace")
    expect(page.get_by_role("link", name="Agency workspace")).to_have_count(0)
    visit.check("agency-sign-in-needed")
