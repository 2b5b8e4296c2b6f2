"""What the services refuse that the portal could not check before sending, said in the reader's language at its
field and in the error summary, in Chromium against the real services: the portal words each refusal from the
code the problem document gives its member (and the limit it names), never from the service's English reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.portal.conftest import Program, Visit
from tests.portal.test_phone_resident import registrations_of

# A phone number of the right shape (ten digits) that does not exist: the United States have no area code 111.
# Only the service (libphonenumber) can tell.
NO_SUCH_PHONE = "(111) 555-0199"


def refusals_answered(page: Page, path: str) -> list[dict[str, Any]]:
    """The invalid members of each refusal the service answers on `path` from now on, as sent."""
    seen: list[dict[str, Any]] = []

    def on_response(response: Any) -> None:
        if (
            response.request.method == "POST"
            and response.url.endswith(path)
            and response.status in (400, 422)
        ):
            seen.extend(response.json()["errors"])

    page.on("response", on_response)
    return seen


def no_english(text: str, *english: str) -> None:
    for words in english:
        assert words not in text, (words, text)


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_spanish_reader_sees_the_refusals_the_portal_could_not_check_in_spanish_at_their_fields(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open("/register")
    answered = refusals_answered(page, "/v1/registrations")
    page.get_by_label("Latitud").fill(str(program.lat))
    page.get_by_label("Longitud").fill(str(program.lon))
    page.get_by_label("Su nombre").fill("Rosa Maldonado")
    page.get_by_label("Correo electrónico o número de teléfono").fill(NO_SUCH_PHONE)
    page.get_by_text("Acepto que").click()
    page.get_by_role("button", name="Registrarme").click()

    # At the field: its label and what to do, in Spanish; the same in the summary, linking to it.
    phone_sentence = (
        "Correo electrónico o número de teléfono: Escriba un número de teléfono que exista, con su código de "
        "área, como (414) 555-0123"
    )
    at_field = page.locator('[data-field="reg-contact"] .usa-error-message')
    expect(at_field).to_have_text(phone_sentence)
    summary = page.locator(".error-summary")
    expect(summary.get_by_role("link", name=phone_sentence)).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text("Hay un problema")
    # What the service sent: its code, and its English reason, which the page does not show.
    assert [(e["pointer"], e["code"]) for e in answered] == [("/body/contact/phone", "phone_invalid")]
    no_english(page.locator("main").inner_text(), answered[0]["reason"], "not a valid")
    assert page.locator("#reg-contact").get_attribute("aria-invalid") == "true"
    visit.check("register-refused-phone-es")

    # A name over the service's limit, sent past the page's own check (as an older page, or a changed limit,
    # would): the service's limit, said in Spanish at the name.
    def longer_name(route: Route, request: Request) -> None:
        body = json.loads(request.post_data or "{}")
        body["contact"]["name"] = "R" * 201
        route.continue_(post_data=json.dumps(body))

    page.route("**/v1/registrations", longer_name)
    page.get_by_label("Correo electrónico o número de teléfono").fill("(414) 555-0199")
    page.get_by_role("button", name="Registrarme").click()
    name_sentence = "Su nombre: Escriba como máximo 200 caracteres"
    expect(page.locator('[data-field="reg-name"] .usa-error-message')).to_have_text(name_sentence)
    expect(page.locator(".error-summary").get_by_role("link", name=name_sentence)).to_be_visible()
    assert (answered[-1]["pointer"], answered[-1]["code"], answered[-1]["params"]) == (
        "/body/contact/name",
        "string_too_long",
        {"max_length": 200},
    )
    no_english(page.locator("main").inner_text(), answered[-1]["reason"], "String should")
    # What was typed is kept, and nothing was registered.
    expect(page.get_by_label("Su nombre")).to_have_value("Rosa Maldonado")
    assert registrations_of(sql, program) == []
    visit.check("register-refused-name-es")


@pytest.mark.parametrize("visit", ["es-MX"], indirect=True)
def test_a_tip_longer_than_the_service_takes_is_refused_in_spanish_at_its_field(
    visit: Visit, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    visit.open(f"/tips/new?agency={program.slug}")
    answered = refusals_answered(page, "/v1/tips")
    # The page does not limit a tip's length; the service takes 10,000 characters.
    page.get_by_label("Su aviso").fill("Una furgoneta gris espera detrás de la escuela. " * 210)
    page.get_by_role("button", name="Enviar el aviso").click()
    sentence = "Su aviso: Escriba como máximo 10,000 caracteres"
    expect(page.locator('[data-field="tip-text"] .usa-error-message')).to_have_text(sentence)
    expect(page.locator(".error-summary").get_by_role("link", name=sentence)).to_be_visible()
    assert [(e["pointer"], e["code"], e["params"]) for e in answered] == [
        ("/body/text", "string_too_long", {"max_length": 10_000})
    ]
    no_english(page.locator("main").inner_text(), answered[0]["reason"])
    assert sql("SELECT count(*) AS n FROM community.tips WHERE agency = $1", program.slug)[0]["n"] == 0
    visit.check("tip-refused-too-long-es")
