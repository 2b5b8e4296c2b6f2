"""The agency sign-in the workspace tests use, in one place: staff sign in through their agency's identity
provider (the development OpenID provider of tests/portal/oidc.py, its login page in the browser), the way a
person does. The agency must be one of the provider's (`next_staff_agency()` gives a test one of its own)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.portal.conftest import Visit
from tests.portal.oidc import account, oidc_sign_in

ROLE_NAMES = {
    "investigator": "Investigator",
    "supervisor": "Supervisor",
    "agency_admin": "Agency administrator",
    "auditor": "Auditor",
}


def sign_in_agency(visit: Visit, role: str, agency: str) -> None:
    """Signs the tab in as `role` of `agency` through the provider, signing out (at the provider too) whoever was
    signed in before."""
    page = visit.page
    # An agency page loaded anew signs in again whoever this tab was signed in as (the sign-in page itself does
    # not): the header then names them, with its Sign out.
    visit.open("/agency/program")
    if page.locator(".portal-agency-status").count():
        # On a phone, who is signed in and Sign out are behind the header's menu button.
        menu = page.locator("button.portal-menu")
        if menu.is_visible() and menu.get_attribute("aria-expanded") != "true":
            menu.click()
        page.locator(".portal-agency-status").get_by_role("button", name="Sign out").click()
        page.get_by_role("button", name="Yes, sign out").click()  # the provider's own page
        page.wait_for_url(f"{visit.base}/agency/signed-out")
    oidc_sign_in(page, visit.base, account(role, agency))
    expect(page.locator("main").get_by_text(f"Signed in as {ROLE_NAMES[role]} of {agency}.")).to_be_visible()
