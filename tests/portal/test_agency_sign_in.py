"""Agency staff sign in to the portal with their agency's own identity provider (a real OpenID provider on
loopback, through its login page): tokens in memory only, accepted by the services, renewed silently before
they expire, ended at the provider on sign-out, and speaking only for their own agency."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Request, Response, Route

from services.portal.main import content_security_policy, create_app, portal_config
from tests.conftest import Suite
from tests.portal.conftest import Visit
from tests.portal.oidc import NAMES, OIDC_ACCESS_TTL_S, PASSWORD, oidc_sign_in, provider_token


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


class Traffic:
    """What the page sends to the services (the bearer tokens) and receives from the provider's token endpoint."""

    def __init__(self, visit: Visit, suite: Suite, issuer: str) -> None:
        self.bearers: list[str] = []
        self.grants: list[tuple[str, dict[str, Any], float]] = []  # (grant_type, answer, when)
        self.token_url = f"{issuer}/token"
        apis = (suite.registry.url, suite.geo.url, suite.requests.url)

        def on_request(request: Request) -> None:
            value = request.headers.get("authorization", "")
            if request.url.startswith(apis) and value.startswith("Bearer "):
                self.bearers.append(value.removeprefix("Bearer "))

        def on_response(response: Response) -> None:
            if response.url == self.token_url and response.request.method == "POST" and response.ok:
                form = dict(
                    p.split("=", 1) for p in (response.request.post_data or "").split("&") if "=" in p
                )
                self.grants.append((form.get("grant_type", ""), response.json(), time.time()))

        visit.page.on("request", on_request)
        visit.page.on("response", on_response)


def stored_values(visit: Visit) -> str:
    """Everything the page keeps in localStorage and sessionStorage, as one text."""
    return str(
        visit.page.evaluate(
            "() => JSON.stringify([localStorage, sessionStorage].map(s =>"
            " Object.keys(s).map(k => [k, s.getItem(k)])))"
        )
    )


def test_an_investigator_signs_in_through_the_agencys_provider_and_the_services_accept_the_token(
    visit: Visit, suite: Suite, oidc_provider: str
) -> None:
    traffic = Traffic(visit, suite, oidc_provider)
    page = visit.page
    visit.open("/agency/sign-in")
    page.get_by_role("heading", level=1, name="Agency staff sign-in").wait_for()
    assert page.get_by_label("Your agency").locator("option", has_text=NAMES["demo"]).count() == 1
    visit.check("agency-sign-in")

    oidc_sign_in(page, visit.base, "demo.investigator")
    page.get_by_role("heading", level=1, name="You are signed in").wait_for()
    assert page.locator(".portal-agency-status").inner_text().startswith("Investigator, demo")
    assert "Signed in as Investigator of demo." in page.locator("main").inner_text()
    # The program as the services show it to the agency's own staff only (its policy): the token was accepted.
    program = page.get_by_test_id("agency-program")
    program.get_by_text("Largest request area (m²)").wait_for()
    assert NAMES["demo"] in program.inner_text()

    grant, answer, _ = traffic.grants[0]
    assert grant == "authorization_code"
    assert traffic.bearers and set(traffic.bearers) == {answer["access_token"]}
    token = claims(answer["access_token"])
    assert (token["sub"], token["role"], token["agency"], token["aud"]) == (
        "demo.investigator",
        "investigator",
        "demo",
        suite.env.get("CANVASS_JWT_AUDIENCE", "canvass"),
    )
    assert token["iss"] == oidc_provider
    # Held in memory only: none of the tokens is in the page's storage.
    kept = stored_values(visit)
    for name in ("access_token", "refresh_token", "id_token"):
        assert answer[name] and answer[name] not in kept, name
    visit.check("agency-signed-in")


