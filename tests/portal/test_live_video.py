"""Live video in the portal, all real: the synthetic RTSP camera, the owner's `canvass-edge` agent and the relay
of tests/live, registry_api, and Debian's Chromium. The investigator plays a camera in the workspace (the video's
time advances, a sampled frame is not blank) with the keyboard, in English and Spanish, and the player says the
window ended within seconds of the owner closing it; the owner's page gives an enrolment code that works, with
the instructions, shows the agent connected, and lists the viewing (agency, camera, start, duration) without the
investigator."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Suite, Token
from tests.live.conftest import (
    MakeSite,
    camera,
    close_window,
    investigator,
    new_agency,
    open_window,
    register,
    site,
)
from tests.portal.agency import sign_in_agency
from tests.portal.conftest import RELAY_PORT, Owner, Visit, sign_in
from tests.portal.oidc import next_staff_agency
from tests.registry.conftest import NewAgency
from tests.support import Server, eventually, start_server

__all__ = ["camera", "new_agency", "register", "site"]  # tests/live's fixtures, used here too

# The video's picture, sampled: drawn on a canvas, the variance of its grey levels (0 for a blank frame).
FRAME_VARIANCE = """(video) => {
  const c = document.createElement("canvas");
  c.width = video.videoWidth; c.height = video.videoHeight;
  const g = c.getContext("2d");
  g.drawImage(video, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    n++; sum += y; sq += y * y;
  }
  const mean = sum / n;
  return sq / n - mean * mean;
}"""


@pytest.fixture(scope="module")
def relay(suite: Suite) -> Iterator[Server]:
    """The relay, on the port the portal names to the page (LIVE_RELAY_URL): one for this module's tests."""
    server = start_server("live_relay", dict(suite.env, CANVASS_WORKERS="1"), port=RELAY_PORT)
    try:
        yield server
    finally:
        server.stop()


def _buffered_end(page: Page, player: str) -> float:
    v = f"document.querySelector('{player} video')"
    return float(page.evaluate(f"{v}.buffered.length ? {v}.buffered.end({v}.buffered.length - 1) : 0"))


def _video_time(page: Page, player: str) -> float:
    return float(page.evaluate(f"document.querySelector('{player} video').currentTime"))


