"""The place picker's overview map reads the programs' boundaries simplified for its zoom (never whole), reads
them finer as the resident zooms in, still draws them; and which program covers a place, even a click a few
metres from a boundary, is asked of the service by its point."""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, Response, ViewportSize, expect

from tests.portal.conftest import Program, Visit

PHONE: ViewportSize = {"width": 360, "height": 740}
# The overview's tolerances (web/src/place.ts): powers of two metres, from 32 m to 65,536 m.
TOLERANCES = {2**k for k in range(5, 17)}


def list_reads(page: Page) -> list[Response]:
    """The answers to the page's reads of the agency list (GET /v1/agencies) from now on."""
    seen: list[Response] = []
    page.on(
        "response",
        lambda r: (
            seen.append(r) if r.request.method == "GET" and re.search(r"/v1/agencies(\?|$)", r.url) else None
        ),
    )
    return seen


def query(r: Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(r.url).query, keep_blank_values=True)


def simplify_of(r: Response) -> int:
    """The tolerance a read asked for; one that asked for none is taken as infinitely coarse."""
    values = query(r).get("simplify")
    return int(values[0]) if values and len(values) == 1 else 10**9


def test_the_overview_map_reads_the_programs_simplified_for_its_zoom_and_still_draws_them(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    reads = list_reads(page)
    visit.open("/")
    paths = page.locator(".portal-map-box .leaflet-overlay-pane path")
    expect(paths.first).to_be_attached()
    visit.check("overview-simplified")
    # Every read of the list for the map asked for the simplified form, at one of the overview's tolerances.
    assert reads and all(query(r).get("simplify", [""])[0] in {str(t) for t in TOLERANCES} for r in reads), [
        r.url for r in reads
    ]
    assert all(r.status == 200 for r in reads)
    # The programs answered last are drawn, one shape each.
    drawn = reads[-1].json()["features"]
    assert drawn and all(f["geometry"]["type"] == "MultiPolygon" for f in drawn)
    expect(paths).to_have_count(len(drawn))

    # Zoomed in, the boundaries are read again, finer, once a pixel is less than half the tolerance they were read
    # at. The overview was fitted to the programs from zoom 4 (its tolerance then at least a 32nd of a pixel's
    # size at the fitted zoom, whatever the programs' spread), so seven steps in are sure to pass that point.
    before = simplify_of(reads[-1])
    with page.expect_response(
        lambda r: re.search(r"/v1/agencies\?", r.url) is not None and simplify_of(r) < before
    ) as finer:
        for _ in range(7):
            page.locator(".leaflet-control-zoom-in").click()
    expect(paths).to_have_count(len(finer.value.json()["features"]))
    assert all("simplify" in query(r) for r in reads), [r.url for r in reads]

    # A place typed: which programs cover it is asked by its point, and those are drawn as stored.
    with page.expect_response(re.compile(r"/v1/agencies/covering\?")) as covering:
        page.get_by_label("Latitude").fill(str(program.lat))
        page.get_by_label("Longitude").fill(str(program.lon))
        page.get_by_role("button", name="Show this place").click()
    assert "simplify" not in query(covering.value)
    expect(page.get_by_text(program.name, exact=True)).to_be_visible()
    visit.check("overview-place-covered")


def test_a_click_a_few_metres_either_side_of_a_programs_edge_is_decided_by_the_service_on_its_boundary(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    visit.open("/")
    # A place typed 20 pixels inside the program's east edge: the map is centred on it at zoom 15, where a pixel
    # is 360 / 2^23 degrees of longitude (3 to 4.5 m here).
    degrees_per_px = 360 / 2 ** (15 + 8)
    east = program.west + 0.1
    lon = east - 20 * degrees_per_px
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(f"{lon:.7f}")
    page.get_by_role("button", name="Show this place").click()
    expect(page.get_by_text(program.name, exact=True)).to_be_visible()
    mapbox = page.locator(".portal-map-box")
    mapbox.scroll_into_view_if_needed()
    box = mapbox.bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    metres_per_px = 40075016.686 * math.cos(math.radians(program.lat)) / 2**23
    assert 2 < metres_per_px < 5

    # 3 pixels beyond the edge (about 10 m): not covered by the program. The map then centres on that pin.
    with page.expect_response(re.compile(r"/v1/agencies/covering\?")) as outside:
        page.mouse.click(centre_x + 23, centre_y)
    asked = query(outside.value)
    assert float(asked["lon"][0]) > east, asked
    assert program.slug not in {f["properties"]["slug"] for f in outside.value.json()["features"]}
    expect(page.get_by_text(program.name, exact=True)).to_have_count(0)
    visit.check("overview-click-outside-edge")

    # 3 pixels back inside the edge: covered.
    with page.expect_response(re.compile(r"/v1/agencies/covering\?")) as inside:
        page.mouse.click(centre_x - 6, centre_y)
    asked = query(inside.value)
    assert float(asked["lon"][0]) < east, asked
    expect(page.get_by_text(program.name, exact=True)).to_be_visible()
