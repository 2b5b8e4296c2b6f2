"""The agency sign-in the workspace tests use, in one place: today the development sign-in (a role of an agency
exchanged for a development token on the portal's /staff page); the agency's identity provider replaces it here
alone."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.portal.conftest import Visit

ROLE_NAMES = {
    "investigator": "Investigator",
    "supervisor": "Supervisor",
    "agency_admin": "Agency administrator",
    "auditor": "Auditor",
}


def sign_in_agency(visit: Visit, role: str, agency: str) -> None:
    """Signs the tab in as `role` of `agency` (signing out whoever was signed in before)."""
    page = visit.page
    visit.open("/staff")
    # The page's own button: the header carries another for whoever is signed in.
    sign_out = page.locator("main").get_by_role("button", name="Sign out")
    if sign_out.count():
        sign_out.click()
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Agency").select_option(agency)
    page.locator("main").get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {ROLE_NAMES[role]} of {agency}.")).to_be_visible()
