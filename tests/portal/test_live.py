"""Live sharing as the owner controls it: a camera allowed to join, a window opened for a chosen agency and a
limited time, listed as open, then closed now — each step in registry.live_windows; and on a phone, the page's
essential sentence and first action on the first screen, its details behind a disclosure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.portal.conftest import Owner, Program, Visit, sign_in
from tests.portal.test_phone_resident import PHONE


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


LIVE_WORDS = {
    "en": {
        "title": "Live sharing",
        "get_code": "Get an enrolment code",
        "presence_unknown": "Canvass cannot tell right now whether your agent is connected",
        "never_1": "Your cameras' addresses, user names or passwords: they stay on that computer.",
        "more": "What the agent is",
        "site_intro": "such as a Raspberry Pi or the computer of your video recorder",
        "example": "for example during an alert nearby",
    },
    "es": {
        "title": "Compartir en vivo",
        "get_code": "Obtener un código de inscripción",
        "presence_unknown": "Canvass no puede saber ahora si su agente está conectado",
        "never_1": "Las direcciones, usuarios o contraseñas de sus cámaras: se quedan en esa computadora.",
        "more": "Qué es el agente",
        "site_intro": "como una Raspberry Pi o la computadora de su grabador de video",
        "example": "por ejemplo durante una alerta cercana",
    },
}


def test_on_a_phone_the_live_page_says_the_essential_first_and_its_first_action_is_on_the_first_screen(
    visit: Visit, program: Program, registry: httpx.Client
) -> None:
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": program.slug,
            "location": {"type": "Point", "coordinates": [program.lon, program.lat]},
            "contact": {"name": "Lee Park", "email": f"lee-{uuid.uuid4().hex[:10]}@example.org"},
            "cameras": [{"label": "Porch", "live_mode": "on_alert"}],
        },
    )
    assert r.status_code == 201, r.text
    owner = Owner(r.json()["id"], r.json()["credential"], "")
    page = visit.page
    page.set_viewport_size(PHONE)
    sign_in(visit, owner)
    visit.open(f"/registrations/{owner.id}/live")
    for language, words in LIVE_WORDS.items():
        if language == "es":
            page.get_by_role("button", name="Español").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(words["title"])
        # The first thing to do, before any agent is enrolled, is within the phone's first screen.
        first = page.get_by_role("button", name=words["get_code"])
        expect(first).to_be_visible()
        box = first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
        # Nothing is said about the connection of an agent there is not.
        expect(page.get_by_text(words["presence_unknown"])).to_have_count(0)
        # The details are all there: behind a disclosure, opened with the keyboard; the example by the window's form.
        details = page.get_by_text(words["never_1"])
        expect(details).to_be_hidden()
        page.locator("summary", has_text=words["more"]).focus()
        page.keyboard.press("Enter")
        expect(details).to_be_visible()
        expect(page.get_by_text(words["site_intro"])).to_be_visible()
        expect(page.get_by_text(words["example"])).to_be_visible()
        visit.check(f"live-compact-{language}")
