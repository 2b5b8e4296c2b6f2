"""The public pages: the transparency table, and the portal in Spanish (chosen from the browser, switchable)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.portal.conftest import Program, Visit


def test_the_transparency_page_has_a_table_per_agency_or_says_there_is_none(visit: Visit) -> None:
    page = visit.page
    visit.open("/transparency")
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency")
    page.wait_for_load_state("networkidle")
    tables = page.get_by_role("table")
    if tables.count():
        expect(tables.first.locator("caption")).to_contain_text("Footage requests of")
        expect(tables.first.get_by_role("columnheader", name="Owners who shared")).to_be_visible()
    else:
        expect(page.get_by_text("No agency has sent a footage request yet.")).to_be_visible()
    visit.check("transparency")


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_spanish_browser_gets_spanish_and_can_switch_to_english(visit: Visit, program: Program) -> None:
    page = visit.page
    visit.open("/register")
    expect(page.get_by_role("heading", level=1)).to_have_text("Registre sus cámaras")
    assert page.evaluate("document.documentElement.lang") == "es"
    page.get_by_label("Su nombre").fill("Lucía")
    page.get_by_role("button", name="Registrarme").click()
    expect(page.locator(".error-summary")).to_contain_text("Hay un problema")
    visit.check("register-es-errors")
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register your cameras")
    assert page.evaluate("document.documentElement.lang") == "en"
    # What was typed survives the switch.
    expect(page.get_by_label("Your name")).to_have_value("Lucía")
    # The choice is remembered over the browser's language.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Register your cameras")
