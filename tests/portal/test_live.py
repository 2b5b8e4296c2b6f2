"""Live sharing as the owner controls it: a camera allowed to join, a window opened for a chosen agency and a
limited time, listed as open, then closed now — each step in registry.live_windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from playwright.sync_api import expect

from tests.portal.conftest import Owner, Visit, sign_in


def test_a_live_window_is_opened_for_an_hour_then_closed_now(
    visit: Visit, owner: Owner, sql: Callable[..., Any]
) -> None:
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Live sharing").click()
    expect(page.get_by_text("None of your cameras allows live sharing.")).to_be_visible()
    page.get_by_role("link", name="Back to my registration").click()
    page.get_by_role("link", name="Change: Camera 1").click()
    page.get_by_text("When I open a window, for an alert or an emergency").click()
    page.get_by_label("Its live stream address").fill("rtsps://cam.example.net:322/stream1")
    page.get_by_role("button", name="Save the camera").click()
    expect(page.get_by_text("The camera is saved.")).to_be_visible()
    assert (
        sql("SELECT live_mode FROM registry.cameras WHERE registration_id = $1", owner.id)[0][0] == "on_alert"
    )

    page.get_by_role("link", name="Live sharing").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live sharing")
    page.get_by_text("1 hour", exact=True).click()
    visit.check("live-form")
    page.get_by_role("button", name="Open the window").click()
    expect(page.get_by_text("The window is open.")).to_be_visible()
    card = page.locator(".portal-windows .portal-card").first
    expect(card.get_by_text("Open", exact=True)).to_be_visible()
    visit.check("live-open")
    rows = sql(
        "SELECT id, expires_at - opened_at AS span, closed_at FROM registry.live_windows WHERE registration_id = $1",
        owner.id,
    )
    assert len(rows) == 1 and rows[0]["closed_at"] is None
    assert abs(rows[0]["span"] - timedelta(hours=1)) < timedelta(seconds=5)
    card.get_by_role("button", name="Close it now").click()
    expect(page.get_by_text("The window is closed.")).to_be_visible()
    expect(
        page.locator(".portal-windows .portal-card").first.get_by_text("Closed", exact=True)
    ).to_be_visible()
    closed = sql("SELECT closed_at FROM registry.live_windows WHERE id = $1", rows[0]["id"])
    assert closed[0]["closed_at"] is not None
