"""The agency workspace on an officer's phone (360 px) and on a cruiser's laptop driven by the keyboard alone, in
Chromium against the real services: every control on the cameras map big enough for a thumb, an owner's contact
that takes the focus once read, a request's action and its legal hold that leave the focus on the state they
changed, a history told in the officer's words and language (not the service's action names), and an audit
record naming the role in words."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.community.conftest import jpeg_with_gps, send_tip
from tests.conftest import Token
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import Visit
from tests.portal.test_agency_workspace import Agency, Scene, make_scene, new_agency, search_nearest
from tests.portal.test_phone_resident import PHONE, PHONE_HEADER_MAX_PX, fits_the_screen
from tests.portal.test_requests import send_request

# The controls a person taps or tabs to, with their size; a link inside a sentence, and a radio or checkbox
# (hidden behind its larger label), are not targets of their own.
SMALL_CONTROLS = """() => [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
  .filter((el) => {
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) return false;
    if (el.type === 'radio' || el.type === 'checkbox') return false;
    if (el.tagName === 'A' && getComputedStyle(el).display === 'inline') return false;
    return r.width < 24 || r.height < 24;
  })
  .map((el) => `${(el.textContent || el.getAttribute('aria-label') || el.tagName).trim()}: `
    + `${Math.round(el.getBoundingClientRect().width)}x${Math.round(el.getBoundingClientRect().height)}`)"""


@pytest.fixture
def scene(registry: httpx.Client, auth: Token) -> Scene:
    return make_scene(registry, auth)


def no_small_controls(page: Page) -> None:
    small = page.evaluate(SMALL_CONTROLS)
    assert small == [], f"controls under 24×24 px: {small}"


def focused_text(page: Page) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.textContent : ''"))


def submitted_request(requests_client: httpx.Client, a: Agency, headers: dict[str, str]) -> str:
    """A burglary request over 200 m of the agency's centre, six to four hours ago, created and submitted by
    `headers`' user: its id."""
    now = datetime.now(UTC)
    r = requests_client.post(
        "/v1/requests",
        json={
            "case_number": f"C-{uuid.uuid4().hex[:8]}",
            "category": "burglary",
            "incident": {"type": "Point", "coordinates": [a.lon, a.lat]},
            "radius_m": 200,
            "window": {
                "start": (now - timedelta(hours=6)).isoformat(),
                "end": (now - timedelta(hours=4)).isoformat(),
            },
            "message": "A burglary on this block.",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    rid = str(r.json()["id"])
    submitted = requests_client.post(
        f"/v1/requests/{rid}/transitions", json={"action": "submit"}, headers={**headers, "If-Match": "*"}
    )
    assert submitted.status_code == 200, submitted.text
    return rid


def test_the_map_page_fits_a_thumb_and_a_contact_read_takes_the_focus_in_english_and_spanish(
    visit: Visit, scene: Scene
) -> None:
    a = scene.agency
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency")
    search_nearest(visit, a.lat, a.lon, f"C-{uuid.uuid4().hex[:8]}")
    items = page.locator("li.ws-result")
    expect(items).to_have_count(3)
    # The header's Sign out, the filters' summary and each "Show the owner's contact" included.
    no_small_controls(page)
    fits_the_screen(page)

    # Read with the keyboard: the button goes, and the focus goes to what it revealed (not to the page's start).
    reveal = items.nth(0).get_by_role("button", name="Show the owner's contact")
    reveal.focus()
    page.keyboard.press("Enter")
    expect(items.nth(0).locator(".ws-contact")).to_be_focused()
    assert "Dana Rivera" in focused_text(page)
    visit.check("agency-phone-contact")

    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cámaras cerca de un incidente")
    page.get_by_label("Latitud", exact=True).fill(str(a.lat))
    page.get_by_label("Longitud", exact=True).fill(str(a.lon))
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.locator("li.ws-result")).to_have_count(3)
    # One camera: said in the singular.
    expect(page.get_by_text("1 de ellas está orientada hacia el incidente.")).to_be_visible()
    no_small_controls(page)
    fits_the_screen(page)
    visit.check("agency-phone-results-es")


def test_an_action_and_the_legal_hold_keep_the_focus_on_the_state_they_changed(
    visit: Visit, scene: Scene, requests_client: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    rid = send_request(requests_client, auth, a, "A burglary on this block. Street footage would help.")  # type: ignore[arg-type]
    page = visit.page
    sign_in_agency(visit, "supervisor", a.slug)
    visit.open(f"/agency/requests/{rid}")

    # The legal hold set with the keyboard: the focus lands on the sentence that says it is held.
    page.get_by_role("button", name="Set a legal hold").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Lift the legal hold")).to_be_visible()
    expect(page.locator(".ws-hold__state")).to_be_focused()
    assert "Legal hold: this request's evidence is never deleted" in focused_text(page)
    visit.check("agency-request-held-focus")

    # Closing it: the focus lands on its new state, read out as it is focused.
    page.get_by_label("Note for the history").fill("Footage received elsewhere.")
    page.get_by_role("button", name="Close the request").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".ws-request-state")).to_be_focused()
    expect(page.locator(".ws-request-state")).to_contain_text("Closed")
    visit.check("agency-request-closed-focus")


