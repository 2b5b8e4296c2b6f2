"""The credential after registering: replaced from the registration's page, or, when lost, by a one-time code
sent to the registration's email. Each time the new one is shown once and the old one stops working."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from typing import Any

import httpx
from playwright.sync_api import expect

from tests.portal.conftest import Owner, Visit, sign_in
from tests.support import Mailbox


def text_of(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def works(registry: httpx.Client, owner: Owner, credential: str) -> bool:
    r = registry.get(f"/v1/registrations/{owner.id}", headers={"Authorization": f"Bearer {credential}"})
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_a_new_credential_from_the_registration_page_replaces_the_old(
    visit: Visit, owner: Owner, registry: httpx.Client
) -> None:
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("button", name="Get a new credential").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new credential")
    expect(page.get_by_text("Your old credential no longer works.")).to_be_visible()
    visit.check("credential-replaced")
    new = page.locator("#credential-value").inner_text().strip()
    assert new != owner.credential and "cvo_" not in page.url
    assert works(registry, owner, new) and not works(registry, owner, owner.credential)
    # The tab keeps the new one: the registration's page opens with it.
    page.get_by_role("link", name="Continue to my registration").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your registration")


def test_a_lost_credential_is_replaced_with_a_code_sent_by_email(
    visit: Visit, owner: Owner, registry: httpx.Client, mailbox: Mailbox, sql: Callable[..., Any]
) -> None:
    page = visit.page
    before = sql("SELECT credential_hash FROM registry.registrations WHERE id = $1", owner.id)[0][0]
    visit.open("/sign-in")
    page.get_by_role("link", name="Get a new credential by email").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Get a new credential")
    visit.check("lost")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_role("button", name="Send me a code").click()
    expect(
        page.get_by_text("If a registration has this email address, a code is on its way.")
    ).to_be_visible()
    mail = mailbox.wait_for(owner.email, lambda m: "cvr_" in text_of(m))
    found = re.search(r"cvr_[A-Za-z0-9_-]+", text_of(mail))
    assert found is not None
    # A wrong code is refused at its field.
    page.get_by_label("One-time code").fill("cvr_" + "x" * 40)
    page.get_by_role("button", name="Get my new credential").click()
    expect(page.locator("#lost-code-error")).to_contain_text("This code does not work")
    visit.check("lost-wrong-code")
    page.get_by_label("One-time code").fill(found.group(0))
    page.get_by_role("button", name="Get my new credential").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your new credential")
    new = page.locator("#credential-value").inner_text().strip()
    assert works(registry, owner, new) and not works(registry, owner, owner.credential)
    after = sql("SELECT credential_hash FROM registry.registrations WHERE id = $1", owner.id)[0][0]
    assert after != before
