"""The portal's tip and alert pages, as a resident uses them in Chromium: a tip with a photo sent without an
account, its code shown once and used to read the agency's reply and add information; a subscription to alerts
for their street confirmed with the mailed code, an alert the agency sends over it received, and the link in it
ending the subscription; the police department chosen by its name from a list (a link may name it). axe on every
page and state, in English and Spanish."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import FilePayload, Locator, expect

from tests.community.conftest import CAMERA_MAKE, jpeg_with_gps, mail_text
from tests.conftest import Suite, Token
from tests.portal.conftest import Geocoder, Program, Visit, portal_env, portal_server
from tests.portal.test_phone_resident import PHONE
from tests.support import Mailbox, free_port, start_server


def test_a_resident_sends_a_tip_with_a_photo_and_follows_it_up_with_the_code(
    visit: Visit, program: Program, community: httpx.Client, auth: Token, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open(f"/tips/new?agency={program.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Send a tip to the police")
    visit.check("tip-form")
    page.get_by_role("button", name="Send the tip").click()
    expect(page.locator(".error-summary")).to_contain_text("Write your tip")
    visit.check("tip-form-errors")
    page.get_by_label("Your tip").fill("A grey van without plates waits behind the school at night.")
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    photo: FilePayload = {"name": "van.jpg", "mimeType": "image/jpeg", "buffer": jpeg_with_gps()}
    page.get_by_label("Photos, video or audio").set_input_files([photo])
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_be_visible()
    code = page.locator("#tip-code").inner_text()
    assert code.startswith("cvt_")
    visit.check("tip-sent")
    # What was stored carries neither the camera nor the place the photo's metadata named.
    [row] = sql(
        "SELECT m.content FROM community.tip_media m JOIN community.tips t ON t.id = m.tip_id WHERE t.agency = $1",
        program.slug,
    )
    content = bytes(row["content"])
    assert CAMERA_MAKE.encode() not in content and not Image.open(io.BytesIO(content)).getexif()
    # The agency replies; the tipster reads it with the code and adds information.
    tip_id = sql("SELECT id FROM community.tips WHERE agency = $1", program.slug)[0]["id"]
    r = community.post(
        f"/v1/agencies/{program.slug}/tips/{tip_id}/replies",
        json={"message": "Thank you. Which night did you last see it?"},
        headers=auth("investigator", program.slug),
    )
    assert r.status_code == 201, r.text
    page.get_by_role("link", name="Follow up on your tip").click()
    expect(page.get_by_text("Thank you. Which night did you last see it?")).to_be_visible()
    visit.check("tip-follow-up")
    page.get_by_label("What you want to add").fill("Last Tuesday, around 2 am.")
    page.get_by_role("button", name="Add to my tip").click()
    expect(page.get_by_text("Last Tuesday, around 2 am.")).to_be_visible()
    # A wrong code reads nothing.
    page.get_by_label("Tip code").fill("cvt_wrong")
    page.get_by_role("button", name="Show my tip").click()
    expect(page.locator(".error-summary")).to_contain_text("No tip has this code")
    visit.check("tip-follow-up-wrong-code")


def test_a_tip_sent_with_an_address_stores_the_point_the_geocoder_resolved_it_to(
    visit: Visit, program: Program, geocoder: Geocoder, sql: Callable[..., Any]
) -> None:
    # The deployment's geocoder (a local server answering as Nominatim's search API) knows one address; it is
    # not where the map opens, so the stored point can only have come from it.
    address = f"400 Oak Avenue, {program.slug}"
    lat, lon = round(program.lat + 0.0021, 6), round(program.lon - 0.0033, 6)
    found = f"400 Oak Avenue, Springfield ({program.slug})"
    geocoder.places[address] = [{"lat": str(lat), "lon": str(lon), "display_name": found}]
    page = visit.page
    visit.open(f"/tips/new?agency={program.slug}")
    # The tipster's own place is not asked for.
    expect(page.get_by_role("button", name="Use my location")).to_have_count(0)
    page.get_by_label("Your tip").fill("Someone breaks into parked cars on this block around midnight.")
    # A click on the map gives a place...
    page.locator(".portal-map-box").click()
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    # ...and a found address, picked among the suggestions, moves it there.
    page.get_by_label("Address").fill(address)
    page.get_by_role("button", name="Find this address").click()
    page.get_by_role("button", name=found).click()
    expect(page.get_by_label("Latitude")).to_have_value(f"{lat:.6f}")
    expect(page.get_by_label("Longitude")).to_have_value(f"{lon:.6f}")
    visit.check("tip-form-address")
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_be_visible()
    [tip] = sql(
        "SELECT ST_X(location) AS lon, ST_Y(location) AS lat FROM community.tips WHERE agency = $1",
        program.slug,
    )
    assert (round(tip["lat"], 6), round(tip["lon"], 6)) == (lat, lon)
    # An address it does not know leaves the place to the map or the coordinates.
    visit.open(f"/tips/new?agency={program.slug}")
    page.get_by_label("Address").fill("Nowhere at all")
    page.get_by_label("Address").press("Enter")
    expect(page.get_by_text("No place was found for this address.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_have_count(
        0
    )  # Enter searched, sent nothing


def test_a_resident_subscribes_receives_an_alert_and_unsubscribes_by_its_link(
    visit: Visit,
    program: Program,
    community: httpx.Client,
    auth: Token,
    mailbox: Mailbox,
    sql: Callable[..., Any],
) -> None:
    page = visit.page
    email = f"street-{uuid.uuid4().hex[:8]}@example.org"
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Get alerts for your area")
    visit.check("alerts-subscribe")
    page.get_by_label("Your email address").fill(email)
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Distance in meters").fill("300")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    visit.check("alerts-confirm")
    mail = mailbox.wait_for(email, lambda m: "confirmation code" in mail_text(m))
    code = re.findall(r"\b(\d{6})\b", mail_text(mail))[-1]
    page.get_by_label("Confirmation code").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
    visit.check("alerts-manage")
    # The agency's supervisor sends an alert over the street: it arrives, with its page and a way out.
    d = 0.002
    ring = [[program.lon - d, program.lat - d], [program.lon + d, program.lat - d], [program.lon + d, program.lat + d],
            [program.lon - d, program.lat + d], [program.lon - d, program.lat - d]]  # fmt: skip
    r = community.post(
        f"/v1/agencies/{program.slug}/alerts",
        json={"title": "Water main break", "message": "Main Street is closed between 5th and 7th.",
              "category": "emergency", "area": {"type": "Polygon", "coordinates": [ring]},
              "expires_at": (datetime.now(UTC) + timedelta(hours=4)).isoformat()},
        headers=auth("supervisor", program.slug),
    )  # fmt: skip
    assert r.status_code == 201, r.text
    alert = mailbox.wait_for(email, lambda m: "Water main break" in str(m["Subject"]), timeout=30)
    body = mail_text(alert)
    page_link = re.search(r"/alerts/[0-9a-f-]{36}", body)
    leave = re.search(r"/alerts/unsubscribe#\S+", body)
    assert page_link and leave
    visit.open(page_link.group(0))
    expect(page.get_by_role("heading", level=1)).to_have_text("Water main break")
    assert email not in page.content()
    visit.check("alert-public-page")
    visit.open(leave.group(0))
    page.get_by_role("button", name="Stop my alerts").click()
    expect(page.get_by_role("heading", name="Your alerts are stopped")).to_be_visible()
    visit.check("alerts-unsubscribed")
    assert sql("SELECT id FROM community.subscriptions WHERE agency = $1", program.slug) == []


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_the_tip_and_alert_pages_speak_spanish(visit: Visit, program: Program) -> None:
    page = visit.page
    visit.open(f"/tips/new?agency={program.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Envíe un aviso a la policía")
    page.get_by_role("button", name="Enviar el aviso").click()
    expect(page.locator(".error-summary")).to_contain_text("Escriba su aviso")
    visit.check("tip-form-es")
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reciba alertas de su zona")
    visit.check("alerts-subscribe-es")


def choose_by_keyboard(select: Locator, slug: str) -> None:
    """Moves a closed list to the option sending `slug` with the arrow keys only, as a keyboard user does."""
    values: list[str] = select.evaluate("s => [...s.options].map(o => o.value)")
    select.focus()
    for _ in range(values.index(slug) - values.index(select.input_value())):
        select.press("ArrowDown")
    expect(select).to_have_value(slug)


def test_a_tip_goes_to_the_police_department_chosen_by_its_name_with_the_keyboard(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/tips/new")
    # A list of the departments by name, labelled, with nothing chosen yet: no short code to know or type.
    agency = page.get_by_role("combobox", name="Police department")
    expect(agency).to_have_value("")
    expect(agency.locator("option:checked")).to_have_text("Choose a police department")
    expect(agency.get_by_role("option", name=program.name, exact=True)).to_have_attribute(
        "value", program.slug
    )
    page.get_by_label("Your tip").fill("Someone tries car doors on Oak Street every night around two.")
    page.get_by_role("button", name="Send the tip").click()
    expect(page.locator("#tip-agency-error")).to_have_text("Choose the police department")
    expect(page.locator(".error-summary")).to_be_focused()
    visit.check("tip-form-choose-the-department")
    choose_by_keyboard(agency, program.slug)
    expect(agency.locator("option:checked")).to_have_text(program.name)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Your tip")).to_be_focused()
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_be_visible()
    assert [
        r["agency"] for r in sql("SELECT agency FROM community.tips WHERE agency = $1", program.slug)
    ] == [program.slug]


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_link_to_a_departments_alerts_has_it_chosen_by_name_in_spanish(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    agency = page.get_by_role("combobox", name="Departamento de policía")
    expect(agency).to_have_value(program.slug)
    expect(agency.locator("option:checked")).to_have_text(program.name)
    expect(page.get_by_text("El departamento cuyas alertas recibirá.")).to_be_visible()
    visit.check("alerts-department-chosen-es")
    # And a tip's link, the same.
    visit.open(f"/tips/new?agency={program.slug}")
    expect(page.get_by_role("combobox", name="Departamento de policía")).to_have_value(program.slug)
    visit.check("tip-department-chosen-es")


def test_where_the_deployment_sends_no_text_messages_the_alerts_form_offers_email_only(
    visit: Visit, program: Program, suite: Suite
) -> None:
    """The form asks community_api which channels alerts go by (`GET /v1/subscriptions/channels`): the suite's
    deployment has an SMS provider and offers both; a deployment without one (a real community_api without the
    provider's token, with a registry_api and a portal of its own origin, which the services' CORS and the
    portal's content security policy name) offers email alone, and the contact field asks for an email address."""
    page = visit.page
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    expect(page.get_by_role("radio", name="Text message (SMS)")).to_have_count(1)

    port = free_port()
    origin = {"CANVASS_CORS_ORIGINS": f"http://127.0.0.1:{port}"}
    registry = start_server("registry_api", dict(suite.env, **origin))
    community = start_server("community_api", dict(suite.env, **origin))  # no CANVASS_SMS_AUTH_TOKEN
    try:
        env = portal_env(suite, REGISTRY_API_URL=registry.url, COMMUNITY_API_URL=community.url)
        with portal_server(env, port) as url:
            page.goto(f"{url}/alerts/subscribe?agency={program.slug}")
            expect(page.get_by_role("combobox", name="Police department")).to_have_value(program.slug)
            expect(page.get_by_label("Your email address")).to_be_visible()
            expect(page.get_by_role("radio", name="Text message (SMS)")).to_have_count(0)
            expect(page.get_by_role("radio", name="Email")).to_have_count(0)  # one channel: nothing to choose
            visit.check("alerts-email-only")
    finally:
        community.stop()
        registry.stop()
