"""The route canvass in the agency workspace, in Chromium against the real services: an investigator draws the path
a suspect took on the map (point by point, with the last point undone), gets the cameras along it in the order the
path passed them, each with the minutes of footage to ask for and whether it is likely still kept, exactly as
geo_query's route search answers; then requests footage along the route, and each owner is asked only for their
own minutes (stored per target). The points can be typed with the keyboard alone, and the API's problems (a buffer
over the agency's cap, a route longer than the cap) are shown at their fields."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Geocoder, Visit
from tests.portal.test_agency_workspace import new_agency, offset, register

M_PER_DEG = 111_320.0


def along(points: list[tuple[float, float]], segment: int, fraction: float) -> tuple[float, float]:
    (lon1, lat1), (lon2, lat2) = points[segment], points[segment + 1]
    return lon1 + (lon2 - lon1) * fraction, lat1 + (lat2 - lat1) * fraction


def drawn_points(visit: Visit) -> list[tuple[float, float]]:
    text = visit.page.locator("#rt-points").input_value()
    pairs = [line.split(",") for line in text.splitlines() if line.strip()]
    return [(float(lon), float(lat)) for lon, lat in pairs]


def tab_to(visit: Visit, element_id: str, most: int = 8) -> None:
    """Presses Tab until the element is focused (at most `most` times), as a keyboard user moves on."""
    for _ in range(most):
        visit.page.keyboard.press("Tab")
        if visit.page.evaluate("document.activeElement.id") == element_id:
            return
    expect(visit.page.locator(f"#{element_id}")).to_be_focused()


def camera_id(registry: httpx.Client, owner: Any) -> str:
    r = registry.get(f"/v1/registrations/{owner.id}", headers={"Authorization": f"Bearer {owner.credential}"})
    return str(r.json()["properties"]["cameras"][0]["id"])


def test_an_investigator_draws_a_route_gets_its_cameras_in_path_order_and_requests_footage_along_it(
    visit: Visit,
    registry: httpx.Client,
    geo: httpx.Client,
    requests_client: httpx.Client,
    auth: Token,
    sql: Callable[..., Any],
) -> None:
    a = new_agency(registry, auth)
    case = f"C-{uuid.uuid4().hex[:8]}"
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")
    page.locator("label[for=ws-kind-route]").click()
    expect(page.get_by_role("heading", name="Search along a route of travel")).to_be_visible()
    page.get_by_label("Case number").fill(case)

    # The path drawn on the map: east, then north; a fourth point tapped by mistake is undone.
    box = page.locator("#ws-map").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in [(-100, 80), (0, 80), (0, -80), (100, -80)]:
        page.mouse.click(cx + dx, cy + dy)
    expect(page.locator("#ws-map")).to_have_attribute("data-points", "4")
    page.get_by_role("button", name="Remove the last point").click()
    expect(page.locator("#ws-map")).to_have_attribute("data-points", "3")
    expect(page.get_by_text("3 points", exact=True)).to_be_visible()
    path = drawn_points(visit)
    assert len(path) == 3

    # Cameras along it (registered now, where the path runs), and one far from it.
    second = register(registry, a, *offset(*along(path, 1, 0.3), 12, 0), "Ana Ruiz")  # 2nd leg, 12 m east
    first = register(registry, a, *offset(*along(path, 0, 0.5), 0, 15), "Bo Lind")  # 1st leg, 15 m north
    third = register(registry, a, *offset(*along(path, 1, 0.8), 20, 0), "Cy Moss", retention_days=1)
    register(registry, a, *offset(*along(path, 0, 0.5), 0, -800), "Di Park")  # 800 m south: not along it
    expected = [camera_id(registry, o) for o in (first, second, third)]

    # Travelled by car from 26 hours ago: the camera keeping a single day has overwritten it.
    start_local = (datetime.now() - timedelta(hours=26)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("When the first point was passed").fill(start_local)
    page.get_by_label("Distance either side of the path, in metres").fill("40")
    page.get_by_role("button", name="Find cameras").click()
    expect(
        page.get_by_role("heading", name="3 cameras along the path, in the order it passed them")
    ).to_be_visible()

    # The same search through the API: the page lists its answer, in its order, with its windows.
    start_iso = page.evaluate("(v) => new Date(v).toISOString()", start_local)
    body = {
        "path": {"type": "LineString", "coordinates": [list(p) for p in path]},
        "buffer_m": 40,
        "start": start_iso,
        "speed": "driving",
        "margin_s": 120,
    }
    answer = geo.post(
        "/v1/cameras/route",
        params={"case_number": case, "contacts": "false"},
        json=body,
        headers=auth("investigator", a.slug),
    )
    assert answer.status_code == 200, answer.text
    features = answer.json()["features"]
    assert [f["id"] for f in features] == expected
    items = page.locator("li.ws-result")
    assert [items.nth(i).get_attribute("data-camera") for i in range(items.count())] == expected
    for i, f in enumerate(features):
        window = f["properties"]["window"]
        item = items.nth(i)
        assert datetime.fromisoformat(
            item.get_attribute("data-window-start") or ""
        ) == datetime.fromisoformat(window["start"])
        assert datetime.fromisoformat(item.get_attribute("data-window-end") or "") == datetime.fromisoformat(
            window["end"]
        )
        expect(item.get_by_text("Footage to ask for:")).to_be_visible()
        kept = (
            "Likely kept until" if f["properties"]["footage_likely_available"] else "Likely overwritten since"
        )
        expect(item.get_by_text(kept)).to_be_visible()
    assert [f["properties"]["footage_likely_available"] for f in features] == [True, True, False]
    expect(items.nth(0).get_by_role("heading")).to_contain_text(
        f"{round(features[0]['properties']['distance_m'])} m from it"
    )
    visit.check("agency-route-results")

    # A footage request along the route: each owner asked only for the minutes the path passed their camera.
    page.get_by_role("link", name="Request footage along this route").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Request footage")
    expect(page.get_by_label("Case number")).to_have_value(case)
    expect(page.get_by_label("Along the route drawn on the map")).to_be_checked()
    expect(page.locator("#rq-route")).to_contain_text("3 points")
    # Back on the map to look again, the route as it was drawn; and from its answer to the request again.
    page.get_by_role("link", name="Change the route on the map").click()
    expect(page.locator("#ws-kind-route")).to_be_checked()
    assert drawn_points(visit) == path
    expect(page.get_by_label("Distance either side of the path, in metres")).to_have_value("40")
    expect(page.get_by_label("When the first point was passed")).to_have_value(start_local)
    page.get_by_role("button", name="Find cameras").click()
    expect(page.locator("li.ws-result")).to_have_count(3)
    page.get_by_role("link", name="Request footage along this route").click()
    expect(page.get_by_label("Along the route drawn on the map")).to_be_checked()
    page.get_by_label("Message to the owners").fill(
        "A car fled along these streets. Footage of the road would help."
    )
    visit.check("agency-new-request-route")
    page.get_by_role("button", name="Create the request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {case}: Burglary")
    rid = page.url.rsplit("/", 1)[1]
    expect(page.get_by_text("Along a route of")).to_be_visible()
    expect(page.get_by_role("heading", name="Footage asked of each owner")).to_be_visible()

    windows = {f["id"]: f["properties"]["window"] for f in features}
    stored = sql(
        "SELECT t.id::text AS id, t.window_start, t.window_end, t.cameras->0->>'camera_id' AS camera"
        " FROM requests.targets t"
        " WHERE t.request_id = $1::uuid",
        rid,
    )
    assert stored, "the request reached no owner"
    assert {r["camera"] for r in stored} <= set(expected)
    for r in stored:
        window = windows[r["camera"]]
        assert r["window_start"] == datetime.fromisoformat(window["start"])
        assert r["window_end"] == datetime.fromisoformat(window["end"])
    assert len({r["window_start"] for r in stored}) == len(stored)  # each its own minutes
    shown = page.locator(".ws-route-windows li")
    expect(shown).to_have_count(len(stored))
    by_target = {r["id"]: r for r in stored}
    for i in range(len(stored)):
        li = shown.nth(i)
        target = by_target[li.get_attribute("data-target") or ""]
        assert datetime.fromisoformat(li.get_attribute("data-window-start") or "") == target["window_start"]
        assert datetime.fromisoformat(li.get_attribute("data-window-end") or "") == target["window_end"]
    r = requests_client.get(f"/v1/requests/{rid}", headers=auth("investigator", a.slug))
    assert r.json()["area_kind"] == "route"
    visit.check("agency-request-route")


def test_route_points_typed_with_the_keyboard_alone_and_the_apis_problems_shown_at_their_fields(
    visit: Visit, registry: httpx.Client, auth: Token, geocoder: Geocoder
) -> None:
    a = new_agency(registry, auth, max_search_radius_m=100)
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency")

    # From the case number to the route's points with the keyboard only: Tab, the arrow keys, typing.
    page.get_by_label("Case number").focus()
    page.keyboard.type(f"C-{uuid.uuid4().hex[:8]}")
    page.keyboard.press("Tab")
    expect(page.locator("#ws-kind-place")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#ws-kind-route")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.locator("#rt-points")).to_be_focused()
    east = offset(a.lon, a.lat, 300, 0)
    north = offset(*east, 0, 300)
    page.keyboard.type(f"{a.lon}, {a.lat}\n{east[0]}, {east[1]}\n{north[0]}, {north[1]}")
    expect(page.locator("#ws-map")).to_have_attribute("data-points", "3")
    # A fourth point by its address (the geocoder's first answer), Enter adding it rather than searching.
    corner = offset(*north, -300, 0)
    address = f"Corner {uuid.uuid4().hex[:6]}"
    geocoder.places[address] = [
        {"lat": str(corner[1]), "lon": str(corner[0]), "display_name": "Oak St & 5th Ave"}
    ]
    tab_to(visit, "rt-address")  # past the undo and clear buttons
    page.keyboard.type(address)
    page.keyboard.press("Enter")
    expect(page.locator("#ws-map")).to_have_attribute("data-points", "4")
    expect(page.get_by_text("Added: Oak St & 5th Ave")).to_be_visible()
    assert drawn_points(visit)[-1] == (round(corner[0], 6), round(corner[1], 6))
    tab_to(visit, "rt-buffer")
    page.keyboard.press("Control+a")
    page.keyboard.type("500")
    page.keyboard.press("Enter")
    # The agency's cap on the buffer (its policy's), at the buffer's field, in the officer's words.
    expect(page.locator("#rt-buffer-error")).to_have_text(
        "Enter a distance of at most 100 m, your agency's limit."
    )
    expect(page.locator(".error-summary")).to_be_focused()
    visit.check("agency-route-buffer-over-cap")

    # A path longer than the cap (about 67 km): the API's problem at the points.
    page.get_by_label("Distance either side of the path, in metres").fill("50")
    far = (a.lon, round(a.lat + 0.6, 6))
    page.get_by_label("Points of the path", exact=True).fill(f"{a.lon}, {a.lat}\n{far[0]}, {far[1]}")
    page.get_by_role("button", name="Find cameras").click()
    expect(page.locator("#rt-points-error")).to_have_text(
        re.compile(r"^This path is 66\.[0-9] km long, too long for one search: search it in shorter parts\.$")
    )

    # One point is no path: said at the field, nothing is asked of the API.
    page.get_by_label("Points of the path", exact=True).fill(f"{a.lon}, {a.lat}")
    page.get_by_role("button", name="Find cameras").click()
    expect(page.locator("#rt-points-error")).to_have_text("Give at least 2 points of the path.")
    visit.check("agency-route-one-point")

    # The same in Spanish.
    page.get_by_role("button", name="Español").click()
    page.locator("label[for=ws-kind-route]").click()
    expect(page.get_by_role("heading", name="Buscar a lo largo de un recorrido")).to_be_visible()
    page.get_by_label("Puntos del recorrido", exact=True).fill(f"{a.lon}, {a.lat}")
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.locator("#rt-points-error")).to_have_text("Indique al menos 2 puntos del recorrido.")
    visit.check("agency-route-es")
