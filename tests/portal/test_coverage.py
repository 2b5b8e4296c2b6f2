"""The coverage map in the portal, in Chromium against the real services: the public page (/coverage) draws a
program's public cells and lists the same cells in a table, hides a cell below k, explains its numbers and speaks
Spanish; the agency admin's layer on the cameras map shows the exact counts and the empty cells with a summary of
the gaps, says so in words when the API refuses it, and is absent for an investigator."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Program, Visit
from tests.portal.test_agency_workspace import new_agency


def seed(registry: httpx.Client, agency: str, lon: float, lat: float, n: int) -> None:
    """One registration with n cameras at (lon, lat), made through the public contract as a resident does."""
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": agency,
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "contact": {"name": "Ana Ruiz", "email": f"owner-{uuid.uuid4().hex[:12]}@example.org"},
            "cameras": [{"retention_days": 30} for _ in range(n)],
        },
    )
    assert r.status_code == 201, r.text


def centre(feature: dict[str, Any]) -> str:
    """A cell's centre as the page writes it: the mean of its hexagon's six corners, latitude first."""
    ring = feature["geometry"]["coordinates"][0][:-1]
    lon = sum(p[0] for p in ring) / len(ring)
    lat = sum(p[1] for p in ring) / len(ring)
    return f"{lat:.4f}, {lon:.4f}"


def table_rows(page: Page, table: str) -> list[tuple[str, str]]:
    rows = page.locator(f"{table} tbody tr")
    return [
        (rows.nth(i).locator("th").inner_text().strip(), rows.nth(i).locator("td").inner_text().strip())
        for i in range(rows.count())
    ]


def expected_rows(features: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The API's cells in the page's order: most cameras first, then north to south."""
    ordered = sorted(features, key=lambda f: (-f["properties"]["cameras"], -float(centre(f).split(",")[0])))
    return [(centre(f), f"{f['properties']['cameras']:,}") for f in ordered]


def test_the_public_coverage_page_draws_the_cells_lists_them_and_hides_a_cell_below_k(
    visit: Visit, program: Program, registry: httpx.Client, geo: httpx.Client
) -> None:
    # 12 cameras in one place, 3 in another about 5 km away: at 1 km the first cell shows "10" (12 rounded down
    # to 5), the second (3 < k = 5) is not shown at all.
    seed(registry, program.slug, program.lon, program.lat, 12)
    seed(registry, program.slug, round(program.west + 0.01, 6), round(program.south + 0.01, 6), 3)
    answer = geo.get("/v1/coverage", params={"agency": program.slug, "size": 1000}).json()
    assert [f["properties"]["cameras"] for f in answer["features"]] == [10]
    assert answer["min_cameras"] == 5

    page = visit.page
    scripts: list[str] = []
    page.on(
        "request", lambda r: scripts.append(r.url.rsplit("/", 1)[-1]) if r.resource_type == "script" else None
    )
    # From "Am I covered?": the program covering the place links to its coverage map.
    visit.open("/")
    # The first page carries neither the coverage page's script nor the tile decoder.
    assert not [s for s in scripts if s.startswith(("coverage", "camera-tiles"))], scripts
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_role("button", name="Show this place").click()
    page.get_by_role("link", name=f"See where {program.name}'s program has cameras").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Camera coverage map")
    expect(page.locator("#cov-agency")).to_have_value(program.slug)
    # Its script came when it was opened; the tile decoder (the large agencies' map only) still did not.
    assert [s for s in scripts if s.startswith("coverage-")], scripts
    assert not [s for s in scripts if s.startswith("camera-tiles")], scripts
    expect(page.locator("nav").get_by_role("link", name="Coverage map")).to_have_attribute(
        "aria-current", "page"
    )

    the_map = page.locator("#cov-map")
    expect(the_map).to_have_attribute("data-complete", "true")
    expect(page.get_by_role("status")).to_have_text(
        "1 area is shown, holding 10 registered cameras (rounded down)."
    )
    # What the numbers mean, in words, with the program's own k.
    meaning = page.get_by_role("region", name="What the numbers mean")
    expect(meaning).to_contain_text("rounded down to a multiple of 5: 15 means 15 to 19 cameras")
    expect(meaning).to_contain_text("An area with fewer than 5 cameras is not shown at all")
    # The map drew exactly the API's cells, and the table lists the same ones: the 3-camera cell is in neither.
    assert the_map.get_attribute("data-drawn-cells") == "1"
    assert the_map.get_attribute("data-drawn-cameras") == "10"
    assert table_rows(page, ".cov-table") == expected_rows(answer["features"])
    expect(page.get_by_role("table", name=f"Areas of {program.name} (about 2.6 km² each)")).to_be_visible()
    visit.check("coverage-public-1km")

    # Larger areas: the page asks for 5 km cells and shows what the API answers for them.
    page.get_by_text("Larger areas").click()
    page.get_by_role("button", name="Show the map").click()
    expect(page).to_have_url(f"{visit.base}/coverage?agency={program.slug}&size=5000")
    large = geo.get("/v1/coverage", params={"agency": program.slug, "size": 5000}).json()["features"]
    expect(page.locator(".cov-table tbody tr")).to_have_count(len(large))
    assert table_rows(page, ".cov-table") == expected_rows(large)
    assert page.locator("#cov-map").get_attribute("data-drawn-cells") == str(len(large))

    # In Spanish, the same page and the same figures.
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mapa de cobertura de cámaras")
    expect(page.get_by_role("region", name="Qué significan los números")).to_contain_text(
        "Una zona con menos de 5 cámaras no se muestra"
    )
    expect(page.get_by_role("button", name="Mostrar el mapa")).to_be_visible()
    assert table_rows(page, ".cov-table") == expected_rows(large)
    visit.check("coverage-public-es")


