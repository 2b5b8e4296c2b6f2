"""The public pages: the transparency table, and the portal in Spanish (chosen from the browser, switchable)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import Token
from tests.portal.conftest import Owner, Program, Visit
from tests.portal.test_requests import send_request


def test_the_transparency_page_shows_last_months_requests_in_a_table_and_a_chart(
    visit: Visit,
    program: Program,
    owner: Owner,
    requests_client: httpx.Client,
    auth: Token,
    sql: Callable[..., Any],
) -> None:
    rid = send_request(requests_client, auth, program, "A window was broken on this street.")
    # The report shows ended months only: this request is taken back to the middle of last month.
    now = datetime.now(UTC)
    last_month = (now.replace(day=1) - timedelta(days=15)).replace(hour=12)
    sql("UPDATE requests.requests SET sent_at = $2 WHERE id = $1 RETURNING id", uuid.UUID(rid), last_month)
    page = visit.page
    visit.open("/transparency")
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency")
    table = page.get_by_role("table", name=f"Footage requests of {program.name}, by month")
    # The month as a person reads it, not as the report's key ("2026-11").
    row = table.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=f"{ENGLISH_MONTHS[last_month.month - 1]} {last_month.year}")
    )
    expect(row.get_by_role("cell")).to_have_text(["1", re.compile(r"^[01]$"), "not shown", "not shown"])
    # Fewer than 5 owners asked: who shared is not shown, so no one can be singled out.
    expect(page.locator(".portal-chart").first).to_be_attached()
    visit.check("transparency")
    page.get_by_role("button", name="Español").click()
    spanish = f"{SPANISH_MONTHS[last_month.month - 1]} de {last_month.year}"
    expect(page.get_by_role("rowheader", name=spanish).first).to_be_visible()
    visit.check("transparency-es")


ENGLISH_MONTHS = (
    "January February March April May June July August September October November December".split()
)
SPANISH_MONTHS = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre".split()
)


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
