"""Registering with the keyboard alone, and every error shown where it belongs: in a summary at the top that
links to each field (announced, focused), at the field itself, with nothing typed lost; a network failure or
a 503 offers a retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.conftest import PORTAL_PORT
from tests.portal.conftest import Program, Visit, lose_registration_answers


def tab_until(page: Page, predicate: str, limit: int = 60) -> None:
    """Presses Tab until the focused element satisfies `predicate` (JS, given `el`)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({predicate}); }})()"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def by_id(element_id: str) -> str:
    return f"el.id === {json.dumps(element_id)}"


def by_text(text: str) -> str:
    return f"el.textContent.trim() === {json.dumps(text)}"


def test_the_whole_registration_with_the_keyboard_alone(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open("/register")
    tab_until(page, by_id("reg-lat"))
    page.keyboard.type(str(program.lat))
    tab_until(page, by_id("reg-lon"))
    page.keyboard.type(str(program.lon))
    tab_until(page, by_text("Show this place"))
    page.keyboard.press("Enter")
    expect(page.get_by_label(program.name)).to_be_checked()
    tab_until(page, by_id("reg-name"))
    page.keyboard.type("Ana Keys")
    tab_until(page, by_id("reg-contact"))
    page.keyboard.type("(414) 555-0199")
    tab_until(page, by_id("reg-consent"))
    page.keyboard.press("Space")
    expect(page.locator("#reg-consent")).to_be_checked()
    visit.check("register-keyboard-filled")
    tab_until(page, by_text("Register"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    tab_until(page, by_text("Continue to my registration"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your registration")
    # The new page's heading has the focus, as after a page load.
    assert page.evaluate("document.activeElement.tagName") == "H1"
    registration_id = page.url.rsplit("/", 1)[-1]
    rows = sql(
        "SELECT status, preferred_contact_method FROM registry.registrations WHERE id = $1", registration_id
    )
    assert [tuple(r) for r in rows] == [("active", "phone")]


def test_missing_answers_are_listed_in_a_focused_summary_linking_to_each_field(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    visit.open("/register")
    page.get_by_label("Your name").fill("Kept Name")
    page.get_by_role("button", name="Register", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    links = summary.get_by_role("link")
    expect(links).to_have_text(
        [
            "Select your place on the map or enter its latitude and longitude",
            "Enter an email address or a phone number",
            "Tick the box to agree, or you cannot register",
        ]
    )
    # Each message is also at its field, which says it is invalid; what was typed is still there.
    expect(page.locator("#reg-contact")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reg-contact-error")).to_have_text("Enter an email address or a phone number")
    expect(page.get_by_label("Your name")).to_have_value("Kept Name")
    visit.check("register-missing")
    summary.get_by_role("link", name="Enter an email address or a phone number").click()
    assert page.evaluate("document.activeElement.id") == "reg-contact"


def test_a_problem_from_the_service_is_shown_at_the_field_its_pointer_names(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    visit.open("/register")
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Your name").fill("Pat Pointer")
    page.get_by_label("Email or phone number").fill("pat@example..org")
    page.get_by_text("I agree that").click()
    page.get_by_role("button", name="Register", exact=True).click()
    # An email of the right shape the service still refuses (two dots in a row; 422, pointer
    # /body/contact/email): the message is at the contact field.
    error = page.locator("#reg-contact-error")
    expect(error).to_contain_text("Email or phone number:")
    expect(page.locator(".error-summary").get_by_role("link")).to_have_count(1)
    expect(page.get_by_label("Your name")).to_have_value("Pat Pointer")
    expect(page.get_by_label("Email or phone number")).to_have_value("pat@example..org")
    visit.check("register-service-problem")


def test_a_network_failure_offers_a_retry_that_registers_once(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open("/register")
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_role("button", name="Show this place").click()
    expect(page.get_by_label(program.name)).to_be_checked()
    page.get_by_label("Your name").fill("Rita Retry")
    page.get_by_label("Email or phone number").fill("rita@example.org")
    page.get_by_text("I agree that").click()
    # The first attempt reaches the service, but its answer is lost on the way back.
    lost = lose_registration_answers(page)
    page.get_by_role("button", name="Register", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The service could not be reached")
    expect(page.get_by_label("Your name")).to_have_value("Rita Retry")
    visit.check("register-network-failure")
    page.unroute("**/v1/registrations")
    seen: list[str] = []
    page.on(
        "request", lambda r: seen.append(r.headers.get("idempotency-key", "")) if r.method == "POST" else None
    )
    summary.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    # The retry carried the same Idempotency-Key: one registration, not two.
    assert seen == lost
    rows = sql(
        "SELECT count(*) AS n FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id"
        " WHERE a.slug = $1",
        program.slug,
    )
    assert rows[0]["n"] == 1


def test_a_503_says_the_service_is_busy_and_the_retry_works(visit: Visit, program: Program) -> None:
    page = visit.page
    visit.open("/")
    busy = {
        "type": "https://canvass.example/problems/unavailable",
        "title": "Service Unavailable",
        "status": 503,
    }

    def unavailable(route: Route) -> None:
        route.fulfill(
            status=503,
            content_type="application/problem+json",
            headers={"Access-Control-Allow-Origin": f"http://127.0.0.1:{PORTAL_PORT}"},
            body=json.dumps(busy),
        )

    page.route("**/v1/agencies/covering*", unavailable)
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_role("button", name="Show this place").click()
    expect(page.get_by_text("The service is busy or down for a moment.")).to_be_visible()
    visit.check("covered-503")
    page.unroute("**/v1/agencies/covering*")
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_text(program.name, exact=True)).to_be_visible()
