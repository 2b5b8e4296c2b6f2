"""Oversight in the portal, in Chromium against the real services: an auditor searches the agency's audit trail
by place around where an investigator searched (drawn on the map and typed), finds that search and not one
elsewhere, exports the records as JSON Lines through the API and the file verifies with the offline script; an
auditor of another agency finds none of it; an owner reads, in plain words, that an agency viewed their contact
for a case, and when the agency's accesses show."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Owner, Program, Visit, sign_in
from tests.portal.test_agency_workspace import Agency, new_agency, offset

ROOT = Path(__file__).resolve().parents[2]


def investigator_searches(geo: httpx.Client, auth: Token, agency: Agency, lon: float, lat: float) -> str:
    """An investigator's radius search for a new case, through the API; its case number."""
    case = f"C-{uuid.uuid4().hex[:8]}"
    r = geo.get(
        "/v1/cameras/radius",
        params={"lon": lon, "lat": lat, "radius_m": 100, "case_number": case},
        headers=auth("investigator", agency.slug, sub="det-rivera"),
    )
    assert r.status_code == 200, r.text
    return case


def assert_recorded(registry: httpx.Client, auth: Token, agency: Agency, cases: list[str]) -> None:
    """The searches' records are in the trail (geo_query appends each before its answer leaves)."""
    headers = auth("auditor", agency.slug)
    for case in cases:
        r = registry.get("/v1/audit/records", params={"case_number": case}, headers=headers)
        assert [f["properties"]["action"] for f in r.json()["features"]] == ["search.radius"], r.text


def search_around(visit: Visit, lon: float, lat: float, radius_m: int) -> None:
    page = visit.page
    page.locator("label[for=au-shape-circle]").click()
    page.get_by_label("Latitude").fill(str(lat))
    page.get_by_label("Longitude").fill(str(lon))
    page.get_by_label("Distance around the point (meters)").fill(str(radius_m))
    page.get_by_role("button", name="Search the trail").click()


def test_an_auditor_finds_a_search_by_place_and_its_export_verifies_offline(
    visit: Visit, registry: httpx.Client, geo: httpx.Client, auth: Token, tmp_path: Path
) -> None:
    x = new_agency(registry, auth)
    here = investigator_searches(geo, auth, x, x.lon, x.lat)
    elsewhere = investigator_searches(geo, auth, x, *offset(x.lon, x.lat, 3000, 3000))
    assert_recorded(registry, auth, x, [here, elsewhere])

    page = visit.page
    sign_in_agency(visit, "auditor", x.slug)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit trail").click()
    page.get_by_role("heading", level=1, name="Audit trail").wait_for()
    visit.check("audit-empty")

    # The point drawn on the map: a click fills the typed fields.
    page.locator("label[for=au-shape-circle]").click()
    page.locator("#au-map").scroll_into_view_if_needed()
    box = page.locator("#au-map").bounding_box()
    assert box
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    expect(page.get_by_label("Longitude")).not_to_have_value("")
    # A rectangle from two opposite corners clicked.
    page.locator("label[for=au-shape-rectangle]").click()
    page.mouse.click(box["x"] + box["width"] / 2 - 40, box["y"] + box["height"] / 2 + 40)
    page.mouse.click(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 - 40)
    west, south, east, north = (
        float(v) for v in page.get_by_label("Rectangle: west, south, east, north").input_value().split(",")
    )
    assert west < east and south < north

    # Typed exactly: 200 m around where the investigator searched.
    search_around(visit, x.lon, x.lat, 200)
    expect(page.locator(f'.au-record[data-case="{here}"]')).to_be_visible()
    expect(page.locator(f'.au-record[data-case="{here}"]')).to_contain_text("search.radius")
    expect(page.locator(f'.au-record[data-case="{here}"]')).to_contain_text("det-rivera")
    expect(page.locator(f'.au-record[data-case="{elsewhere}"]')).to_have_count(0)
    expect(page.get_by_role("status").filter(has_text="Records shown: ")).to_be_visible()
    expect(page.locator("#au-map")).not_to_have_attribute("data-records", "0")
    visit.check("audit-place-results")

    # The same filters exported through the API with the auditor's token, and checked offline.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download JSON Lines").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"audit-{x.slug}.jsonl"
    expect(page.get_by_text(f"Downloaded audit-{x.slug}.jsonl.")).to_be_visible()
    cases = [json.loads(line)["case_number"] for line in path.read_text().splitlines()]
    assert here in cases and elsewhere not in cases
    verified = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_verify_export.py"), str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "export verified" in verified.stdout
    expect(page.locator(".au-command")).to_contain_text("make audit-verify-export FILE=")
    visit.check("audit-exported")

    # A typed filter the API refuses is said at its field, not as a broken page.
    page.locator("label[for=au-shape-circle]").click()
    page.get_by_label("Distance around the point (meters)").fill("0")
    page.get_by_role("button", name="Search the trail").click()
    expect(page.locator("#au-radius-error")).to_contain_text(
        "Enter the distance as a number of meters above 0"
    )
    visit.check("audit-error")


def test_an_auditor_of_another_agency_sees_none_of_its_records(
    visit: Visit, registry: httpx.Client, geo: httpx.Client, auth: Token
) -> None:
    x = new_agency(registry, auth)
    y = new_agency(registry, auth)
    case = investigator_searches(geo, auth, x, x.lon, x.lat)
    assert_recorded(registry, auth, x, [case])

    page = visit.page
    sign_in_agency(visit, "auditor", y.slug)
    visit.open("/agency/audit")
    search_around(visit, x.lon, x.lat, 200)
    expect(page.get_by_text("No record matches these filters.")).to_be_visible()
    page.locator("label[for=au-shape-none]").click()
    page.get_by_label("Case number").fill(case)
    page.get_by_role("button", name="Search the trail").click()
    expect(page.get_by_text("No record matches these filters.")).to_be_visible()
    expect(page.locator(".au-record")).to_have_count(0)
    visit.check("audit-other-agency")

    # In Spanish alike.
    page.get_by_role("button", name="Español").click()
    page.get_by_role("heading", level=1, name="Registro de auditoría").wait_for()
    expect(page.get_by_role("button", name="Buscar en el registro")).to_be_visible()
    visit.check("audit-es")


def test_an_owner_reads_that_an_agency_viewed_their_contact_for_a_case(
    visit: Visit, registry: httpx.Client, auth: Token, program: Program, owner: Owner
) -> None:
    r = registry.get(
        f"/v1/registrations/{owner.id}/contact",
        params={"case_number": f"C-{uuid.uuid4().hex[:8]}"},
        headers=auth("investigator", program.slug, sub="det-rivera"),
    )
    assert r.status_code == 200, r.text

    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Who accessed my registration").click()
    page.get_by_role("heading", level=1, name="Who accessed your registration").wait_for()
    entries = page.locator(".access-entry")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text(program.name)
    expect(entries.first).to_contain_text("Looked at your contact details.")
    expect(entries.first).to_contain_text("A case number was given for it.")
    expect(page.locator("main")).not_to_contain_text("det-rivera")
    expect(page.get_by_text(f"{program.name}: at once, on the day of the access.")).to_be_visible()
    visit.check("access-report")

    page.get_by_role("button", name="Español").click()
    page.get_by_role("heading", level=1, name="Quién accedió a su registro").wait_for()
    expect(entries.first).to_contain_text("Consultó sus datos de contacto.")
    expect(entries.first).to_contain_text("Se indicó un número de caso.")
    visit.check("access-report-es")
