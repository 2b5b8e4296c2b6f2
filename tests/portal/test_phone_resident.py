"""A resident on a phone (360 px wide), in Chromium against the real services: bad answers on the registration
form named at their fields in the resident's words and language before anything is sent, what was typed kept
over a reload (and a send after a lost answer, edited or not, still registers once), a "Try again" that stays on the screen,
quieter actions big enough for a thumb, and alerts subscribed from the Spanish page sent in Spanish."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import FilePayload, Locator, Page, Response, Route, ViewportSize, expect

from tests.community.conftest import mail_text
from tests.conftest import Token
from tests.portal.conftest import Geocoder, Owner, Program, Visit, lose_registration_answers, sign_in
from tests.portal.test_requests import send_request
from tests.support import Mailbox

PHONE: ViewportSize = {"width": 360, "height": 740}


def fits_the_screen(page: Page) -> None:
    """Nothing runs past the right edge of the phone's screen (no sideways scrolling)."""
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide on a {widths[1]} px screen"


def within(inner: Locator, outer: Locator) -> None:
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a is not None and b is not None
    assert b["x"] <= a["x"] and a["x"] + a["width"] <= b["x"] + b["width"], (a, b)


def registration_posts(page: Page) -> list[str]:
    """The registrations the page sends from now on (their Idempotency-Keys)."""
    sent: list[str] = []
    page.on(
        "request",
        lambda r: (
            sent.append(r.headers.get("idempotency-key", ""))
            if r.method == "POST" and r.url.endswith("/v1/registrations")
            else None
        ),
    )
    return sent


