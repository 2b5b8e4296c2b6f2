"""Signing in to the portal as agency staff through the development OpenID provider (tools/oidc-dev), the way
a person does: the portal's agency sign-in page, the provider's login page, back to the portal.

The provider runs for every browser test (the `oidc_provider` fixture, which `portal` depends on); the services
trust its tokens for its agencies, which the fixture registers in the run's database. Its accounts, all with the
password PASSWORD ("canvass-demo"):

    demo.investigator        investigator   agency `demo`        (jurisdiction DEMO_SQUARE)
    demo.supervisor          supervisor     agency `demo`
    demo.admin               agency_admin   agency `demo`
    demo.auditor             auditor        agency `demo`
    northfield.investigator  investigator   agency `northfield`  (jurisdiction NORTHFIELD_SQUARE)
    northfield.admin         agency_admin   agency `northfield`
    eastport.admin           agency_admin   agency `eastport`    (the program page's tests change its program)

and, for the tests that need an agency of their own (a jurisdiction nobody else's test touches), the agencies of
STAFF_AGENCIES, each with one account per role of ROLES named `<agency>.<role>`: a test takes the next with
`next_staff_agency()` and publishes it where it likes.

Access tokens live OIDC_ACCESS_TTL_S seconds in the tests; the portal renews them silently before they expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page

from scripts.oidc_dev import ACCOUNTS, CLIENT_ID, PASSWORD

# Long enough for a sign-in, short enough that the portal renews within a test (it renews 60 s before expiry).
OIDC_ACCESS_TTL_S = 75
ROLES = ("investigator", "supervisor", "agency_admin", "auditor")
STAFF_AGENCIES = [f"ws-{i:02d}" for i in range(1, 61)]
TEST_ACCOUNTS = {
    "password": ACCOUNTS["password"],
    "accounts": [
        *ACCOUNTS["accounts"],
        *(
            {"username": f"{slug}.{role}", "name": f"{role} of {slug}", "agency": slug, "role": role}
            for slug in STAFF_AGENCIES
            for role in ROLES
        ),
    ],
}
# Every agency whose staff sign in through the provider in the tests (the services trust it for these alone).
PROVIDER_AGENCIES = sorted({a["agency"] for a in TEST_ACCOUNTS["accounts"]})
AGENCY_OF = {a["username"]: a["agency"] for a in TEST_ACCOUNTS["accounts"]}
_unused = iter(STAFF_AGENCIES)


def next_staff_agency() -> str:
    """An agency of the provider no test has used yet in this run (to be published by the caller)."""
    slug = next(_unused, None)
    assert slug, f"the tests used all {len(STAFF_AGENCIES)} STAFF_AGENCIES: add more"
    return slug


def account(role: str, agency: str) -> str:
    """The provider's account of `role` in `agency`: the demo accounts' for the demo agencies."""
    for a in TEST_ACCOUNTS["accounts"]:
        if a["agency"] == agency and a["role"] == role:
            return str(a["username"])
    raise AssertionError(f"the provider has no {role} of {agency}")


def write_accounts(path: Path) -> Path:
    """The provider's directory for the tests, written to `path`."""
    path.write_text(json.dumps(TEST_ACCOUNTS))
    return path


# [west, south, east, north]
DEMO_SQUARE = (-87.96, 43.00, -87.88, 43.08)
NORTHFIELD_SQUARE = (-88.10, 43.10, -88.02, 43.18)
EASTPORT_SQUARE = (-87.80, 43.00, -87.72, 43.08)
SQUARES = {"demo": DEMO_SQUARE, "northfield": NORTHFIELD_SQUARE, "eastport": EASTPORT_SQUARE}
NAMES = {"demo": "Demo City Police", "northfield": "Northfield Police", "eastport": "Eastport Police"}


def square(west: float, south: float, east: float, north: float) -> dict[str, object]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def register_agencies(registry: httpx.Client, auth: Callable[..., dict[str, str]]) -> None:
    """The provider's agencies, published as their administrators do (once per run's database)."""
    for slug in sorted({a["agency"] for a in ACCOUNTS["accounts"]}):
        if registry.get(f"/v1/agencies/{slug}").status_code == 200:
            continue
        r = registry.post(
            "/v1/agencies",
            json={"slug": slug, "name": NAMES[slug], "jurisdiction": square(*SQUARES[slug])},
            headers=auth("agency_admin", slug),
        )
        assert r.status_code in (201, 409), r.text


def oidc_sign_in(
    page: Page, portal_url: str, username: str, password: str = PASSWORD, next_path: str = "/agency/sign-in"
) -> None:
    """Signs `username` in on the portal through the provider's login page, and waits until the portal shows
    `next_path` signed in (the header names the role and agency). While the provider's session is still open
    (signed in earlier in the same browser context, not signed out), the provider asks nothing again."""
    page.goto(f"{portal_url}/agency/sign-in?next={next_path}")
    # By the fields' ids: the portal may speak Spanish (the provider's own page is English).
    page.locator("#agency-choice").select_option(AGENCY_OF[username])
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/interaction/|^" + re.escape(portal_url + next_path) + r"$"))
    if "/interaction/" in page.url:
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(portal_url + next_path)
    page.locator(".portal-agency-status").wait_for(state="attached")  # behind the menu button on a phone


def provider_token(issuer: str, portal_url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The provider's token answer (access, refresh and ID tokens) for `username`, through the same authorization
    code flow with PKCE and the same login form the browser uses, without a browser (for API-level checks)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"{portal_url}/agency/callback"
    with httpx.Client(base_url=issuer, timeout=30) as c:
        r = c.get(
            "/auth",
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": redirect,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": secrets.token_urlsafe(8),
            },
        )
        r = c.get(r.headers["location"])
        action = re.search(r'action="([^"]+)"', r.text)
        assert action, r.text
        r = c.post(action.group(1), data={"username": username, "password": password})
        while not r.headers["location"].startswith(redirect):
            r = c.get(r.headers["location"])
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        answer = c.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": CLIENT_ID,
                "redirect_uri": redirect,
                "code_verifier": verifier,
            },
        )
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]
