"""The investigator's map with 10,000 cameras shared with the agency: every page of the OGC items is loaded
(following `next`), all of them are drawn as clusters at the jurisdiction's zoom, the clusters split as the map
zooms in, and a filter reloads the map with only the cameras it keeps."""

from __future__ import annotations

import time

import httpx
import orjson
from playwright.sync_api import Request, expect

from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Visit
from tests.portal.test_agency_workspace import new_agency

N = 10_000
PAGE = 2_000  # the map's page size (web/src/workspace.ts MAP_PAGE)


def import_cameras(registry: httpx.Client, auth: Token, slug: str, west: float, south: float) -> None:
    """N owners on a 100 × 100 grid about 100 m apart, half of them businesses, imported as an integrator does
    (by phone, so no mail is sent)."""
    features = []
    for i in range(N):
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [
                        round(west + 0.0005 + (i % 100) * 0.00099, 6),
                        round(south + 0.0005 + (i // 100) * 0.00099, 6),
                    ],
                },
                "properties": {
                    "external_id": f"grid-{i}",
                    "contact_phone": "(414) 555-0123",
                    "owner_kind": "business" if i % 2 else "residential",
                    "business_name": f"Shop {i}" if i % 2 else None,
                    "direction_deg": (i * 37) % 360,
                },
            }
        )
    headers = auth("integrator", slug, sub="integrator-1")
    r = registry.post(
        "/v1/imports",
        content=orjson.dumps({"type": "FeatureCollection", "features": features}),
        headers={**headers, "Content-Type": "application/geo+json"},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 300
    while job["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"the import did not finish: {job}"
        time.sleep(0.2)
        job = registry.get(f"/v1/imports/{job['id']}", headers=headers).json()
    assert job["status"] == "succeeded", job


def test_the_map_loads_every_page_of_10000_cameras_and_draws_them_clustered(
    visit: Visit, registry: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    import_cameras(registry, auth, a.slug, round(a.lon - 0.05, 4), round(a.lat - 0.05, 4))
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    pages: list[str] = []

    def on_request(request: Request) -> None:
        if "/v1/ogc/collections/cameras/items" in request.url:
            pages.append(request.url)

    page.on("request", on_request)
    visit.open("/agency")
    the_map = page.locator("#ws-map")
    expect(the_map).to_have_attribute("data-complete", "true", timeout=60_000)
    expect(page.get_by_role("status").filter(has_text="cameras shared with")).to_have_text(
        f"10,000 cameras shared with Police Department {a.slug} are on the map."
    )
    assert len(pages) == N // PAGE
    assert all(f"limit={PAGE}" in u for u in pages)
    assert sum("cursor=" in u for u in pages) == N // PAGE - 1
    assert the_map.get_attribute("data-loaded") == str(N)
    assert the_map.get_attribute("data-requests") == str(N // PAGE)
    # The whole jurisdiction in view: every camera is drawn, in far fewer clusters than cameras.
    assert the_map.get_attribute("data-drawn-points") == str(N)
    clusters = int(the_map.get_attribute("data-drawn-clusters") or 0)
    assert 1 <= clusters <= 200, clusters
    assert page.locator(".camera-cluster").count() == clusters
    visit.check("agency-map-10000")

    # Zoomed in, the clusters split: fewer cameras in view, more marks per camera.
    for _ in range(3):
        page.locator(".leaflet-control-zoom-in").click()
    expect(the_map).not_to_have_attribute("data-drawn-points", str(N))
    assert int(the_map.get_attribute("data-drawn-points") or 0) < N

    # A filter reloads the map with the cameras it keeps: the businesses, half of them.
    page.get_by_text("Filters (map and search)").click()
    page.locator("label[for=ws-kind-business]").click()
    page.get_by_role("button", name="Apply to the map").click()
    expect(page.get_by_role("status").filter(has_text="cameras shared with")).to_have_text(
        f"5,000 cameras shared with Police Department {a.slug} are on the map."
    )
    assert the_map.get_attribute("data-loaded") == str(N // 2)
    assert all("owner_kind=business" in u for u in pages[N // PAGE :])
    visit.check("agency-map-filtered")
