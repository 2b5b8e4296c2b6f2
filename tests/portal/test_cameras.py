"""A registration's cameras: added with optional details, turned on the map (its field of view a wedge that a
tap turns toward the place tapped), and removed — each change in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from tests.portal.conftest import Owner, Visit, sign_in


def test_cameras_are_added_turned_on_the_map_and_removed(
    visit: Visit, owner: Owner, sql: Callable[..., Any]
) -> None:
    page = visit.page
    cameras = "SELECT id, direction_deg, fov_deg, retention_days, placement FROM registry.cameras"
    sign_in(visit, owner)
    page.get_by_role("link", name="Add a camera").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a camera")
    page.get_by_label("A name for it").fill("Driveway")
    page.get_by_label("Direction it faces, in degrees").fill("90")
    page.get_by_role("button", name="Turn right 15°").click()
    expect(page.get_by_label("Direction it faces, in degrees")).to_have_value("105")
    expect(page.get_by_text("Facing 105°.")).to_be_visible()
    page.get_by_label("How wide it sees, in degrees").fill("100")
    page.get_by_label("Days of footage it keeps").fill("14")
    page.get_by_text("Outdoors").click()
    # The field of view is drawn on the map.
    expect(page.locator(".portal-map-box path.leaflet-interactive, .portal-map-box path")).not_to_have_count(
        0
    )
    visit.check("camera-new")
    page.get_by_role("button", name="Add the camera").click()
    expect(page.get_by_text("The camera is added.")).to_be_visible()
    expect(page.get_by_text("Driveway, faces 105°, sees 100°, keeps 14 days")).to_be_visible()
    visit.check("registration-two-cameras")
    rows = sql(f"{cameras} WHERE registration_id = $1 AND direction_deg IS NOT NULL", owner.id)
    assert [(r["direction_deg"], r["fov_deg"], r["retention_days"], r["placement"]) for r in rows] == [
        (105, 100, 14, "outdoor")
    ]
    added = str(rows[0]["id"])

    # The first camera is turned on the map: a tap east of it points it east.
    page.get_by_role("link", name="Change: Camera 1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Camera 1")
    box = page.locator(".portal-map-box").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2 + 100, box["y"] + box["height"] / 2)
    direction = page.get_by_label("Direction it faces, in degrees")
    expect(direction).not_to_have_value("")
    # East, to within the pixel the map's centre falls on.
    turned = int(direction.input_value())
    assert 87 <= turned <= 93, turned
    page.get_by_role("button", name="Save the camera").click()
    expect(page.get_by_text("The camera is saved.")).to_be_visible()
    first = sql(f"{cameras} WHERE registration_id = $1 AND id <> $2", owner.id, added)
    assert [(r["direction_deg"], r["fov_deg"]) for r in first] == [(turned, 90)]

    # The added camera is removed.
    page.get_by_role("link", name="Change: Camera 2").click()
    visit.check("camera-edit")
    page.get_by_role("button", name="Remove this camera").click()
    expect(page.get_by_text("The camera is removed.")).to_be_visible()
    assert sql(f"{cameras} WHERE id = $1", added) == []
    assert len(sql(f"{cameras} WHERE registration_id = $1", owner.id)) == 1