def test_the_access_token_is_renewed_silently_before_it_expires(
    visit: Visit, suite: Suite, oidc_provider: str
) -> None:
    traffic = Traffic(visit, suite, oidc_provider)
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.supervisor")
    first = traffic.grants[0][1]["access_token"]
    first_exp = claims(first)["exp"]
    assert first_exp - time.time() <= OIDC_ACCESS_TTL_S

    # The renewal is due a minute before expiry: wait for it (a condition with a deadline, not a sleep), unless
    # the page already renewed while the test was looking elsewhere.
    renewals = [g for g in traffic.grants if g[0] == "refresh_token"]
    if not renewals:
        with page.expect_response(
            lambda r: (
                r.url == traffic.token_url and "grant_type=refresh_token" in (r.request.post_data or "")
            ),
            timeout=OIDC_ACCESS_TTL_S * 1000,
        ) as renewal:
            pass
        renewals = [("refresh_token", renewal.value.json(), time.time())]
    _, answer, renewed_at = renewals[0]
    renewed = answer["access_token"]
    assert renewed_at < first_exp, "the token was renewed only after it expired"
    assert renewed != first and claims(renewed)["exp"] > first_exp
    assert renewed not in stored_values(visit)

    # The next call the page makes carries the new token, and the services accept it.
    page.get_by_role("link", name="Agency staff sign-in").click()
    page.get_by_test_id("agency-program").get_by_text("Largest request area (m²)").wait_for()
    renewed_tokens = {renewed} | {g[1]["access_token"] for g in traffic.grants if g[0] == "refresh_token"}
    assert traffic.bearers[-1] in renewed_tokens and traffic.bearers[-1] != first
    visit.check("agency-renewed")


def test_signing_out_ends_the_session_at_the_provider_and_the_next_sign_in_asks_again(
    visit: Visit, suite: Suite, oidc_provider: str
) -> None:
    traffic = Traffic(visit, suite, oidc_provider)
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.admin")
    refresh_token = traffic.grants[0][1]["refresh_token"]

    page.locator("main").get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign out of your agency?").wait_for()  # the provider's own page
    page.get_by_role("button", name="Yes, sign out").click()
    page.wait_for_url(f"{visit.base}/agency/signed-out")
    page.get_by_role("heading", level=1, name="You are signed out").wait_for()
    assert page.locator(".portal-agency-status").count() == 0
    visit.check("agency-signed-out")

    # The tokens were revoked: the refresh token is refused by the provider.
    r = httpx.post(
        traffic.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "canvass-portal"},
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # The provider's session is over: signing in again asks for the password again.
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Your agency").select_option("demo")
    page.get_by_role("button", name="Continue to your agency's sign-in").click()
    page.get_by_label("Password").wait_for()
    assert "/interaction/" in page.url


def test_an_account_of_another_agency_sees_only_its_own_agency(
    visit: Visit, suite: Suite, oidc_provider: str, registry: httpx.Client, auth: Any
) -> None:
    traffic = Traffic(visit, suite, oidc_provider)
    page = visit.page
    oidc_sign_in(page, visit.base, "northfield.investigator")
    program = page.get_by_test_id("agency-program")
    program.get_by_text("Largest request area (m²)").wait_for()
    assert NAMES["northfield"] in program.inner_text() and NAMES["demo"] not in program.inner_text()
    assert page.locator(".portal-agency-status").inner_text().startswith("Investigator, northfield")

    # The program page is the administrators': an investigator is told so, with no data. The page is loaded anew
    # (the tokens were in memory only): the tab signs in again by itself, through the provider's open session,
    # and nothing but the agency's slug was kept in the tab.
    grants = len(traffic.grants)
    visit.open("/agency/program")
    page.get_by_text("Only your agency's administrators manage the program.").wait_for()
    assert page.url == f"{visit.base}/agency/program"
    assert len(traffic.grants) == grants + 1 and traffic.grants[-1][0] == "authorization_code"
    assert "eyJ" not in stored_values(visit)
    visit.check("agency-other-agency")

    token = {"Authorization": f"Bearer {traffic.bearers[-1]}"}
    assert claims(traffic.bearers[-1])["agency"] == "northfield"
    assert registry.get("/v1/agencies/demo/reconfirmations-due", headers=token).status_code == 403
    demo = registry.get("/v1/agencies/demo", headers=token).json()["properties"]
    assert demo.get("policy") is None and demo.get("version") is None
    own = registry.get("/v1/agencies/demo", headers=auth("investigator", "demo")).json()["properties"]
    assert own["policy"] is not None  # what demo's own staff see, and northfield's do not