def test_a_program_with_no_cell_at_k_says_so_instead_of_drawing_zeros(
    visit: Visit, program: Program, registry: httpx.Client
) -> None:
    seed(registry, program.slug, program.lon, program.lat, 4)
    page = visit.page
    visit.open(f"/coverage?agency={program.slug}")
    expect(page.get_by_role("status")).to_have_text(
        "No area of this program holds 5 or more registered cameras yet, so no area is shown."
    )
    expect(page.locator(".cov-table")).to_have_count(0)
    assert page.locator("#cov-map").get_attribute("data-drawn-cells") == "0"
    visit.check("coverage-public-none")


def test_the_admin_sees_exact_counts_and_empty_cells_an_investigator_has_no_such_layer(
    visit: Visit, registry: httpx.Client, geo: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    # 3 and 7 cameras: both below what the public map would show exactly (3 < k; 7 would read "5").
    seed(registry, a.slug, a.lon, a.lat, 3)
    seed(registry, a.slug, round(a.lon - 0.04, 6), round(a.lat - 0.04, 6), 7)
    admin = auth("agency_admin", a.slug)
    cells = geo.get("/v1/coverage/agency", params={"size": 1000}, headers=admin).json()["features"]
    counted = sorted(f["properties"]["cameras"] for f in cells if f["properties"]["cameras"])
    empty = sum(1 for f in cells if f["properties"]["cameras"] == 0)
    assert counted == [3, 7] and empty > 0

    page = visit.page
    sign_in_agency(visit, "agency_admin", a.slug)
    visit.open("/agency/program")
    page.get_by_role(
        "link", name="Coverage for recruiting, with the exact counts (on the cameras map)"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cameras near an incident")
    # Opened from the program page, the layer is on.
    expect(page.get_by_label("Show the coverage areas on the map")).to_be_checked()
    summary = page.locator(".cov-admin__summary")
    expect(summary).to_have_text(
        f"{len(cells)} areas of 2.6 km² cover your jurisdiction and hold 10 cameras; {empty} of them have no camera."
    )
    the_map = page.locator("#ws-map")
    assert the_map.get_attribute("data-drawn-cells") == str(len(cells))
    assert the_map.get_attribute("data-drawn-empty") == str(empty)
    expect(page.locator(".cov-legend")).to_contain_text("No camera: recruit here")
    expect(page.locator(".cov-gaps li").first).to_contain_text("neighbouring areas without a camera")
    page.get_by_text("The 2 areas with cameras, with their exact counts").click()
    assert table_rows(page, ".cov-admin__cells") == expected_rows(
        [f for f in cells if f["properties"]["cameras"]]
    )
    assert [r[1] for r in table_rows(page, ".cov-admin__cells")] == ["7", "3"]
    visit.check("coverage-admin")

    # Off: the cells leave the map.
    toggle = page.locator("label[for=ws-coverage]")  # USWDS hides the box itself behind its label
    toggle.click()
    expect(page.get_by_label("Show the coverage areas on the map")).not_to_be_checked()
    expect(the_map).to_have_attribute("data-drawn-cells", "0")
    expect(summary).to_have_count(0)

    # A refusal reaching the page (the coverage asked with an investigator's token, which geo_query refuses) is
    # said in words.
    investigator = auth("investigator", a.slug)["Authorization"]

    def as_investigator(route: Route) -> None:
        route.continue_(headers={**route.request.headers, "authorization": investigator})

    page.route("**/v1/coverage/agency?*", as_investigator)
    toggle.click()
    expect(page.locator(".cov-admin").get_by_role("alert")).to_have_text(
        "Only your agency's administrator can see the coverage for recruiting."
    )
    assert the_map.get_attribute("data-drawn-cells") == "0"
    page.unroute("**/v1/coverage/agency?*")
    visit.check("coverage-admin-refused")

    # An investigator's map has no coverage layer at all.
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency?coverage=1")
    expect(page.locator("#ws-map")).to_have_attribute("data-complete", "true")
    expect(page.get_by_role("heading", name="Coverage for recruiting")).to_have_count(0)
    expect(page.locator("#ws-coverage")).to_have_count(0)
    assert page.locator("#ws-map").get_attribute("data-drawn-cells") is None