def test_an_investigator_watches_a_camera_with_the_keyboard_and_is_told_when_the_owner_closes_the_window(
    visit: Visit, site: MakeSite, new_agency: NewAgency, registry: httpx.Client
) -> None:
    page = visit.page
    s = site(new_agency(slug=next_staff_agency()))
    window_id = open_window(registry, s, duration_s=900)
    sign_in_agency(visit, "investigator", s.agency.slug)
    page.get_by_role("link", name="Agency workspace").click()
    page.get_by_role("navigation", name="Agency workspace").get_by_role("link", name="Live video").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Live video")
    card = page.locator(f'[data-window="{window_id}"]')
    expect(card.get_by_role("heading", level=2)).to_have_text("Window opened for an alert")
    # The time left in minutes, as people say it, and no live region around it: a screen reader is not read a
    # clock ticking each second. The window's times are to the minute.
    left = card.get_by_text(re.compile(r"^Time left: 1[34] minutes$"))
    expect(left).to_be_visible()
    assert left.evaluate(
        "e => e.closest('[aria-live], [role=status], [role=alert], [role=timer], [role=log]') === null"
    )
    opened = card.get_by_text(re.compile(r"^Opened "))
    expect(opened).to_be_visible()
    expect(opened).not_to_have_text(re.compile(r"\d:\d\d:\d\d"))
    player = f'[data-window="{window_id}"] .ws-live__player'
    status = page.locator(player).get_by_role("status")
    expect(status).to_have_text("Not playing. Press Play to watch.")
    visit.check("live-windows")

    # The keyboard alone: Play has a name, takes the focus, and Enter starts it.
    play = card.get_by_role("button", name="Play door")
    play.focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text("Live.", timeout=30_000)
    start = _video_time(page, player)
    assert eventually(lambda: _video_time(page, player) > start + 1.5, timeout=15)
    assert page.evaluate(FRAME_VARIANCE, page.locator(f"{player} video").element_handle()) > 100
    visit.check("live-playing")

    # Pause and resume by keyboard (the same button, its name saying what it does), back at the live edge.
    pause = card.get_by_role("button", name="Pause door")
    pause.focus()
    # The focus is seen (an outline), as a keyboard user needs it.
    assert pause.evaluate("b => getComputedStyle(b).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(status).to_have_text("Paused. Resume goes back to live.")
    paused_at = _video_time(page, player)
    # While paused the video keeps coming; resumed, the player jumps to the newest (the live edge), not where
    # it was paused.
    assert eventually(lambda: _buffered_end(page, player) > paused_at + 3, timeout=15)
    page.keyboard.press("Enter")  # the focus stays on it, now "Resume door"
    expect(status).to_have_text("Live.")
    assert eventually(lambda: _video_time(page, player) > paused_at + 2, timeout=1)

    # In Spanish: the page drawn again, the player stopped; played again in Spanish.
    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Video en vivo")
    expect(card.get_by_text(re.compile(r"^Tiempo restante: 1[234] minutos$"))).to_be_visible()
    # A time of today with "a las", one of another day with "el" and its date; to the minute either way.
    abierta = card.get_by_text(re.compile(r"^Abierta (a las \d|el \d)"))
    expect(abierta).to_be_visible()
    expect(abierta).not_to_have_text(re.compile(r"\d:\d\d:\d\d"))
    card.get_by_role("button", name="Reproducir door").click()
    expect(status).to_have_text("En vivo.", timeout=30_000)
    visit.check("live-playing-es")

    # The owner closes the window: the player says so within seconds, and offers no Play with the old grant.
    closed = time.monotonic()
    close_window(registry, s, window_id)
    expect(status).to_contain_text("La ventana terminó", timeout=5_000)
    assert time.monotonic() - closed < 5
    expect(card.get_by_text("Esta ventana terminó.")).to_be_visible()
    expect(card.get_by_role("button", name="Reproducir door")).to_have_count(0)
    visit.check("live-ended-es")


def test_the_owner_enrols_an_agent_sees_it_connected_and_each_viewing_without_the_investigator(
    visit: Visit, site: MakeSite, registry: httpx.Client, relay: Server, auth: Token
) -> None:
    page = visit.page
    s = site()
    open_window(registry, s)
    # An investigator watches for a few seconds (through the relay's contract, as the workspace does).
    sub = "det-hidden-name-5150"
    v = httpx.post(
        relay.url + "/v1/viewings",
        json={"camera_id": s.camera_id},
        headers=investigator(auth, s.agency, sub=sub),
        timeout=30,
    ).json()
    received: list[int] = []

    def watch() -> None:
        with httpx.stream(
            "GET", relay.url + v["stream"], headers={"Authorization": f"Bearer {v['grant']}"}, timeout=30
        ) as r:
            for chunk in r.iter_raw():
                received.append(len(chunk))
                if sum(received) > 20_000:
                    return

    reader = threading.Thread(target=watch)
    reader.start()
    reader.join(60)
    assert sum(received) > 20_000

    sign_in(visit, Owner(s.registration_id, s.credential, ""))
    page.get_by_role("link", name="Live sharing").click()
    expect(page.get_by_role("heading", level=2, name="Your edge agent")).to_be_visible()
    agents = page.locator(".portal-agents > li")
    expect(agents).to_have_count(1)
    expect(agents.first.get_by_role("heading", level=3)).to_have_text("Edge agent 1 Connected")
    page.get_by_text("What the agent is, what it sends and what it never sends").click()
    expect(
        page.get_by_text("Your cameras' addresses, user names or passwords: they stay on that computer.")
    ).to_be_visible()

    # Who watched: the agency, the camera, when, how long; never who.
    table = page.get_by_role("table", name="Who watched")
    row = table.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.get_by_role("rowheader")).to_have_text(s.agency.name)
    expect(row.locator("td").nth(0)).to_have_text("door")
    expect(row.locator("td").nth(2)).to_contain_text(" s")
    assert sub not in page.content()
    visit.check("live-owner")

    # A code for another agent, with the instructions; the code is the real one (it enrols once).
    page.get_by_role("button", name="Get a code for another agent").click()
    expect(page.get_by_role("heading", level=3, name="Your enrolment code")).to_be_focused()
    code = page.locator(".portal-enrol__code").inner_text()
    assert code.startswith("cve_")
    expect(page.get_by_text(f"canvass-edge enrol --code {code} --config canvass-edge.toml")).to_be_visible()
    # The file holds the cameras' passwords: the agent refuses it readable by every user, so the steps protect it.
    expect(page.get_by_text("chmod 600 canvass-edge.toml", exact=True)).to_be_visible()
    # The agent is installed from this portal: the package it serves (tests/portal/test_server.py opens it).
    install = page.locator(".portal-command").nth(0).inner_text()
    package = httpx.get(f"{visit.base}/config.json").json()["edge_package"]
    assert install.endswith(f"pipx install {visit.base}{package}"), install
    assert httpx.get(visit.base + package).status_code == 200
    config = page.locator(".portal-command").nth(1).inner_text()
    assert (
        f'id = "{s.camera_id}"' in config and f"ws://127.0.0.1:{RELAY_PORT}/v1/edge-agents/connect" in config
    )
    visit.check("live-owner-code")
    enrolled = registry.post("/v1/edge-agents/enrol", json={"code": code})
    assert enrolled.status_code == 201, enrolled.text

    # The new agent is listed, not connected (it never ran), and revoked with a confirmation. With an agent
    # enrolled, the windows come first and the agent after them.
    page.reload()
    expect(agents).to_have_count(2)
    order = page.locator("main h2").all_inner_texts()
    assert order.index("Open a window") < order.index("Your edge agent") < order.index("Who watched"), order
    second = agents.nth(1)
    expect(second.get_by_role("heading", level=3)).to_have_text("Edge agent 2 Not connected")
    second.get_by_role("button", name="Revoke this agent").click()
    expect(second.get_by_role("button", name="Yes, revoke it")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("The agent is revoked.")).to_be_visible()
    expect(agents).to_have_count(1)  # the revoked one is only counted
    expect(page.get_by_text("Revoked agents, no longer working: 1.")).to_be_visible()
    assert (
        registry.get(
            "/v1/edge-agents/me", headers={"Authorization": f"Bearer {enrolled.json()['credential']}"}
        ).status_code
        == 401
    )

    page.get_by_role("button", name="Español").click()
    expect(page.get_by_role("heading", level=2, name="Su agente local")).to_be_visible()
    expect(agents.first.get_by_role("heading", level=3)).to_have_text("Agente local 1 Conectado")
    expect(page.get_by_role("table", name="Quién vio").locator("tbody tr")).to_have_count(1)
    visit.check("live-owner-es")
