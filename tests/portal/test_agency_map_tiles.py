"""The investigator's map for an agency with more cameras than its pages comfortably carry (above
web/src/workspace.ts TILE_MAP_ABOVE, 10,000): after one page the map counts the cameras, stops paging and draws
them from geo_query's vector tiles, each fetched with the officer's bearer token; every camera is drawn at the
jurisdiction's zoom; a filter that keeps fewer cameras than the threshold brings the paged, clustered map back; a
camera selected on the map is searched around and listed first, with the request link."""

from __future__ import annotations

import uuid

import httpx
from playwright.sync_api import Request, expect

from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Visit
from tests.portal.test_agency_map_scale import N, import_cameras
from tests.portal.test_agency_workspace import new_agency

THRESHOLD = 10_000  # web/src/workspace.ts TILE_MAP_ABOVE
EXTRA = 5  # one more registration's cameras: N + EXTRA is above the threshold


def test_above_the_threshold_the_map_draws_the_cameras_from_tiles_with_the_token_and_selection_works(
    visit: Visit, registry: httpx.Client, auth: Token
) -> None:
    assert N == THRESHOLD  # the scale test's 10,000 are paged; these 10,005 are not
    a = new_agency(registry, auth)
    import_cameras(registry, auth, a.slug, round(a.lon - 0.05, 4), round(a.lat - 0.05, 4))
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": a.slug,
            "location": {"type": "Point", "coordinates": [a.lon, a.lat]},
            "contact": {"name": "Ana Ruiz", "email": f"owner-{uuid.uuid4().hex[:12]}@example.org"},
            "cameras": [{"retention_days": 30} for _ in range(EXTRA)],
        },
    )
    assert r.status_code == 201, r.text
    total = N + EXTRA

    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    pages: list[str] = []
    tiles: list[Request] = []
    scripts: list[str] = []

    def on_request(request: Request) -> None:
        if "/v1/ogc/collections/cameras/items?" in request.url:
            pages.append(request.url)
        if "/v1/tiles/cameras/" in request.url:
            tiles.append(request)
        if request.resource_type == "script":
            scripts.append(request.url.rsplit("/", 1)[-1])

    page.on("request", on_request)
    visit.open("/agency")
    the_map = page.locator("#ws-map")
    expect(the_map).to_have_attribute("data-mode", "tiles", timeout=30_000)
    expect(the_map).to_have_attribute("data-complete", "true", timeout=30_000)
    expect(page.get_by_role("status").filter(has_text="cameras are shared with")).to_contain_text(
        f"{total:,} cameras are shared with Police Department {a.slug}: too many to load one by one"
    )
    # The tile decoder's script was fetched for this map (it is not part of any other page).
    assert [s for s in scripts if s.startswith("camera-tiles-")], scripts
    # One page was read, then the tiles: never the other pages.
    assert len(pages) == 1 and the_map.get_attribute("data-requests") == "1"
    assert tiles and all(t.url.split("?")[0].endswith(".mvt") for t in tiles)
    # Each tile carried the officer's token in its header (a fetch, not an image URL).
    assert all(t.headers.get("authorization", "").startswith("Bearer ") for t in tiles)
    # The whole jurisdiction in view: every camera is drawn once (a camera in a tile's buffer counts in its own).
    assert the_map.get_attribute("data-drawn-points") == str(total)
    assert page.locator(".camera-cluster").count() == 0
    visit.check("agency-map-tiles")

    # The threshold is on the cameras the filters keep: the businesses (half the imported ones, 5,000) are paged
    # and clustered as any small agency's; without the filter the map is drawn from the tiles again.
    page.get_by_text("Filters (map and search)").click()
    business = page.locator("label[for=ws-kind-business]")
    business.click()
    page.get_by_role("button", name="Apply to the map").click()
    expect(page.get_by_role("status").filter(has_text="cameras shared with")).to_have_text(
        f"{N // 2:,} cameras shared with Police Department {a.slug} are on the map."
    )
    expect(the_map).not_to_have_attribute("data-mode", "tiles")
    assert the_map.get_attribute("data-drawn-points") == str(N // 2)
    business.click()
    page.get_by_role("button", name="Apply to the map").click()
    expect(the_map).to_have_attribute("data-mode", "tiles")
    expect(the_map).to_have_attribute("data-complete", "true")
    expect(the_map).to_have_attribute("data-drawn-points", str(total))
    assert len(pages) == 1 + N // 2 // 2000 + 1 + 1  # 5,000 are three pages; each load reads the first page

    # A camera selected on the map (the registration's, at the centre of the view): the search is made at its
    # place, so it is listed first, 0 m away, with the request link.
    box = the_map.bounding_box()
    assert box is not None
    the_map.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    expect(page.get_by_role("heading", name="10 cameras, nearest first")).to_be_visible()
    selected = the_map.get_attribute("data-selected-camera")
    assert selected
    # The registration's five cameras share its place: the selected one is among the first five, 0 m away, marked.
    item = page.locator(f'.ws-result[data-camera="{selected}"]')
    expect(item.locator(".ws-result__title")).to_contain_text(" 0 m")
    expect(item.get_by_text("Selected on the map")).to_be_visible()
    ranks = page.locator(".ws-result").evaluate_all("els => els.map(e => e.dataset.camera)")
    assert selected in ranks[:EXTRA]
    expect(page.get_by_role("link", name="Request footage around here")).to_be_visible()
    visit.check("agency-map-tiles-selected")

    # Zoomed in, the tiles of the new zoom are fetched (with the token) and fewer cameras are in view.
    fetched = len(tiles)
    page.locator(".leaflet-control-zoom-in").click()
    expect(the_map).to_have_attribute("data-complete", "true")
    assert len(tiles) > fetched
    assert all(t.headers.get("authorization", "").startswith("Bearer ") for t in tiles)
    assert int(the_map.get_attribute("data-drawn-points") or 0) < total