def test_bad_answers_are_named_at_their_fields_in_plain_words_in_english_and_spanish(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/register")
    sent = registration_posts(page)
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    # 8 × 26 characters: past the contract's 200, with markup and an emoji in it.
    page.get_by_label("Your name").fill("<script>alert(1)</script>😀" * 8)
    page.get_by_label("Email or phone number").fill("not an email 😀")
    page.get_by_label("How many cameras?").fill("500")
    page.get_by_text("I agree that").click()
    page.get_by_role("button", name="Register", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(page.locator("#reg-name-error")).to_have_text("Your name must be 200 characters or fewer")
    expect(page.locator("#reg-contact-error")).to_have_text(
        "Enter a phone number with its area code, like (414) 555-0123, or an email address"
    )
    expect(page.locator("#reg-cameras-error")).to_have_text("Enter how many cameras, from 1 to 50")
    expect(page.get_by_label("Your name")).to_have_attribute("aria-invalid", "true")
    expect(summary.get_by_role("link")).to_have_count(3)
    fits_the_screen(page)
    visit.check("register-plain-errors")

    page.get_by_label("Email or phone number").fill("dana@example")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator("#reg-contact-error")).to_have_text(
        "Enter an email address in the right form, like name@example.org"
    )
    # Nothing was sent for the service to refuse in its own (English, technical) words.
    assert sent == []

    # In Spanish, the same answers are named in Spanish; what was typed stays.
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Registre sus cámaras")
    expect(page.get_by_label("Correo electrónico o número de teléfono")).to_have_value("dana@example")
    page.get_by_role("button", name="Registrarme").click()
    expect(page.locator("#reg-name-error")).to_have_text("Su nombre debe tener 200 caracteres o menos")
    expect(page.locator("#reg-contact-error")).to_have_text(
        "Escriba un correo electrónico con el formato correcto, como nombre@ejemplo.org"
    )
    page.get_by_label("Correo electrónico o número de teléfono").fill("dana")
    page.get_by_role("button", name="Registrarme").click()
    expect(page.locator("#reg-contact-error")).to_have_text(
        "Escriba un número de teléfono con su código de área, como (414) 555-0123, o un correo electrónico"
    )
    fits_the_screen(page)
    visit.check("register-plain-errors-es")
    assert sent == []


def test_a_reload_keeps_the_form_and_the_retry_after_a_lost_answer_registers_once(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/register")
    name = "<b>Dana</b> <img src=x> Rivera 😀"
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email or phone number").fill("(414) 555-0123")
    page.get_by_label("How many cameras?").fill("2")
    page.get_by_text("I agree that").click()

    # The service registers, but its answer is lost on the way back to the phone.
    lost = lose_registration_answers(page)
    page.get_by_role("button", name="Register", exact=True).click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("The service could not be reached")
    retry = summary.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()
    # The retry sits inside its alert, on the screen.
    within(retry, summary)
    fits_the_screen(page)
    visit.check("register-lost-answer")
    page.unroute("**/v1/registrations")

    # The resident reloads instead of pressing "Try again": nothing typed is lost, the place included.
    page.reload()
    page.get_by_role("heading", level=1, name="Register your cameras").wait_for()
    expect(page.get_by_label("Your name")).to_have_value(name)
    expect(page.get_by_label("Email or phone number")).to_have_value("(414) 555-0123")
    expect(page.get_by_label("How many cameras?")).to_have_value("2")
    expect(page.get_by_label("Latitude")).to_have_value(str(program.lat))
    expect(page.get_by_label("Longitude")).to_have_value(str(program.lon))
    expect(page.locator("#reg-consent")).to_be_checked()
    expect(page.get_by_label(program.name)).to_be_checked()
    sent = registration_posts(page)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    # The same request as the lost one: one registration, with both cameras.
    assert sent == lost
    rows = sql(
        "SELECT (SELECT count(*) FROM registry.cameras c WHERE c.registration_id = r.id) AS cameras"
        " FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id WHERE a.slug = $1",
        program.slug,
    )
    assert [r["cameras"] for r in rows] == [2]

    # The phone reloads the page that showed the credential (shown only once): the tab still holds it, and the
    # sign-in page it lands on leads on to the registration rather than asking for a credential never saved.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Manage your registration")
    expect(page.get_by_text("This tab still holds the credential of your registration")).to_be_visible()
    visit.check("sign-in-with-a-held-credential")
    page.get_by_role("link", name="Continue to my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your registration")
    expect(page.get_by_role("button", name="Get a new credential")).to_be_visible()
    # The name is shown as the resident typed it: text, not markup.
    expect(page.get_by_text(name, exact=True)).to_be_visible()
    assert page.locator("main img[src=x], main b").count() == 0

    # Registered, the form is empty again, after a reload too.
    visit.open("/register")
    expect(page.get_by_label("Your name")).to_have_value("")
    page.reload()
    page.get_by_role("heading", level=1, name="Register your cameras").wait_for()
    expect(page.get_by_label("Your name")).to_have_value("")
    expect(page.get_by_label("Latitude")).to_have_value("")


def registrations_of(sql: Callable[..., Any], program: Program) -> list[dict[str, Any]]:
    """Each registration of the program (its id and how many cameras it has), as the database holds them."""
    return sql(
        "SELECT r.id, (SELECT count(*) FROM registry.cameras c WHERE c.registration_id = r.id) AS cameras"
        " FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id WHERE a.slug = $1",
        program.slug,
    )


def fill_registration(page: Page, program: Program, name: str, contact: str, cameras: str) -> None:
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email or phone number").fill(contact)
    page.get_by_label("How many cameras?").fill(cameras)
    page.get_by_text("I agree that").click()


def test_an_edit_after_a_lost_answer_registers_once_and_offers_the_edits_on_the_edit_page(
    visit: Visit, program: Program, registry: httpx.Client, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/register")
    fill_registration(page, program, "Dana Rivera", "(414) 555-0123", "2")
    # The service registers, but its answer is lost on the way back to the phone.
    lost = lose_registration_answers(page)
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("The service could not be reached")
    page.unroute("**/v1/registrations")
    assert len(lost) == 1

    # The phone puts the tab aside (a reload), then the resident corrects the name and gives an email instead.
    page.reload()
    page.get_by_role("heading", level=1, name="Register your cameras").wait_for()
    page.get_by_label("Your name").fill("Dana M. Rivera")
    page.get_by_label("Email or phone number").fill("dana.rivera@example.org")
    sent = registration_posts(page)
    page.get_by_role("button", name="Register", exact=True).click()

    # One registration, the one the lost answer made: the resident is told so, in plain words, with the
    # credential, and nothing of the service's words about keys.
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    notice = page.get_by_role("status").filter(has_text="You were already registered")
    expect(notice).to_contain_text("the changes you made after were not saved")
    expect(page.locator("main")).not_to_contain_text("Idempotency")
    assert set(sent) == set(lost), "every send after the lost answer carried its key"
    rows = registrations_of(sql, program)
    assert [r["cameras"] for r in rows] == [2]
    credential = page.locator("#credential-value").inner_text()
    assert credential.startswith(f"cvo_{rows[0]['id'].hex}_")
    fits_the_screen(page)
    visit.check("register-lost-answer-then-edited")
    # Read in Spanish, the page shown once stays, the credential and the notice with it.
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ya está registrado")
    expect(page.get_by_role("status").filter(has_text="Ya estaba registrado")).to_be_visible()
    expect(page.locator("#credential-value")).to_have_text(credential)
    visit.check("register-lost-answer-then-edited-es")
    page.get_by_role("button", name="English").click()

    # The edits are not lost: "Change your details" shows them filled in; saved, the registration has them.
    page.get_by_role("link", name="Change your details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your details")
    expect(page.get_by_label("Your name")).to_have_value("Dana M. Rivera")
    expect(page.get_by_label("Email")).to_have_value("dana.rivera@example.org")
    expect(page.get_by_label("Phone number")).to_have_value("")
    expect(page.get_by_role("status")).to_contain_text(
        "The changes you made on the registration form are filled in"
    )
    visit.check("edit-with-the-unsent-changes")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your changes are saved.")).to_be_visible()
    r = registry.get(f"/v1/registrations/{rows[0]['id']}", headers={"Authorization": f"Bearer {credential}"})
    assert r.status_code == 200, r.text
    contact = r.json()["properties"]["contact"]
    assert (contact["name"], contact["email"], contact["phone"]) == (
        "Dana M. Rivera",
        "dana.rivera@example.org",
        None,
    )
    assert len(registrations_of(sql, program)) == 1


def test_a_reload_while_the_registration_is_on_its_way_then_an_edit_registers_once(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/register")
    fill_registration(page, program, "Ari Brook", "ari.brook@example.org", "1")
    # The service registers, and the phone reloads the tab before the answer comes back: the answer is held until
    # the reload has cancelled the request (the route stays, so it can never be let through).
    held: list[Route] = []

    def hold_answer(route: Route) -> None:
        if route.request.method == "POST" and not held:
            route.fetch()
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/registrations", hold_answer)
    page.get_by_role("button", name="Register", exact=True).click()
    deadline = time.monotonic() + 15
    while not held:
        assert time.monotonic() < deadline, "the registration was not sent"
        page.evaluate("1")  # lets Playwright run the route handler
    assert len(registrations_of(sql, program)) == 1
    page.reload()
    page.get_by_role("heading", level=1, name="Register your cameras").wait_for()
    page.get_by_label("Your name").fill("Ari J. Brook")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are registered")
    expect(page.get_by_role("status").filter(has_text="You were already registered")).to_be_visible()
    assert len(registrations_of(sql, program)) == 1
    visit.check("register-reloaded-in-flight-then-edited")


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_an_edit_after_a_request_that_never_arrived_registers_the_edited_details_once(
    visit: Visit, program: Program, registry: httpx.Client, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/register")
    page.get_by_label("Latitud").fill(str(program.lat))
    page.get_by_label("Longitud").fill(str(program.lon))
    page.get_by_label("Su nombre").fill("Rosa Maldonado")
    page.get_by_label("Correo electrónico o número de teléfono").fill("(414) 555-0199")
    page.get_by_text("Acepto que").click()
    # The connection fails before the service hears of it: nothing is registered.
    page.route("**/v1/registrations", lambda route: route.abort("connectionrefused"))
    page.get_by_role("button", name="Registrarme").click()
    expect(page.locator(".error-summary")).to_contain_text("No se pudo contactar el servicio")
    page.unroute("**/v1/registrations")
    assert registrations_of(sql, program) == []

    page.get_by_label("Su nombre").fill("Rosa I. Maldonado")
    page.get_by_label("¿Cuántas cámaras?").fill("3")
    page.get_by_role("button", name="Registrarme").click()
    # The edited details are registered, once, and nothing is said of an earlier registration.
    expect(page.get_by_role("heading", level=1)).to_have_text("Ya está registrado")
    expect(page.get_by_text("Ya estaba registrado")).to_have_count(0)
    rows = registrations_of(sql, program)
    assert [r["cameras"] for r in rows] == [3]
    credential = page.locator("#credential-value").inner_text()
    r = registry.get(f"/v1/registrations/{rows[0]['id']}", headers={"Authorization": f"Bearer {credential}"})
    assert r.json()["properties"]["contact"]["name"] == "Rosa I. Maldonado"
    visit.check("register-edited-after-a-request-that-never-arrived-es")


def thumb_sized(target: Locator) -> None:
    """At least 24 px high and wide (WCAG 2.2's target size, 2.5.8)."""
    box = target.bounding_box()
    assert box is not None and box["height"] >= 24 and box["width"] >= 24, f"{target}: {box}"


def test_a_retry_and_the_quieter_actions_fit_a_thumb_on_the_owners_pages(visit: Visit, owner: Owner) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    sign_in(visit, owner)
    thumb_sized(page.get_by_role("button", name="Forget my credential on this device"))
    visit.open(f"/registrations/{owner.id}/edit")
    thumb_sized(page.get_by_role("link", name="Cancel"))
    # The places covering the registration cannot be asked for a moment: the alert's "Try again" stays on the
    # screen, and works.
    visit.open("/")
    page.route("**/v1/agencies/covering*", lambda route: route.abort("connectionrefused"))
    page.get_by_label("Latitude").fill("-45.5")
    page.get_by_label("Longitude").fill("170.5")
    page.get_by_role("button", name="Show this place").click()
    alert = page.locator(".place-result .usa-alert--error")
    retry = alert.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()
    within(retry, alert)
    thumb_sized(retry)
    fits_the_screen(page)
    visit.check("covered-unreachable")
    page.unroute("**/v1/agencies/covering*")
    retry.click()
    expect(page.get_by_text("No program covers this place yet.")).to_be_visible()


def test_changing_the_details_names_a_bad_name_email_or_phone_at_its_field_and_sends_nothing(
    visit: Visit, owner: Owner
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    sign_in(visit, owner)
    visit.open(f"/registrations/{owner.id}/edit")
    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    page.get_by_label("Your name").fill("")
    page.get_by_label("Email").fill("owner@example")
    page.get_by_label("Phone number").fill("call me 😀")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-name-error")).to_have_text("Enter your name")
    expect(page.locator("#edit-email-error")).to_have_text(
        "Enter an email address in the right form, like name@example.org"
    )
    expect(page.locator("#edit-phone-error")).to_have_text(
        "Enter a phone number with its area code, like (414) 555-0123"
    )
    expect(page.locator(".error-summary")).to_be_focused()
    fits_the_screen(page)
    visit.check("edit-plain-errors")
    page.get_by_label("Your name").fill("Ω" * 201)
    page.get_by_label("Email").fill("")
    page.get_by_label("Phone number").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#edit-name-error")).to_have_text("Your name must be 200 characters or fewer")
    expect(page.locator("#edit-email-error")).to_have_text(
        "Keep an email address or a phone number, so the agency can reach you"
    )
    assert patches == []
    # Put right, it saves: the name and the phone as typed, normalised by the service.
    page.get_by_label("Your name").fill("Samuel Okafor")
    page.get_by_label("Phone number").fill("(414) 555-0123")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your changes are saved.")).to_be_visible()
    expect(page.get_by_text("+14145550123")).to_be_visible()
    expect(page.get_by_text("Samuel Okafor")).to_be_visible()
    assert len(patches) == 1


def test_after_a_pause_or_an_answer_the_focus_stays_with_what_was_done_and_a_wrong_file_is_named(
    visit: Visit, owner: Owner, program: Program, requests_client: httpx.Client, auth: Token
) -> None:
    send_request(requests_client, auth, program, "A bicycle taken from a porch on this street.")
    send_request(requests_client, auth, program, "A second burglary, the next night.")
    page = visit.page
    page.set_viewport_size(PHONE)
    sign_in(visit, owner)
    # With the keyboard: the button pressed goes with the page drawn anew; the sentence saying what happened
    # takes the focus (read out), not the top of the page.
    page.get_by_role("button", name="Pause").focus()
    page.keyboard.press("Enter")
    done = page.locator(".portal-notice .usa-alert")
    expect(done).to_contain_text("Your registration is paused")
    expect(done).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")
    visit.check("registration-paused")
    page.get_by_role("button", name="Resume").click()
    expect(done).to_have_text("Your registration is active again.")
    expect(done).to_be_focused()

    visit.open(f"/registrations/{owner.id}/requests")
    card = page.locator("section.portal-card", has_text="A bicycle taken from a porch")
    # Two requests of one agency for one kind of crime: each card's region is named apart (axe's landmark-unique).
    for n in (1, 2):
        expect(page.get_by_role("region", name=f"Burglary — {program.name} request {n} of 2")).to_be_visible()
    names = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['landmark-unique']})).violations.map(v => v.id)"
    )
    assert names == []
    card.get_by_role("button", name="Share footage").focus()
    page.keyboard.press("Enter")
    answer = card.locator(".portal-answer")
    expect(answer).to_have_text("You agreed to share")
    expect(answer).to_be_focused()
    # A file the agency does not take: named at the file, in plain words (not the service's list of media types).
    program_file: FilePayload = {
        "name": "setup<script>.exe",
        "mimeType": "application/x-msdownload",
        "buffer": b"MZ" + bytes(2000),
    }
    card.get_by_label("Video file").set_input_files(files=[program_file])
    card.get_by_role("button", name="Upload").click()
    error = card.locator(".usa-form-group--error .usa-error-message")
    expect(error).to_have_text(
        "This type of file cannot be uploaded. Upload the video as your camera or recorder saved it, for example"
        " an MP4 file, or put it in a ZIP file."
    )
    expect(card.get_by_label("Video file")).to_have_attribute("aria-invalid", "true")
    expect(card.locator(".error-summary")).to_be_focused()
    fits_the_screen(page)
    visit.check("requests-wrong-file")


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_tip_with_a_file_of_the_wrong_kind_says_so_in_spanish_then_the_sent_tip_takes_the_focus_and_fits(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(f"/tips/new?agency={program.slug}")
    page.get_by_label("Su aviso").fill("Una camioneta gris sin placas espera detrás de la escuela.")
    wrong: FilePayload = {
        "name": "fotos.exe",
        "mimeType": "application/x-msdownload",
        "buffer": b"MZ" + bytes(500),
    }
    media = page.locator("#tip-media")
    media.set_input_files(files=[wrong])
    page.get_by_role("button", name="Enviar el aviso").click()
    expect(page.locator("#tip-media-error")).to_have_text(
        "Uno de los archivos es de un tipo que no se puede enviar. Envíe fotos, video o audio de los tipos indicados"
        " arriba."
    )
    expect(page.locator(".error-summary")).to_be_focused()
    fits_the_screen(page)
    visit.check("tip-wrong-file-es")
    media.set_input_files(files=[])
    page.get_by_role("button", name="Enviar el aviso").click()
    sent = page.locator(".usa-alert__heading")
    expect(sent).to_be_focused()
    expect(page.locator("#tip-code")).to_contain_text("cvt_")
    # The code, shown once, fits the phone's screen, and a button copies it (a thumb does not select 36 letters).
    fits_the_screen(page)
    page.get_by_role("button", name="Copiar el código").click()
    expect(page.get_by_text("Copiado.", exact=True)).to_be_visible()
    code = page.locator("#tip-code").inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == code
    visit.check("tip-sent-es")
    # Read in English, the code shown once stays.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Your tip was sent")).to_be_visible()
    expect(page.locator("#tip-code")).to_have_text(code)


def test_a_mistyped_email_for_alerts_is_shown_with_the_code_step_and_can_be_corrected(
    visit: Visit, program: Program, mailbox: Mailbox, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    mistyped = f"residentwholivesonthecornerofmainandfifth-{uuid.uuid4().hex[:8]}@exmaple.org"
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    page.get_by_label("Your email address").fill(mistyped)
    page.get_by_label("Latitude").fill(str(program.lat))
    page.get_by_label("Longitude").fill(str(program.lon))
    page.get_by_label("Distance in meters").fill("400")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_focused()
    # Where the code went is shown, long as it is, within the phone's screen.
    expect(page.get_by_text(mistyped, exact=True)).to_be_visible()
    fits_the_screen(page)
    visit.check("alerts-code-sent-to")
    # No code comes to a mistyped address: the resident goes back, everything else as typed, and corrects it.
    page.get_by_role("button", name="Change the email or phone number").click()
    contact = page.get_by_label("Your email address")
    expect(contact).to_be_focused()
    expect(contact).to_have_value(mistyped)
    expect(page.get_by_label("Distance in meters")).to_have_value("400")
    email = f"corner-{uuid.uuid4().hex[:8]}@example.org"
    contact.fill(email)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text(email, exact=True)).to_be_visible()
    mail = mailbox.wait_for(email, lambda m: "confirmation code" in mail_text(m))
    code = re.findall(r"\b(\d{6})\b", mail_text(mail))[-1]
    page.get_by_label("Confirmation code").fill(code)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()
    rows = sql(
        "SELECT status FROM community.subscriptions WHERE agency = $1 ORDER BY created_at", program.slug
    )
    assert [r["status"] for r in rows] == ["pending", "confirmed"]
    # The manage token, shown once, is shown whole on the phone's screen, and a button copies it.
    expect(page.get_by_role("heading", name="Your subscription is confirmed")).to_be_visible()
    token = page.locator("#manage-token-value")
    expect(token).to_contain_text("cvs_")
    within(token, page.locator("main"))
    fits_the_screen(page)
    page.get_by_role("button", name="Copy the token").click()
    expect(page.get_by_text("Copied.", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token.inner_text()
    # The subscription's facts read as label and value, stacked on a phone (not indented as a bare list's).
    term, value = (
        page.locator("main dl dt").first.bounding_box(),
        page.locator("main dl dd").first.bounding_box(),
    )
    assert term is not None and value is not None and term["x"] == value["x"], (term, value)
    visit.check("alerts-confirmed-token")
    # Read in Spanish, the token shown once stays.
    shown = token.inner_text()
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", name="Su suscripción está confirmada")).to_be_visible()
    expect(token).to_have_text(shown)
    visit.check("alerts-confirmed-token-es")
    # Once left, it is not shown again: the page asks for it.
    page.reload()
    expect(page.get_by_label("Clave de gestión")).to_have_value("")
    expect(page.locator("#manage-token-value")).to_have_count(0)


def test_on_a_phone_alerts_are_asked_for_an_address_not_coordinates_and_the_contact_field_follows_the_channel(
    visit: Visit, program: Program, geocoder: Geocoder, mailbox: Mailbox, sql: Callable[..., Any]
) -> None:
    address = f"12 Birch Lane, {program.slug}"
    lat, lon = round(program.lat + 0.0017, 6), round(program.lon + 0.0024, 6)
    found = f"12 Birch Lane, Springfield ({program.slug})"
    geocoder.places[address] = [{"lat": str(lat), "lon": str(lon), "display_name": found}]
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    # By email, the field asks for an email address; by text message, for a mobile number in the form it takes.
    email_field = page.get_by_label("Your email address")
    expect(email_field).to_have_attribute("type", "email")
    expect(page.get_by_text("in international form")).to_have_count(0)
    page.get_by_text("Text message (SMS)").click()
    expect(page.get_by_label("Your mobile phone number")).to_have_attribute("type", "tel")
    expect(page.get_by_text("In international form, for example +14145550123")).to_be_visible()
    page.get_by_text("Email", exact=True).click()
    email = f"birch-{uuid.uuid4().hex[:8]}@example.org"
    page.get_by_label("Your email address").fill(email)
    # The place: an address found (or the phone's location, or the map), never coordinates to know by heart.
    expect(page.get_by_role("button", name="Use my location")).to_be_visible()
    page.get_by_label("Address", exact=True).fill(address)
    page.get_by_role("button", name="Find this address").click()
    page.get_by_role("button", name=found).click()
    expect(page.get_by_label("Latitude")).to_have_value(f"{lat:.6f}")
    page.get_by_label("Distance in meters").fill("300")
    fits_the_screen(page)
    visit.check("alerts-subscribe-by-address")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Confirm your subscription")).to_be_visible()
    [row] = sql(
        "SELECT ST_X(ST_Centroid(area)) AS lon, ST_Y(ST_Centroid(area)) AS lat FROM community.subscriptions"
        " WHERE agency = $1",
        program.slug,
    )
    assert abs(row["lat"] - lat) < 1e-4 and abs(row["lon"] - lon) < 1e-4, (row, lat, lon)
    mailbox.wait_for(email, lambda m: "confirmation code" in mail_text(m))


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_alerts_subscribed_from_the_spanish_page_are_sent_in_spanish(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(f"/alerts/subscribe?agency={program.slug}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reciba alertas de su zona")
    expect(page.get_by_label("Español")).to_be_checked()
    # Each language's own name is marked as written in it (read out in that language).
    expect(page.locator("label[for=alert-language-en]")).to_have_attribute("lang", "en")
    expect(page.locator("label[for=alert-language-es]")).to_have_attribute("lang", "es")
    page.get_by_label("Su correo electrónico").fill("calle@example.org")
    page.get_by_label("Latitud").fill(str(program.lat))
    page.get_by_label("Longitud").fill(str(program.lon))
    page.get_by_role("button", name="Suscribirme").click()
    expect(page.get_by_role("heading", name="Confirme su suscripción")).to_be_visible()
    fits_the_screen(page)
    visit.check("alerts-confirm-es")
    rows = sql("SELECT language FROM community.subscriptions WHERE agency = $1", program.slug)
    assert [r["language"] for r in rows] == ["es"]
    # A link to an alert cut short (in an SMS): said not to be found, in Spanish, not in the service's words.
    visit.open("/alerts/3f2c-cut-short")
    expect(page.get_by_role("alert")).to_have_text("No se encontró. Puede que se haya eliminado.")
    visit.check("alert-link-cut-short-es")


def test_a_registrations_link_opened_without_the_credential_asks_for_it_under_its_own_title(
    visit: Visit, owner: Owner
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(f"/registrations/{owner.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Manage your registration")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page).to_have_title("Manage your registration — Canvass camera registry")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    visit.check("sign-in-first")


@pytest.mark.parametrize(
    ("path", "first_field"),
    [
        ("/", "Address"),
        ("/register", "Address"),
        ("/tips/new", "Police department"),
        ("/alerts/subscribe", "Police department"),
        ("/sign-in", "Your credential"),
    ],
)
def test_on_a_phone_each_forms_first_field_is_on_the_first_screen(
    visit: Visit, program: Program, path: str, first_field: str
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open(path)
    field = page.get_by_label(first_field, exact=True)
    expect(field).to_be_visible()
    box = field.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], (path, box)
    visit.check(f"first-screen{path.replace('/', '-')}")


def agency_reads(page: Page) -> list[Response]:
    """The answers to the page's reads of the agencies (GET /v1/agencies and below it) from now on."""
    seen: list[Response] = []
    page.on(
        "response",
        lambda r: (
            seen.append(r)
            if r.request.method == "GET" and re.search(r"/v1/agencies(/|\?|$)", r.url)
            else None
        ),
    )
    return seen


def test_the_tip_and_alert_forms_list_the_departments_by_name_without_downloading_their_boundaries(
    visit: Visit, program: Program
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    reads = agency_reads(page)
    for path in ("/tips/new", "/alerts/subscribe"):
        reads.clear()
        visit.open(path)
        choice = page.get_by_role("combobox", name="Police department")
        expect(choice.get_by_role("option", name=program.name, exact=True)).to_have_attribute(
            "value", program.slug
        )
        visit.check(f"departments-by-name-{path.strip('/').replace('/', '-')}")
        names = [r for r in reads if parse_qs(urlsplit(r.url).query).get("skipGeometry") == ["true"]]
        listed = [f for r in names for f in r.json()["features"]]
        assert program.slug in {f["properties"]["slug"] for f in listed}, [r.url for r in reads]
        assert all(f["geometry"] is None for f in listed)
        # Boundaries only for the place picker's map, which draws where programs are (its first hundred),
        # simplified for its zoom (tests/portal/test_place_overview.py).
        drawn = [r for r in reads if r not in names]
        assert len(drawn) <= 2 and all(
            parse_qs(urlsplit(r.url).query).keys() == {"limit", "simplify"} for r in drawn
        ), [r.url for r in reads]


# One line of the header on a phone: a 44 px button (the menu's, the language's) and 8 px above and below is 60 px;
# a title that wraps to two lines (Spanish) makes 66. 80 px leaves room for a font's rounding and is about a tenth
# of a 740 px screen: the navigation spread over four lines took 164.
PHONE_HEADER_MAX_PX = 80


@pytest.mark.parametrize(
    ("visit", "words"),
    [
        (
            "en-US",
            {
                "menu": "Menu",
                "nav": "Main",
                "first": "Am I covered?",
                "tip": "Send a tip",
                "other": "Español",
            },
        ),
        (
            "es-MX",
            {
                "menu": "Menú",
                "nav": "Principal",
                "first": "¿Estoy cubierto?",
                "tip": "Enviar un aviso",
                "other": "English",
            },
        ),
    ],
    indirect=["visit"],
)
def test_on_a_phone_the_header_is_one_short_line_whose_menu_opens_and_closes_by_keyboard(
    visit: Visit, words: dict[str, str]
) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    visit.open("/")
    header = page.locator("header.portal-header")
    box = header.bounding_box()
    assert box is not None and box["height"] <= PHONE_HEADER_MAX_PX, box
    menu = page.get_by_role("button", name=words["menu"])
    nav = page.get_by_role("navigation", name=words["nav"])
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    # The language switch stays on the line, beside the menu, a target of at least 24 px.
    other = page.get_by_role("button", name=words["other"])
    for target in (menu, other):
        expect(target).to_be_visible()
        b = target.bounding_box()
        assert b is not None and b["height"] >= 24 and b["width"] >= 24, b
    fits_the_screen(page)

    # By keyboard: the skip link, the title, then the menu button; Enter opens the navigation under it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    visit.check("phone-menu-open")
    page.keyboard.press("Tab")
    expect(nav.get_by_role("link", name=words["first"])).to_be_focused()
    # Escape closes it and gives the focus back to the button.
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    expect(menu).to_be_focused()
    # Opened again with the space bar, a link is followed with Enter; the next page's header starts closed.
    page.keyboard.press(" ")
    expect(nav).to_be_visible()
    link = nav.get_by_role("link", name=words["tip"])
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/tips/new$"))
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    expect(menu).to_have_attribute("aria-expanded", "false")
    box = header.bounding_box()
    assert box is not None and box["height"] <= PHONE_HEADER_MAX_PX, box