def test_the_history_and_the_audit_trail_speak_the_officers_words_in_english_and_spanish(
    visit: Visit, scene: Scene, requests_client: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    rid = send_request(requests_client, auth, a, "A burglary on this block. Street footage would help.")  # type: ignore[arg-type]
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open(f"/agency/requests/{rid}")
    history = page.locator("ol.ws-history li")
    expect(history).to_have_count(4)
    expect(history.nth(0)).to_contain_text("det-1 (Investigator): created the request → Draft")
    expect(history.nth(1)).to_contain_text(
        "det-1 (Investigator): submitted it for approval → Waiting for approval"
    )
    expect(history.nth(2)).to_contain_text("sgt-1 (Supervisor): approved it → Approved")
    expect(history.nth(3)).to_contain_text("sgt-1 (Supervisor): sent it to the owners → Sent")
    # The note the service writes itself, in the officer's words too.
    expect(history.nth(3)).to_contain_text("sent as soon as it was approved")
    fits_the_screen(page)
    visit.check("agency-history-words")

    page.get_by_role("button", name="Español").click()
    expect(history.nth(1)).to_contain_text(
        "det-1 (Investigador): la envió para su aprobación, pasa a Esperando aprobación"
    )
    expect(history.nth(3)).to_contain_text("sgt-1 (Supervisor): la envió a los dueños, pasa a Enviada")
    expect(history.nth(3)).to_contain_text("enviada en cuanto se aprobó")
    for english in ("submit", "approve", "sent on approval"):
        assert english not in (page.locator("ol.ws-history").text_content() or "")
    fits_the_screen(page)
    visit.check("agency-history-words-es")

    # The auditor reads each record's role in words, not the token's value.
    page.get_by_role("button", name="English").click()
    sign_in_agency(visit, "auditor", a.slug)
    visit.open("/agency/audit")
    page.get_by_label("Action").fill("audit.search")
    # The second search finds the first (each search of the trail is itself recorded).
    page.get_by_role("button", name="Search the trail").click()
    page.get_by_role("button", name="Search the trail").click()
    record = page.locator("li.au-record").first
    expect(record.locator(".au-record__title")).to_contain_text("Audit trail searched (audit.search)")
    expect(record).to_contain_text("(Auditor)")
    expect(record).not_to_contain_text("(auditor)")
    visit.check("agency-audit-role-words")


def test_an_alert_the_service_would_refuse_is_named_at_its_field_in_the_supervisors_language(
    visit: Visit, registry: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    page = visit.page
    sign_in_agency(visit, "supervisor", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency/alerts")
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alertas de zona")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" and "/alerts" in r.url else None)
    page.get_by_label("Título").fill("Calle cerrada " * 9)  # 126 characters, past the 120 a title may have
    page.get_by_label("Mensaje").fill("La calle Main está cerrada el sábado.")
    page.get_by_label("Latitud").fill(str(a.lat))
    page.get_by_label("Longitud").fill(str(a.lon))
    # Past the 30 days an alert may last: said at its field before anything is sent.
    page.get_by_label("Vigente hasta").fill((datetime.now() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Enviar la alerta").click()
    expect(page.locator("#wsc-expires-error")).to_have_text("Indique un momento futuro, dentro de 30 días")
    expect(page.locator("#wsc-title-error")).to_have_text("El título debe tener 120 caracteres o menos")
    expect(page.locator(".error-summary")).to_be_focused()
    assert sent == []
    fits_the_screen(page)
    visit.check("agency-alert-expiry-es")

    # A circle far outside the jurisdiction: the service refuses it, and the page says so at the place's field,
    # in Spanish, not in the service's words.
    page.get_by_label("Título").fill("Calle cerrada")
    page.get_by_label("Vigente hasta").fill((datetime.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Latitud").fill(str(round(a.lat + 1, 6)))
    page.get_by_role("button", name="Enviar la alerta").click()
    expect(page.locator("#wsc-lat-error")).to_have_text(
        "La zona debe entrar en la jurisdicción de su agencia (contorno azul)"
    )
    assert len(sent) == 1
    assert "jurisdiction" not in (page.locator("main").text_content() or "")
    expect(page.locator("#wsc-expires-error")).to_have_count(0)
    fits_the_screen(page)
    visit.check("agency-alert-outside-es")


def test_checking_for_live_windows_again_says_so_and_a_new_window_shown_takes_the_focus(
    visit: Visit, registry: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency/live")
    none = page.locator(".portal-empty")
    expect(none).to_contain_text("No live window is open to your agency now.")
    # With the keyboard: the page is asked again and says when, the focus on that answer (not the page's start).
    page.get_by_role("button", name="Check again").focus()
    page.keyboard.press("Enter")
    expect(none).to_be_focused()
    expect(none).to_contain_text("Checked at")
    visit.check("agency-live-checked")

    # An owner opens a window while the page is open: the page says so, and "Show it" (big enough for a thumb)
    # shows it with the focus on it.
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": a.slug,
            "location": {"type": "Point", "coordinates": [a.lon, a.lat]},
            "contact": {"name": "Dana Rivera", "email": f"owner-{uuid.uuid4().hex[:12]}@example.org"},
            "cameras": [
                {"label": "door", "live_mode": "on_alert", "live_endpoint": "rtsp://127.0.0.1:8554/door"}
            ],
        },
    )
    assert r.status_code == 201, r.text
    rid, credential = r.json()["id"], r.json()["credential"]
    opened = registry.post(
        f"/v1/registrations/{rid}/live-windows",
        json={"reason": "alert", "duration_s": 900},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert opened.status_code == 201, opened.text
    show = page.get_by_role("button", name="Show it")
    expect(show).to_be_visible(timeout=15_000)
    no_small_controls(page)
    show.focus()
    page.keyboard.press("Enter")
    heading = page.locator(f'[data-window="{opened.json()["id"]}"] h2')
    expect(heading).to_be_focused()
    expect(heading).to_have_text("Window opened for an alert")
    fits_the_screen(page)
    visit.check("agency-live-new-window-focus")


def test_a_tips_photo_triage_reply_and_hold_keep_the_focus_on_what_they_changed(
    visit: Visit, registry: httpx.Client, community: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    photo = ("shop.jpg", jpeg_with_gps(), "image/jpeg")
    sent = send_tip(
        community, a.slug, "Two people carry boxes out of the closed shop on Elm every night.", files=[photo]
    )
    assert sent.status_code == 201, sent.text
    tip = sent.json()["id"]
    page = visit.page
    sign_in_agency(visit, "supervisor", a.slug)
    page.set_viewport_size(PHONE)
    visit.open(f"/agency/tips/{tip}")
    # The tipster's photo, named in words (not its media type) by a button big enough to tap.
    expect(page.get_by_role("button", name=re.compile(r"^Open photo 1 \([0-9.]+ KiB\)$"))).to_be_visible()
    no_small_controls(page)

    # Each with the keyboard: the page is drawn anew, and the focus lands on what changed.
    page.get_by_role("button", name="Start reviewing").focus()
    page.keyboard.press("Enter")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_be_focused()
    expect(heading).to_contain_text("Reviewing")

    page.get_by_role("button", name="Put under legal hold").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".wsc-hold")).to_be_focused()
    expect(page.locator(".wsc-hold")).to_have_text("Under legal hold")

    page.get_by_label("Your reply").fill("Thank you. Do you know which nights exactly?")
    page.get_by_role("button", name="Send the reply").focus()
    page.keyboard.press("Enter")
    reply = page.locator(".portal-message--agency").last
    expect(reply).to_be_focused()
    expect(reply).to_contain_text("Thank you. Do you know which nights exactly?")
    fits_the_screen(page)
    visit.check("agency-tip-replied-focus")


def test_the_requests_state_filter_can_be_stepped_through_with_the_arrow_keys(
    visit: Visit, scene: Scene, requests_client: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    send_request(requests_client, auth, a, "A burglary on this block. Street footage would help.")  # type: ignore[arg-type]
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    visit.open("/agency/requests")
    expect(page.locator(".ws-request-card")).to_have_count(1)
    states = page.locator("#ws-state-filter")
    states.focus()
    # Each arrow shows that state's requests, and the focus stays on the filter for the next one.
    page.keyboard.press("ArrowDown")
    page.wait_for_url("**/agency/requests?state=draft")
    expect(page.get_by_text("No request yet.")).to_be_visible()
    expect(states).to_be_focused()
    for state in ("pending_approval", "approved", "rejected", "sent"):
        page.keyboard.press("ArrowDown")
        page.wait_for_url(f"**/agency/requests?state={state}")
        expect(states).to_be_focused()
    expect(states).to_be_focused()
    expect(states).to_have_value("sent")
    expect(page.locator(".ws-request-card")).to_have_count(1)
    visit.check("agency-requests-filter-keyboard")


def test_a_distance_past_the_agencys_limit_is_named_at_its_field_in_plain_words_without_a_retry(
    visit: Visit, registry: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency")
    searched: list[str] = []
    page.on("request", lambda r: searched.append(r.url) if "/v1/cameras/radius" in r.url else None)
    page.locator("label[for=ws-search-radius]").click()
    page.get_by_label("Latitude", exact=True).fill(str(a.lat))
    page.get_by_label("Longitude", exact=True).fill(str(a.lon))
    page.get_by_label("Distance in metres").fill("99999")
    page.get_by_role("button", name="Find cameras").click()
    expect(page.locator("#ws-radius-error")).to_have_text(
        "Enter a distance of at most 2,000 m, your agency's limit."
    )
    # Nothing to try again: the distance is the thing to change.
    expect(page.locator(".error-summary").get_by_role("button", name="Try again")).to_have_count(0)
    assert searched == []
    fits_the_screen(page)
    visit.check("agency-radius-over")

    # Along a route, the distance either side of the path, in Spanish.
    page.get_by_role("button", name="Español").click()
    page.locator("label[for=ws-kind-route]").click()
    page.get_by_label("Distancia a cada lado del recorrido, en metros").fill("5000")
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.locator("#rt-buffer-error")).to_have_text(
        "Escriba una distancia de 2,000 m como máximo, el límite de su agencia."
    )
    fits_the_screen(page)
    visit.check("agency-route-buffer-over-es")

    # A path longer than one search may take (the deployment's cap, 50 km): refused by the service, said in
    # Spanish from the path itself.
    page.get_by_label("Distancia a cada lado del recorrido, en metros").fill("50")
    far = round(a.lat + 0.6, 6)
    page.get_by_label("Puntos del recorrido", exact=True).fill(f"{a.lon}, {a.lat}\n{a.lon}, {far}")
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.locator("#rt-points-error")).to_have_text(
        re.compile(
            r"^Este recorrido mide 66\.[0-9] km, demasiado para una sola búsqueda: búsquelo por partes más cortas\.$"
        )
    )
    visit.check("agency-route-too-long-es")


def test_switching_language_mid_search_keeps_what_the_officer_typed(visit: Visit, scene: Scene) -> None:
    a = scene.agency
    case = f"C-{uuid.uuid4().hex[:8]}"
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency")
    page.get_by_label("Case number").fill(case)
    page.get_by_label("Latitude", exact=True).fill(str(a.lat))
    page.get_by_label("Longitude", exact=True).fill(str(a.lon))
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cámaras cerca de un incidente")
    expect(page.get_by_label("Número de caso")).to_have_value(case)
    expect(page.get_by_label("Latitud", exact=True)).to_have_value(str(a.lat))
    expect(page.get_by_label("Longitud", exact=True)).to_have_value(str(a.lon))
    # And the search goes on from there, in Spanish.
    page.get_by_role("button", name="Buscar cámaras").click()
    expect(page.get_by_role("heading", name="3 cámaras, la más cercana primero")).to_be_visible()
    fits_the_screen(page)
    visit.check("agency-map-language-switch-kept")


def test_approving_a_request_that_reaches_no_owner_says_why_in_the_supervisors_language(
    visit: Visit, registry: httpx.Client, requests_client: httpx.Client, auth: Token
) -> None:
    a = new_agency(registry, auth)  # no camera registered: the request reaches nobody
    investigator = auth("investigator", a.slug, sub="det-1")
    rid = submitted_request(requests_client, a, investigator)

    page = visit.page
    sign_in_agency(visit, "supervisor", a.slug)
    page.set_viewport_size(PHONE)
    visit.open(f"/agency/requests/{rid}")
    page.get_by_role("button", name="Approve and send").click()
    expect(page.locator(".ws-actions [role=alert]")).to_have_text(
        "No camera owner is in this request's area: there is nobody to send it to. Cancel it, or create one over another area."
    )
    fits_the_screen(page)
    visit.check("agency-request-no-owner")
    page.get_by_role("button", name="Español").click()
    page.get_by_role("button", name="Aprobar y enviar").click()
    expect(page.locator(".ws-actions [role=alert]")).to_have_text(
        "Ningún dueño de cámara está en la zona de esta solicitud: no hay a quién enviarla. Cancélela o cree otra sobre otra zona."
    )
    visit.check("agency-request-no-owner-es")


def test_an_audit_record_names_its_action_and_what_it_concerns_in_the_auditors_language(
    visit: Visit, scene: Scene, registry: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    case = f"C-{uuid.uuid4().hex[:8]}"
    owner = scene.owners[0]
    read = registry.get(
        f"/v1/registrations/{owner.id}/contact",
        params={"case_number": case},
        headers=auth("investigator", a.slug, sub="det-rivera"),
    )
    assert read.status_code == 200, read.text
    page = visit.page
    sign_in_agency(visit, "auditor", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency/audit")
    page.get_by_role("button", name="Español").click()
    page.get_by_label("Número de caso").fill(case)
    page.get_by_role("button", name="Buscar en el registro").click()
    record = page.locator("li.au-record").first
    # The action in words, with the trail's own name (what the Action filter takes) beside it.
    expect(record.locator(".au-record__title")).to_contain_text(
        "Contacto de un dueño consultado (registration.contact.read)"
    )
    expect(record).to_contain_text("Por det-rivera (Investigador)")
    expect(record).to_contain_text(f"Se refiere a: registro {owner.id}")
    fits_the_screen(page)
    visit.check("agency-audit-subject-es")


def test_a_supervisor_is_not_offered_to_approve_their_own_request_and_is_told_why(
    visit: Visit, scene: Scene, requests_client: httpx.Client, auth: Token
) -> None:
    a = scene.agency
    # Created and submitted by the supervisor who signs in below (the provider's account is the token's sub).
    supervisor = auth("supervisor", a.slug, sub=f"{a.slug}.supervisor")
    rid = submitted_request(requests_client, a, supervisor)
    # The service refuses it, whatever the page offers.
    refused = requests_client.post(
        f"/v1/requests/{rid}/transitions", json={"action": "approve"}, headers={**supervisor, "If-Match": "*"}
    )
    assert refused.status_code == 403, refused.text

    page = visit.page
    sign_in_agency(visit, "supervisor", a.slug)
    page.set_viewport_size(PHONE)
    visit.open(f"/agency/requests/{rid}")
    expect(
        page.get_by_text("Another supervisor must approve or reject this request: you created it.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Approve and send")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel the request")).to_be_visible()
    fits_the_screen(page)
    visit.check("agency-request-own-approval")


def test_on_a_phone_a_signed_in_officers_header_is_one_line_with_who_and_sign_out_behind_the_menu(
    visit: Visit, scene: Scene
) -> None:
    """The staff's line (who is signed in, Sign out) folds behind the menu button with the navigation, so a
    signed-in officer's header is one line too; opened, it is read and reached by keyboard after the links."""
    a = scene.agency
    page = visit.page
    sign_in_agency(visit, "investigator", a.slug)
    page.set_viewport_size(PHONE)
    visit.open("/agency/requests")
    visit.check("agency-phone-header")  # the page settled (its list loaded, the focus on its heading)
    header = page.locator("header.portal-header")
    box = header.bounding_box()
    assert box is not None and box["height"] <= PHONE_HEADER_MAX_PX, box
    status = header.locator(".portal-agency-status")
    expect(status).to_be_hidden()
    fits_the_screen(page)
    menu = page.get_by_role("button", name="Menu")
    menu.focus()
    page.keyboard.press("Enter")
    expect(status).to_be_visible()
    expect(status).to_contain_text(f"Investigator, {a.slug}")
    assert set((menu.get_attribute("aria-controls") or "").split()) == {"portal-nav", "portal-agency-status"}
    # After the navigation's links, the Tab key reaches Sign out; Escape from it closes the menu.
    sign_out = status.get_by_role("button", name="Sign out")
    links = page.get_by_role("navigation", name="Main").get_by_role("link").count()
    for _ in range(links + 1):
        page.keyboard.press("Tab")
    expect(sign_out).to_be_focused()
    visit.check("agency-phone-menu-open")
    page.keyboard.press("Escape")
    expect(status).to_be_hidden()
    expect(menu).to_be_focused()
    # On a wide screen the staff's line is shown as before, the menu button hidden.
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(status).to_be_visible()
    expect(menu).to_be_hidden()