def test_a_reload_after_the_providers_session_ended_asks_to_sign_in_and_returns_to_the_page(
    visit: Visit, suite: Suite, oidc_provider: str
) -> None:
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.investigator")
    # The provider's session ends (its cookies gone, as when it expires): a reload cannot sign in silently.
    page.context.clear_cookies()
    visit.open("/agency/requests")
    page.get_by_text("Your agency's sign-in has ended. Sign in again to go on where you were.").wait_for()
    assert page.url == f"{visit.base}/agency/sign-in?next=%2Fagency%2Frequests"
    assert page.locator(".portal-agency-status").count() == 0
    visit.check("agency-sign-in-needed")
    # Signing in again (the password asked) goes on where the person was; a further reload is silent again.
    page.locator("#agency-choice").select_option("demo")
    page.locator("main form button[type=submit]").click()
    page.get_by_label("Password").wait_for()
    page.get_by_label("Username").fill("demo.investigator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{visit.base}/agency/requests")
    page.locator(".portal-agency-status").wait_for()
    visit.open("/agency/requests")
    page.locator(".portal-agency-status").wait_for()
    assert page.url == f"{visit.base}/agency/requests"


def test_back_after_a_silent_sign_in_leads_to_the_page_before(visit: Visit, oidc_provider: str) -> None:
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.supervisor")
    visit.open("/transparency")
    visit.open("/agency/requests")  # loaded anew: signed in again silently, through the provider and back
    page.locator(".portal-agency-status").wait_for()
    page.go_back()
    page.wait_for_url(f"{visit.base}/transparency")
    page.get_by_role("heading", level=1).wait_for()
    visit.check("agency-back-after-silent-sign-in")


def test_the_signed_out_page_does_not_say_so_to_someone_still_signed_in(
    visit: Visit, oidc_provider: str
) -> None:
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.investigator", next_path="/agency/signed-out")
    main = page.locator("main")
    main.get_by_text("You are still signed in as Investigator of demo.").wait_for()
    assert main.get_by_text("You are signed out").count() == 0
    visit.check("agency-signed-out-link-while-signed-in")


def test_after_signing_out_a_reload_stays_signed_out(visit: Visit, oidc_provider: str) -> None:
    page = visit.page
    oidc_sign_in(page, visit.base, "demo.auditor")
    page.locator("main").get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign out").click()
    page.wait_for_url(f"{visit.base}/agency/signed-out")
    visit.open("/agency/audit")
    assert page.url == f"{visit.base}/agency/audit"
    page.get_by_role("heading", level=1).wait_for()
    assert page.locator(".portal-agency-status").count() == 0
    visit.check("agency-reload-signed-out")


def test_the_development_sign_in_is_offered_only_where_the_configuration_allows_it(
    visit: Visit, portal: str
) -> None:
    page = visit.page
    visit.open("/agency/sign-in")
    page.get_by_role("link", name="Development sign-in (development only)").wait_for()
    config = httpx.get(f"{portal}/config.json").json()
    assert config["dev_sign_in"] is True  # the suite runs as "test"

    def production(route: Route) -> None:
        route.fulfill(json=dict(config, dev_sign_in=False))

    page.route(f"{portal}/config.json", production)
    visit.open("/agency/sign-in")
    page.get_by_role("button", name="Continue to your agency's sign-in").wait_for()
    assert page.get_by_role("link", name="Development sign-in (development only)").count() == 0
    visit.open("/staff")
    page.get_by_role("heading", level=1, name="Page not found").wait_for()
    visit.check("agency-no-dev-sign-in")
    assert portal_config({"CANVASS_ENV": "production"})["dev_sign_in"] is False


