"""Managing a registration with its credential: sign in, pause and resume, edit with If-Match (a change made
elsewhere is reported and nothing typed is lost), and delete after a page listing what will be erased."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.conftest import Token
from tests.portal.conftest import Owner, Program, Visit, sign_in


def bearer(owner: Owner) -> dict[str, str]:
    return {"Authorization": f"Bearer {owner.credential}"}


def test_a_wrong_credential_is_refused_at_its_field(visit: Visit, owner: Owner) -> None:
    page = visit.page
    visit.open("/sign-in")
    visit.check("sign-in")
    page.get_by_label("Your credential").fill("not-a-credential")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#signin-credential-error")).to_contain_text("starts with cvo_")
    # A credential of the right shape that the service refuses.
    forged = owner.credential[: owner.credential.rindex("_") + 1] + "x" * 20
    page.get_by_label("Your credential").fill(forged)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#signin-credential-error")).to_contain_text("was not accepted")
    visit.check("sign-in-refused")
    # Nothing of it is kept: the page of the registration asks for a credential.
    page.goto(f"{visit.base}/registrations/{owner.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Manage your registration")


def test_pause_and_resume_change_what_the_database_holds(
    visit: Visit, owner: Owner, program: Program, sql: Callable[..., Any]
) -> None:
    page = visit.page
    sign_in(visit, owner)
    expect(page.locator("dt:text-is('Program') + dd")).to_have_text(program.name)
    expect(page.locator("dt:text-is('Seen by') + dd")).to_have_text(program.name)
    assert "cvo_" not in page.url
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Your registration is paused")).to_be_visible()
    expect(page.locator(".portal-status")).to_have_text("Paused")
    assert sql("SELECT status FROM registry.registrations WHERE id = $1", owner.id)[0]["status"] == "paused"
    visit.check("registration-paused")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Your registration is active again.")).to_be_visible()
    assert sql("SELECT status FROM registry.registrations WHERE id = $1", owner.id)[0]["status"] == "active"
    page.get_by_role("button", name="Withdraw").click()
    expect(page.get_by_text("Your registration is withdrawn")).to_be_visible()
    assert (
        sql("SELECT status FROM registry.registrations WHERE id = $1", owner.id)[0]["status"] == "withdrawn"
    )


def test_the_annual_reconfirmation_moves_the_due_date(
    visit: Visit, owner: Owner, sql: Callable[..., Any]
) -> None:
    # As if registered a year ago: the re-confirmation is due.
    sql(
        "UPDATE registry.registrations SET last_confirmed_at = now() - interval '360 days'"
        " WHERE id = $1 RETURNING id",
        owner.id,
    )
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("button", name="Confirm it is still right").click()
    expect(page.get_by_text("Thank you: your registration is confirmed for another year.")).to_be_visible()
    visit.check("reconfirmed")
    age = sql("SELECT now() - last_confirmed_at AS age FROM registry.registrations WHERE id = $1", owner.id)
    assert age[0]["age"].total_seconds() < 60


def test_an_edit_over_a_change_made_elsewhere_says_so_and_keeps_what_was_typed(
    visit: Visit, owner: Owner, registry: httpx.Client, sql: Callable[..., Any]
) -> None:
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Change my details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your details")
    visit.check("edit")
    page.get_by_label("Your name").fill("Samuel Okafor")
    # Meanwhile, the registration changes elsewhere (another device, with the same credential).
    current = registry.get(f"/v1/registrations/{owner.id}", headers=bearer(owner)).json()["properties"][
        "version"
    ]
    r = registry.patch(
        f"/v1/registrations/{owner.id}",
        json={"contact": {"phone": "(414) 555-0123"}},
        headers={**bearer(owner), "If-Match": f'"{current}"'},
    )
    assert r.status_code == 200, r.text
    page.get_by_role("button", name="Save").click()
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("changed elsewhere")
    expect(page.get_by_label("Your name")).to_have_value("Samuel Okafor")
    visit.check("edit-changed-elsewhere")
    summary.get_by_role("button", name="Reload the latest version").click()
    expect(page.get_by_text("The latest version is loaded.")).to_be_visible()
    # What was typed stays; what changed elsewhere (the phone) is now shown.
    expect(page.get_by_label("Your name")).to_have_value("Samuel Okafor")
    expect(page.get_by_label("Phone number")).to_have_value("+14145550123")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your changes are saved.")).to_be_visible()
    expect(page.get_by_text("Samuel Okafor")).to_be_visible()
    # Both changes hold: the name typed here, the phone set elsewhere.
    stored = registry.get(f"/v1/registrations/{owner.id}", headers=bearer(owner)).json()["properties"]
    assert stored["contact"]["name"] == "Samuel Okafor"
    assert stored["contact"]["phone"] == "+14145550123"
    assert (
        sql("SELECT version FROM registry.registrations WHERE id = $1", owner.id)[0]["version"] == current + 2
    )


def test_delete_lists_what_is_erased_then_the_registration_is_gone(
    visit: Visit, owner: Owner, registry: httpx.Client, sql: Callable[..., Any]
) -> None:
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Delete my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your registration")
    erased = page.get_by_role("heading", name="What will be erased").locator("xpath=following-sibling::ul[1]")
    expect(erased.get_by_role("listitem")).to_have_text(
        [
            "Your name (Sam Okafor), email address and phone number",
            "Your address and the place on the map",
            "Your cameras (1) and everything you said about them",
            "Your notes to agencies, and the names and descriptions of files you uploaded",
            "Your credential: it will stop working",
        ]
    )
    visit.check("delete")
    page.get_by_role("button", name="Delete my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your registration is deleted")
    visit.check("deleted")
    assert sql("SELECT id FROM registry.registrations WHERE id = $1", owner.id) == []
    assert sql("SELECT id FROM registry.cameras WHERE registration_id = $1", owner.id) == []
    assert registry.get(f"/v1/registrations/{owner.id}", headers=bearer(owner)).status_code in (401, 404)
    # The tab forgot the credential with it.
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('canvass.'))") == []


def test_sharing_with_a_further_agency_covering_the_place(
    visit: Visit, owner: Owner, program: Program, registry: httpx.Client, auth: Token, sql: Callable[..., Any]
) -> None:
    county = f"c-{uuid.uuid4().hex[:10]}"
    w, s = program.west - 0.2, program.south - 0.2
    ring = [[w, s], [w + 0.5, s], [w + 0.5, s + 0.5], [w, s + 0.5], [w, s]]
    r = registry.post(
        "/v1/agencies",
        json={
            "slug": county,
            "name": f"County Sheriff {county}",
            "jurisdiction": {"type": "Polygon", "coordinates": [ring]},
        },
        headers=auth("agency_admin", county),
    )
    assert r.status_code == 201, r.text
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Share with other agencies").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Share with other agencies")
    page.get_by_text(f"County Sheriff {county}").click()
    visit.check("sharing")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Who sees your registration is saved.")).to_be_visible()
    shared = sql(
        "SELECT a.slug FROM registry.registration_shares s JOIN registry.agencies a ON a.id = s.agency_id"
        " WHERE s.registration_id = $1",
        owner.id,
    )
    assert county in {row["slug"] for row in shared}
