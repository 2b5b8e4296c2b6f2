"""The agency admin's program page, signed in through the agency's provider: the jurisdiction uploaded as a
GeoJSON file (the API's problem shown at the file's field; a good one saved), the policy saved with If-Match (a
stale version shown as a conflict, what was typed kept), the webhook set, the registrations due listed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.portal.conftest import Visit
from tests.portal.oidc import EASTPORT_SQUARE, oidc_sign_in, square

ADMIN = "eastport.admin"
SLUG = "eastport"


def open_program(visit: Visit) -> None:
    oidc_sign_in(visit.page, visit.base, ADMIN, next_path="/agency/program")
    visit.page.get_by_role("heading", level=1, name="Your program").wait_for()
    visit.page.get_by_role("heading", level=2, name="Registrations due for re-confirmation").wait_for()


def version(registry: httpx.Client, auth: Callable[..., dict[str, str]]) -> int:
    return int(
        registry.get(f"/v1/agencies/{SLUG}", headers=auth("agency_admin", SLUG)).json()["properties"][
            "version"
        ]
    )


def test_a_jurisdiction_file_the_api_refuses_shows_its_problem_at_the_field_and_a_good_one_is_saved(
    visit: Visit, tmp_path: Path, sql: Callable[..., Any]
) -> None:
    page = visit.page
    open_program(visit)
    visit.check("program")
    file_field = page.get_by_label("GeoJSON file of the jurisdiction")
    save = page.get_by_role("button", name="Save the jurisdiction")

    # Not JSON at all: said at the field before anything is sent.
    (tmp_path / "broken.geojson").write_text('{"type": "Polygon", ')
    file_field.set_input_files(str(tmp_path / "broken.geojson"))
    save.click()
    group = page.locator('[data-field="program-jurisdiction"]')
    group.locator(".usa-error-message").get_by_text("it could not be read as JSON").wait_for()

    # A ring that crosses itself: the API refuses it, and its reason is shown at the file's field.
    west, south, east, north = EASTPORT_SQUARE
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, north], [east, south], [west, north], [west, south]]],
    }
    (tmp_path / "bowtie.geojson").write_text(
        json.dumps({"type": "Feature", "properties": {}, "geometry": bowtie})
    )
    file_field.set_input_files(str(tmp_path / "bowtie.geojson"))
    with page.expect_response(
        lambda r: r.request.method == "PATCH" and f"/v1/agencies/{SLUG}" in r.url
    ) as answer:
        save.click()
    assert answer.value.status == 422
    reasons = [e["reason"] for e in answer.value.json()["errors"]]
    message = group.locator(".usa-error-message")
    message.wait_for()
    assert any(reason in message.inner_text() for reason in reasons), (reasons, message.inner_text())
    assert file_field.get_attribute("aria-invalid") == "true"
    page.locator(".error-summary").get_by_role("link").first.wait_for()
    visit.check("program-bad-jurisdiction")

    # A good file: saved, and the database holds the new area.
    bigger = square(west - 0.01, south - 0.01, east + 0.01, north + 0.01)
    (tmp_path / "good.geojson").write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": bigger}],
            }
        )
    )
    file_field.set_input_files(str(tmp_path / "good.geojson"))
    save.click()
    page.get_by_text("The jurisdiction is saved.").wait_for()
    assert page.locator('[data-field="program-jurisdiction"] .usa-error-message').count() == 0
    rows = sql(
        "SELECT ST_XMin(jurisdiction) AS x0, ST_YMax(jurisdiction) AS y1 FROM registry.agencies WHERE slug = $1",
        SLUG,
    )
    assert (round(rows[0]["x0"], 6), round(rows[0]["y1"], 6)) == (
        round(west - 0.01, 6),
        round(north + 0.01, 6),
    )

    # Drawn on the map instead: four corners selected in order, then saved.
    map_box = page.locator(".portal-map-box")
    box = map_box.bounding_box()
    assert box is not None
    for fx, fy in ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)):
        map_box.click(position={"x": fx * box["width"], "y": fy * box["height"]})
    page.get_by_text("Corners selected: 4").wait_for()
    with page.expect_response(
        lambda r: r.request.method == "PATCH" and f"/v1/agencies/{SLUG}" in r.url
    ) as answer:
        save.click()
    assert answer.value.status == 200, answer.value.text()
    page.get_by_text("The jurisdiction is saved.").wait_for()
    drawn = sql("SELECT ST_NPoints(jurisdiction) AS n FROM registry.agencies WHERE slug = $1", SLUG)
    assert drawn[0]["n"] == 5  # the four corners, the ring closed


def test_the_policy_is_saved_with_if_match_and_a_change_made_elsewhere_shows_the_conflict(
    visit: Visit, registry: httpx.Client, auth: Callable[..., dict[str, str]], sql: Callable[..., Any]
) -> None:
    page = visit.page
    open_program(visit)
    # Another administrator changes the program after the page read it: the page's version is stale.
    r = registry.patch(
        f"/v1/agencies/{SLUG}",
        json={"policy": {"default_request_expiry_days": 21}},
        headers={**auth("agency_admin", SLUG), "If-Match": f'"{version(registry, auth)}"'},
    )
    assert r.status_code == 200, r.text
    window = page.get_by_label("Longest time window (hours)")
    window.fill("6")
    with page.expect_request(lambda q: q.method == "PATCH" and f"/v1/agencies/{SLUG}" in q.url) as sent:
        page.get_by_role("button", name="Save the policy").click()
    assert sent.value.headers["if-match"] == f'"{version(registry, auth) - 1}"'
    page.get_by_text("Your program was changed elsewhere since you opened this page.").wait_for()
    visit.check("program-policy-conflict")
    assert sql("SELECT max_request_window_hours FROM registry.agencies WHERE slug = $1", SLUG)[0][0] != 6
    assert window.input_value() == "6"  # what was typed is kept

    page.get_by_role("button", name="Load the latest version").click()
    page.get_by_text("The latest version is loaded.").wait_for()
    with page.expect_request(lambda q: q.method == "PATCH" and f"/v1/agencies/{SLUG}" in q.url) as sent:
        page.get_by_role("button", name="Save the policy").click()
    page.get_by_text("The policy is saved.").wait_for()
    assert sent.value.headers["if-match"] == f'"{version(registry, auth) - 1}"'
    row = sql(
        "SELECT max_request_window_hours, default_request_expiry_days FROM registry.agencies WHERE slug = $1",
        SLUG,
    )[0]
    # Only what was changed here is sent: the other administrator's change is kept.
    assert (row["max_request_window_hours"], row["default_request_expiry_days"]) == (6, 21)
    assert page.get_by_label("A request expires after (days)").input_value() == "21"

    # A value the API refuses is shown at its field.
    window.fill("48")
    page.get_by_role("button", name="Save the policy").click()
    page.locator('[data-field="policy-max_request_window_hours"] .usa-error-message').wait_for()
    assert page.get_by_label("Longest time window (hours)").get_attribute("aria-invalid") == "true"


def test_the_webhook_is_set_its_secret_shown_once_and_a_bad_address_refused_at_the_field(
    visit: Visit, requests_client: httpx.Client, auth: Callable[..., dict[str, str]]
) -> None:
    page = visit.page
    open_program(visit)
    url_field = page.get_by_label("Webhook address")
    url_field.fill("not an address")
    page.get_by_role("button", name="Save the webhook").click()
    page.locator('[data-field="webhook-url"] .usa-error-message').wait_for()

    address = f"http://127.0.0.1:9/canvass/{uuid.uuid4().hex[:8]}"
    url_field.fill(address)
    page.get_by_role("button", name="Save the webhook").click()
    page.get_by_text(f"The webhook is saved: answers go to {address}.").wait_for()
    secret = page.locator(".credential-value").inner_text()
    assert len(secret) >= 32
    visit.check("program-webhook")
    stored = requests_client.get(f"/v1/agencies/{SLUG}/webhook", headers=auth("agency_admin", SLUG)).json()
    assert stored["url"] == address and stored.get("secret") is None


def test_the_registrations_due_for_reconfirmation_are_listed(
    visit: Visit, registry: httpx.Client, sql: Callable[..., Any]
) -> None:
    west, south, _, _ = EASTPORT_SQUARE
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": SLUG,
            "location": {"type": "Point", "coordinates": [west + 0.02, south + 0.02]},
            "contact": {"name": "Ana Ruiz", "email": f"ana-{uuid.uuid4().hex[:8]}@example.org"},
            "cameras": [{"retention_days": 30}],
        },
    )
    assert r.status_code == 201, r.text
    due_id = r.json()["id"]
    sql(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '400 days' WHERE id = $1",
        uuid.UUID(due_id),
    )
    page = visit.page
    open_program(visit)
    table = page.get_by_role("table", name="Due now or within 30 days")
    table.get_by_text(due_id[:8]).wait_for()
    visit.check("program-due")


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_spanish_browser_gets_the_sign_in_and_the_program_page_in_spanish(visit: Visit) -> None:
    page = visit.page
    visit.open("/agency/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acceso del personal de la agencia")
    oidc_sign_in(page, visit.base, ADMIN, next_path="/agency/program")
    expect(page.get_by_role("heading", level=1)).to_have_text("Su programa")
    expect(page.locator(".portal-agency-status")).to_contain_text("Administrador")
    page.get_by_label("Archivo GeoJSON de la jurisdicción").wait_for()
    page.get_by_role("button", name="Guardar las reglas").wait_for()
    visit.check("program-es")