def test_each_agencys_provider_comes_from_the_environment_and_a_malformed_setting_stops_the_portal(
    tmp_path: Any,
) -> None:
    setting = json.dumps(
        {"metro-pd": {"issuer": "https://login.metro.example/realms/pd/", "client_id": "portal"}}
    )
    config = portal_config({"CANVASS_AGENCY_OIDC": setting})
    assert config["agency_sign_in"] == {
        "metro-pd": {
            "issuer": "https://login.metro.example/realms/pd",
            "client_id": "portal",
            "scope": "openid",
        }
    }
    # The page fetches the provider's discovery, token and revocation endpoints itself.
    connect = next(d for d in content_security_policy(config).split("; ") if d.startswith("connect-src"))
    assert "https://login.metro.example" in connect.split()
    assert portal_config({})["agency_sign_in"] == {}
    for bad in (
        "{not json",
        json.dumps({"metro-pd": {"issuer": "not a url", "client_id": "portal"}}),
        json.dumps({"Metro PD": {"issuer": "https://login.metro.example", "client_id": "portal"}}),
        json.dumps({"metro-pd": {"issuer": "https://login.metro.example"}}),
    ):
        with pytest.raises(ValueError):
            portal_config({"CANVASS_AGENCY_OIDC": bad})
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    served = TestClient(create_app(tmp_path, env={"CANVASS_AGENCY_OIDC": setting})).get("/config.json")
    assert served.json()["agency_sign_in"]["metro-pd"]["client_id"] == "portal"


def test_make_run_starts_the_development_provider_only_in_development() -> None:
    from scripts.run_suite import start_dev_provider
    from tests.support import free_port

    assert start_dev_provider({"CANVASS_ENV": "production"}) == []
    assert (
        start_dev_provider({"CANVASS_ENV": "development", "CANVASS_JWKS_URL": "https://idp.example/jwks"})
        == []
    )
    port = free_port()
    env = {"CANVASS_ENV": "development", "OIDC_DEV_PORT": str(port), "PORTAL_PORT": "8000"}
    [proc] = start_dev_provider(env)
    try:
        issuer = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{issuer}/.well-known/openid-configuration").json()["issuer"] == issuer
        assert env["CANVASS_JWKS_URL"] == f"{issuer}/jwks"
        assert json.loads(env["CANVASS_JWT_ISSUERS"]) == {issuer: ["demo", "eastport", "northfield"]}
        assert json.loads(env["CANVASS_AGENCY_OIDC"])["demo"] == {
            "issuer": issuer,
            "client_id": "canvass-portal",
        }
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_services_accept_the_providers_tokens_beside_the_development_tokens(
    oidc_provider: str, portal: str, registry: httpx.Client, auth: Any
) -> None:
    admin = {"Authorization": "Bearer " + provider_token(oidc_provider, portal, "demo.admin")["access_token"]}
    other = {
        "Authorization": "Bearer " + provider_token(oidc_provider, portal, "northfield.admin")["access_token"]
    }
    development = auth("agency_admin", "demo")
    for headers in (admin, development):
        r = registry.get("/v1/agencies/demo", headers=headers)
        assert r.status_code == 200 and r.json()["properties"]["policy"] is not None
        assert registry.get("/v1/agencies/demo/reconfirmations-due", headers=headers).status_code == 200
    # The provider speaks for its agencies only as each account's claims say: northfield's admin is no admin of demo.
    assert registry.get("/v1/agencies/demo/reconfirmations-due", headers=other).status_code == 403
    version = registry.get("/v1/agencies/demo", headers=admin).json()["properties"]["version"]
    r = registry.patch(
        "/v1/agencies/demo", json={"name": "Elsewhere"}, headers={**other, "If-Match": f'"{version}"'}
    )
    assert r.status_code == 403
    # A token the provider did not sign is refused, whatever its claims.
    forged = admin["Authorization"].rsplit(".", 1)[0] + ".AAAA"
    assert (
        registry.get("/v1/agencies/demo/reconfirmations-due", headers={"Authorization": forged}).status_code
        == 401
    )
