"""The workspace's tip inbox and alert composer, in Chromium: an investigator reads a tip a resident sent through
the public form, triages it and replies, and the tipster reads the reply with their code; a supervisor draws an
alert's area on the composer and a subscriber inside it receives the alert while one outside does not. axe on
every state, in English and Spanish."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.community.conftest import mail_text
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Program, Visit
from tests.portal.oidc import account, oidc_sign_in
from tests.support import Mailbox


@pytest.fixture
def program(staff_program: Program) -> Program:
    """This module's programs are agencies whose staff sign in through the identity provider."""
    return staff_program


def test_an_investigator_reads_a_tip_from_the_public_form_and_the_tipster_reads_the_reply(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Send a tip").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Send a tip to the police")
    page.get_by_label("Police department").select_option(label=program.name)
    page.get_by_label("Your tip").fill("Two people carry boxes out of the closed shop on Elm every night.")
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_role("button", name="Send the tip").click()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_be_visible()
    code = page.locator("#tip-code").inner_text()

    sign_in_agency(visit, "investigator", program.slug)
    visit.open("/agency")
    page.get_by_role("link", name="Tip inbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tip inbox")
    visit.check("tip-inbox")
    page.get_by_role("link", name=re.compile("Tip received")).click()
    expect(
        page.get_by_text("Two people carry boxes out of the closed shop on Elm every night.")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Map of the tip's place")).to_be_visible()
    # An investigator may triage but not hold or reopen: the page offers only what the API allows.
    expect(page.get_by_role("button", name="Put under legal hold")).to_have_count(0)
    visit.check("tip-new")
    page.get_by_role("button", name="Start reviewing").click()
    expect(page.get_by_role("button", name="Mark as actioned")).to_be_visible()
    expect(page.get_by_role("button", name="Start reviewing")).to_have_count(0)
    page.get_by_role("button", name="Send the reply").click()
    expect(page.locator(".error-summary")).to_contain_text("Write your reply")
    visit.check("tip-reply-errors")
    page.get_by_label("Your reply").fill("Thank you. Do you know which nights exactly?")
    page.get_by_role("button", name="Send the reply").click()
    expect(page.locator(".portal-message--agency")).to_contain_text(
        "Thank you. Do you know which nights exactly?"
    )
    visit.check("tip-replied")
    [row] = sql("SELECT state FROM community.tips WHERE agency = $1", program.slug)
    assert row["state"] == "reviewing"

    # A supervisor may put it under legal hold.
    sign_in_agency(visit, "supervisor", program.slug)
    visit.open("/agency/tips?state=reviewing")
    page.get_by_role("link", name=re.compile("Tip received")).click()
    page.get_by_role("button", name="Put under legal hold").click()
    expect(page.get_by_role("button", name="Lift the legal hold")).to_be_visible()
    visit.check("tip-held")
    assert (
        sql("SELECT legal_hold FROM community.tips WHERE agency = $1", program.slug)[0]["legal_hold"] is True
    )

    # The tipster reads the reply with the code.
    visit.open("/tips/follow-up")
    page.get_by_label("Tip code").fill(code)
    page.get_by_role("button", name="Show my tip").click()
    expect(page.get_by_text("Thank you. Do you know which nights exactly?")).to_be_visible()


def subscribe(
    community: httpx.Client, mailbox: Mailbox, program: Program, email: str, lon: float, lat: float
) -> str:
    """A confirmed email subscription of 100 m around (lon, lat); its id."""
    r = community.post(
        "/v1/subscriptions",
        json={"agency": program.slug, "channel": "email", "contact": email, "pin": {"type": "Point",
              "coordinates": [lon, lat]}, "radius_m": 100, "categories": ["community"], "language": "en"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    sid = str(r.json()["id"])
    mail = mailbox.wait_for(email, lambda m: "confirmation code" in mail_text(m))
    code = re.findall(r"\b(\d{6})\b", mail_text(mail))[-1]
    r = community.post(f"/v1/subscriptions/{sid}/confirm", json={"code": code})
    assert r.status_code == 200, r.text
    return sid


def test_a_supervisor_draws_an_alert_that_reaches_the_subscriber_inside_and_not_the_one_outside(
    visit: Visit, program: Program, community: httpx.Client, mailbox: Mailbox, sql: Callable[..., Any]
) -> None:
    page = visit.page
    inside = f"inside-{uuid.uuid4().hex[:8]}@example.org"
    outside = f"outside-{uuid.uuid4().hex[:8]}@example.org"
    inside_id = subscribe(community, mailbox, program, inside, program.lon, program.lat)
    outside_id = subscribe(community, mailbox, program, outside, program.lon + 0.04, program.lat + 0.04)

    # An investigator sees the alerts but is not offered the composer.
    sign_in_agency(visit, "investigator", program.slug)
    visit.open("/agency/alerts")
    expect(page.get_by_text("Only supervisors can send alerts.")).to_be_visible()
    expect(page.get_by_role("button", name="Send the alert")).to_have_count(0)

    sign_in_agency(visit, "supervisor", program.slug)
    visit.open("/agency")
    page.get_by_role("navigation", name="Agency workspace").get_by_role("link", name="Area alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Area alerts")
    visit.check("alert-composer")
    page.get_by_role("button", name="Send the alert").click()
    expect(page.locator(".error-summary")).to_contain_text("Enter a title")
    visit.check("alert-composer-errors")
    page.get_by_label("Title").fill("Street fair road closures")
    page.get_by_label("Message").fill("Main Street is closed to cars from 9 am to 6 pm on Saturday.")
    page.get_by_label("Category").select_option("community")
    # A click on the map (once it shows the jurisdiction) places the circle's centre and draws the circle.
    expect(page.locator(".wsc-map path")).to_have_count(1)
    page.locator(".wsc-map").click()
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    expect(page.locator(".wsc-map path")).to_have_count(2)
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Distance in meters").fill("500")
    page.get_by_role("button", name="Send the alert").click()
    expect(page.get_by_text("The alert was sent.")).to_be_visible()
    row = page.locator("tr", has_text="Street fair road closures")
    expect(row).to_be_visible()
    visit.check("alert-sent")

    alert = mailbox.wait_for(inside, lambda m: "Street fair road closures" in str(m["Subject"]), timeout=30)
    assert "Main Street is closed to cars" in mail_text(alert)
    deliveries = sql("SELECT subscription_id FROM community.deliveries d JOIN community.alerts a ON a.id = d.alert_id"
                     " WHERE a.agency = $1", program.slug)  # fmt: skip
    assert [str(d["subscription_id"]) for d in deliveries] == [inside_id]
    assert outside_id not in {str(d["subscription_id"]) for d in deliveries}
    # The counts say one was delivered, never to whom.
    visit.open("/agency/alerts")
    expect(page.locator("tr", has_text="Street fair road closures").locator("td").nth(3)).to_have_text("1")
    assert inside not in page.content()


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_the_tip_inbox_and_alert_composer_speak_spanish(visit: Visit, program: Program) -> None:
    page = visit.page
    sign_in_agency_es(visit, program)
    visit.open("/agency/tips")
    expect(page.get_by_role("heading", level=1)).to_have_text("Avisos recibidos")
    expect(page.get_by_text("No hay avisos en este estado.")).to_be_visible()
    visit.check("tip-inbox-es")
    visit.open("/agency/alerts")
    expect(page.get_by_role("heading", name="Redactar una alerta")).to_be_visible()
    page.get_by_role("button", name="Enviar la alerta").click()
    expect(page.locator(".error-summary")).to_contain_text("Escriba un título")
    visit.check("alert-composer-es")


def sign_in_agency_es(visit: Visit, program: Program) -> None:
    """A supervisor of the program signs in through the provider from a Spanish tab (the helper finds the portal's
    fields by their ids; the provider's own page is English)."""
    oidc_sign_in(visit.page, visit.base, account("supervisor", program.slug))
    expect(visit.page.locator("main .usa-alert__text")).to_have_text(
        f"Sesión iniciada como Supervisor de {program.slug}."
    )
