"""The edge agent's local endpoint (`GET /status`, `POST /trigger`: the owner's button) answers programs of the
owner's machine and never a web page: listening on 127.0.0.1 keeps other machines out, but any page the owner's
browser opens can send a POST to a loopback address, and a trigger opens a live window that shares the owner's
cameras with agencies. A request naming a page's origin, sent by a browser for another site, or addressed to
another host name (DNS rebinding) is refused with 403 and opens nothing; curl and the agent's own commands still
work. Real agent, real registry_api, and a real headless Chromium for the page."""

from __future__ import annotations

import httpx
from playwright.sync_api import sync_playwright

from tests.live.conftest import MakeSite
from tests.live.test_relay import LOCAL_PAGE
from tests.registry.conftest import owner


def _open_windows(registry: httpx.Client, registration_id: str, credential: str) -> list[str]:
    r = registry.get(f"/v1/registrations/{registration_id}/live-windows", headers=owner(credential))
    assert r.status_code == 200, r.text
    return [w["id"] for w in r.json() if w["state"] == "open"]


def test_a_web_page_cannot_trigger_the_agent_nor_read_its_status_but_a_local_program_can(
    registry: httpx.Client, site: MakeSite
) -> None:
    from tests.portal.conftest import CHROMIUM, CHROMIUM_ARGS

    s = site()
    trigger = s.status_url.replace("/status", "/trigger")
    port = s.status_url.split(":")[-1].split("/")[0]

    # A page of another site, in the owner's browser, posts to the button without reading the answer (a "simple"
    # request: no preflight) — the attack itself.
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *LOCAL_PAGE])
        try:
            page = browser.new_page()
            page.route(
                "http://evil.example/",
                lambda route: route.fulfill(body="<!doctype html><title>x</title>", content_type="text/html"),
            )
            page.goto("http://evil.example/")
            sent = page.evaluate(
                "async (url) => { try { await fetch(url, {method: 'POST', mode: 'no-cors'}); return 'sent'; }"
                " catch (e) { return String(e); } }",
                trigger,
            )
            assert sent == "sent", sent  # the request left the browser: only the agent can refuse it
        finally:
            browser.close()
    assert _open_windows(registry, s.registration_id, s.credential) == []

    # The same refusals, header by header, and the answer they get.
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": f"rebound.evil.example:{port}"},
    ):
        r = httpx.post(trigger, headers=headers, timeout=30)
        assert r.status_code == 403, (headers, r.text)
        assert "web pages" in r.json()["error"]
    rebound = httpx.get(s.status_url, headers={"Host": f"rebound.evil.example:{port}"}, timeout=30)
    assert rebound.status_code == 403 and "cameras" not in rebound.json()
    assert _open_windows(registry, s.registration_id, s.credential) == []

    # A program of the machine (curl, a button's script) still triggers, and reads the status by either name.
    r = httpx.post(trigger, timeout=30)
    assert r.status_code == 201, r.text
    assert _open_windows(registry, s.registration_id, s.credential) == [r.json()["id"]]
    local = httpx.get(s.status_url.replace("127.0.0.1", "localhost"), timeout=30)
    assert local.status_code == 200 and s.camera_id in local.json()["cameras"]
