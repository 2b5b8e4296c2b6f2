"""Live video through the owner's edge agent and Canvass's relay, all real on loopback: a synthetic RTSP camera,
the `canvass-edge` agent running FFmpeg, the relay, registry_api. Media reaches an agency's viewer as a valid
fragmented MP4 with advancing time and a picture; the owner closing the window ends the viewer's stream within
2 seconds and the old grant is refused; an agency the registration is not shared with gets nothing; the camera's
address and password are in no answer, no relay log line and no table; no media byte leaves the agent while no
window is open; and the agent comes back after a relay restart."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Suite, Token
from tests.live.conftest import Camera, MakeSite, close_window, investigator, open_window, relay_env
from tests.registry.conftest import NewAgency, owner
from tests.support import Db, Server, eventually, start_server

PROBLEM = "application/problem+json"


class Watch:
    """A viewer reading a viewing's stream in a thread: what arrived, and when the stream ended."""

    def __init__(self, relay: Server, viewing: dict[str, Any]) -> None:
        self.url = relay.url + viewing["stream"]
        self.grant = viewing["grant"]
        self.data = bytearray()
        self.status: int | None = None
        self.content_type = ""
        self.ended_at: float | None = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with httpx.stream(
                "GET", self.url, headers={"Authorization": f"Bearer {self.grant}"}, timeout=30
            ) as r:
                self.status = r.status_code
                self.content_type = r.headers.get("content-type", "")
                for chunk in r.iter_raw():
                    self.data += chunk
                    if self.stopping:
                        return
        except httpx.HTTPError:
            pass
        finally:
            self.ended_at = time.monotonic()

    def fragments(self) -> int:
        return self.data.count(b"moof")

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(30)


def viewing(relay: Server, headers: dict[str, str], camera_id: str) -> httpx.Response:
    return httpx.post(relay.url + "/v1/viewings", json={"camera_id": camera_id}, headers=headers, timeout=30)


def probe(path: Path) -> tuple[list[float], int]:
    """The video packets' timestamps (ffprobe) and how many grey levels a decoded frame has (ffmpeg)."""
    packets = ["-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"]
    times = subprocess.run(
        ["ffprobe", "-v", "error", *packets, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    sixth = ["-vf", "select=eq(n\\,5)", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    frame = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), *sixth], capture_output=True, check=True
    ).stdout
    return [float(t) for t in times if t and t != "N/A"], len(set(frame))


def test_media_reaches_a_viewer_as_fmp4_whose_time_advances_and_whose_frame_is_not_blank(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, tmp_path: Path
) -> None:
    s = site()
    open_window(registry, s)
    r = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["grant"].startswith("cvr_") and v["stream"] == f"/v1/viewings/{v['id']}/stream"
    assert v["grant"] not in v["stream"]
    asked = time.monotonic()
    watch = Watch(relay, v)
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30), (watch.status, len(watch.data))
    print(
        f"first fragment {time.monotonic() - asked:.2f} s after the stream was asked for (camera idle before)"
    )
    # Three seconds of video: a keyframe a second, so at least three fragments after the initialisation segment.
    assert eventually(lambda: watch.data.count(b"moof") >= 3, timeout=30), (watch.status, len(watch.data))
    # The grant works once: a second viewer with it, while the first watches, is refused.
    again = httpx.get(relay.url + v["stream"], headers={"Authorization": f"Bearer {v['grant']}"}, timeout=30)
    assert again.status_code == 403 and again.headers["content-type"] == PROBLEM
    assert again.json()["type"].endswith("/grant-used")
    watch.stop()
    assert watch.status == 200
    assert watch.content_type.startswith(
        'video/mp4; codecs="avc1.42'
    )  # constrained baseline, from the camera
    assert watch.data[4:8] == b"ftyp"
    video = tmp_path / "watched.mp4"
    video.write_bytes(bytes(watch.data))
    times, grey_levels = probe(video)
    assert len(times) >= 25 and max(times) - min(times) >= 1.5, times[:5]
    assert grey_levels > 20  # testsrc's colour bars and counter, not a blank frame
    # The agent counted what it sent.
    assert s.camera_status()["bytes_sent"] >= len(watch.data) - 4096


def test_closing_the_window_ends_the_stream_within_2s_refuses_the_old_grant_and_audits_the_viewing(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    s = site()
    window_id = open_window(registry, s)
    r = viewing(relay, investigator(auth, s.agency, sub="inv-close"), s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["window_id"] == window_id
    watch = Watch(relay, v)
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30)
    closed_at = time.monotonic()
    close_window(registry, s, window_id)
    assert eventually(lambda: watch.ended_at is not None, timeout=5)
    ended_at = watch.ended_at
    assert ended_at is not None
    assert ended_at - closed_at < 2.0, ended_at - closed_at
    print(f"viewer cut {ended_at - closed_at:.2f} s after the owner closed the window")
    # The old grant, again: refused; a new viewing: refused, no window is open.
    again = httpx.get(relay.url + v["stream"], headers={"Authorization": f"Bearer {v['grant']}"}, timeout=30)
    assert again.status_code == 403 and again.headers["content-type"] == PROBLEM
    fresh = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert fresh.status_code == 403 and fresh.json()["type"].endswith("/no-open-window")
    # The agent stopped the camera (FFmpeg ended: nothing more can be sent).
    assert eventually(lambda: s.camera_status().get("streaming") is False, timeout=10)
    # The viewing is on the audit trail: who, which camera and window, from when to when, how many bytes.
    rows = eventually(
        lambda: (
            db.fetch(
                "SELECT action, actor, actor_role, agency, subject_id, details FROM audit.events"
                " WHERE service = 'live_relay' AND details->>'viewing_id' = $1 ORDER BY seq",
                v["id"],
            )
            if len(
                db.fetch(
                    "SELECT 1 FROM audit.events WHERE service = 'live_relay' AND details->>'viewing_id' = $1",
                    v["id"],
                )
            )
            == 2
            else None
        ),
        timeout=10,
    )
    assert [row["action"] for row in rows] == ["live_viewing.start", "live_viewing.end"]
    end = rows[1]
    assert (end["actor"], end["actor_role"], end["agency"]) == ("inv-close", "investigator", s.agency.slug)
    assert str(end["subject_id"]) == s.camera_id
    details = end["details"] if isinstance(end["details"], dict) else json.loads(end["details"])
    assert details["window_id"] == window_id and details["ended_by"] == "window-ended"
    assert details["bytes"] >= len(watch.data) - 4096 and details["bytes"] > 0
    assert details["started_at"] < details["ended_at"]
    # The owner sees the viewing of their camera: the agency, when, how long, how much; not who watched.
    mine = httpx.get(
        f"{relay.url}/v1/registrations/{s.registration_id}/viewings", headers=owner(s.credential), timeout=30
    )
    assert mine.status_code == 200, mine.text
    [seen] = [x for x in mine.json() if x["viewing_id"] == v["id"]]
    assert (seen["agency"], seen["camera_id"], seen["window_id"]) == (s.agency.slug, s.camera_id, window_id)
    assert seen["bytes"] == details["bytes"] and seen["ended_by"] == "window-ended"
    assert seen["started_at"] < seen["ended_at"] and seen["seconds"] > 0
    assert "inv-close" not in mine.text
    # Nobody else's credential reads them.
    forged = s.credential[:-4] + "abcd"
    for cred in (forged, "cvo_" + "0" * 32 + "_x"):
        r = httpx.get(
            f"{relay.url}/v1/registrations/{s.registration_id}/viewings", headers=owner(cred), timeout=30
        )
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM


def test_an_agency_the_registration_is_not_shared_with_gets_a_403_problem_and_no_video(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, new_agency: NewAgency
) -> None:
    s = site()
    open_window(registry, s)
    stranger = new_agency()
    r = viewing(relay, investigator(auth, stranger), s.camera_id)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/no-open-window")
    # Nor without a token, nor with a role that does not watch.
    assert viewing(relay, {}, s.camera_id).status_code == 401
    assert viewing(relay, auth("advocate", s.agency.slug), s.camera_id).status_code == 403
    # The agent was never asked to start the camera.
    assert s.camera_status() == {"streaming": False, "bytes_sent": 0}


def test_no_media_byte_leaves_the_agent_while_no_window_is_open(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    s = site()
    # Connected, no window: a viewing is refused, and the counter stays at nought.
    r = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert r.status_code == 403
    assert s.camera_status() == {"streaming": False, "bytes_sent": 0}
    # A window opens and nobody watches: still nothing is sent (the relay asks only for a viewer).
    window_id = open_window(registry, s)
    assert s.status()["connected"] and s.camera_status() == {"streaming": False, "bytes_sent": 0}
    # Someone watches: bytes are sent; the window closes: FFmpeg stops, and the count no longer moves.
    watch = Watch(relay, viewing(relay, investigator(auth, s.agency), s.camera_id).json())
    assert eventually(lambda: s.camera_status().get("bytes_sent", 0) > 0, timeout=30)
    close_window(registry, s, window_id)
    assert eventually(lambda: s.camera_status().get("streaming") is False, timeout=10)
    sent = s.camera_status()["bytes_sent"]
    watch.stop()
    # A start the relay might send now is refused by the agent's own check of the windows.
    assert viewing(relay, investigator(auth, s.agency), s.camera_id).status_code == 403
    assert s.camera_status() == {"streaming": False, "bytes_sent": sent}


def test_the_cameras_address_and_password_are_in_no_answer_no_relay_log_and_no_table(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, camera: Camera, db: Any
) -> None:
    s = site()
    answers: list[str] = []
    window_id = open_window(registry, s)
    view = registry.get(f"/v1/live-windows/{window_id}", headers=investigator(auth, s.agency))
    assert view.status_code == 200, view.text
    answers.append(view.text)
    # The window's view gives, for the camera, the relay's operation to ask for a viewing: no address.
    [cam] = view.json()["cameras"]
    assert cam["viewing"]["method"] == "POST" and cam["viewing"]["href"].endswith("/v1/viewings")
    assert cam["viewing"]["body"] == {"camera_id": s.camera_id}
    r = httpx.post(
        relay.url + "/v1/viewings",
        json=cam["viewing"]["body"],
        headers=investigator(auth, s.agency),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    answers.append(r.text)
    watch = Watch(relay, r.json())
    assert eventually(lambda: watch.data.count(b"moof") >= 2, timeout=30)
    close_window(registry, s, window_id)
    assert eventually(lambda: watch.ended_at is not None, timeout=5)
    answers.append(bytes(watch.data).decode("latin-1"))
    answers.append(registry.get(f"/v1/registrations/{s.registration_id}", headers=owner(s.credential)).text)
    answers.append(relay.log_path.read_text())
    secrets = [camera.password, camera.path, camera.url.split("//", 1)[1].split("/", 1)[0] + camera.path]
    for text in answers:
        for secret in secrets:
            assert secret not in text
    # Every row of every table of every schema, as text.
    tables = db.fetch(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    assert len(tables) > 10
    for t in tables:
        rows = db.fetch(f"SELECT x::text AS row FROM {t['t']} x")  # noqa: S608 - names from the catalogue
        for row in rows:
            for secret in secrets:
                assert secret not in row["row"], t["t"]


def test_the_agent_resumes_after_a_relay_restart(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, suite: Suite
) -> None:
    s = site()
    open_window(registry, s)
    before = s.status()["connections"]
    relay.stop()
    assert eventually(lambda: s.status().get("connected") is False, timeout=30)
    restarted = start_server("live_relay", relay_env(suite), port=relay.port)
    relay.process = restarted.process
    assert eventually(
        lambda: s.status().get("connections", 0) > before and s.status()["connected"], timeout=60
    )
    r = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert r.status_code == 201, r.text
    watch = Watch(relay, r.json())
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30)
    watch.stop()
    assert watch.status == 200


def test_the_local_trigger_opens_a_window_for_the_configured_agencies_and_duration(
    registry: httpx.Client, site: MakeSite, new_agency: NewAgency
) -> None:
    agency = new_agency()
    s = site(agency, agencies=[agency.slug], duration_s=120, reason="alert")
    # The command.
    done = s.edge("trigger")
    assert done.returncode == 0, done.stderr
    opened = json.loads(done.stdout)
    assert opened["registration_id"] == s.registration_id and opened["cameras"] == [s.camera_id]
    assert opened["agencies"] == [agency.slug] and opened["reason"] == "alert"
    lasts = datetime.fromisoformat(opened["expires_at"]) - datetime.fromisoformat(opened["opened_at"])
    assert lasts == timedelta(seconds=120)
    # The button: a POST to the agent's local endpoint.
    r = httpx.post(s.status_url.replace("/status", "/trigger"), timeout=30)
    assert r.status_code == 201, r.text
    windows = registry.get(
        f"/v1/registrations/{s.registration_id}/live-windows", headers=owner(s.credential)
    ).json()
    assert {w["id"] for w in windows if w["state"] == "open"} == {opened["id"], r.json()["id"]}


@pytest.mark.parametrize("end", ["unshared", "withdrawn", "deleted", "expired"])
def test_every_way_a_window_ends_for_the_agency_cuts_its_viewer_within_2s(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, new_agency: NewAgency, end: str
) -> None:
    """The owner stops sharing with the agency, withdraws (pauses) or deletes the registration, or the window
    runs out: the viewer's stream ends within 2 seconds, and a new viewing is refused."""
    s = site()
    path = f"/v1/registrations/{s.registration_id}"
    # The viewer's agency: a county around the program's city, which the owner shares with (the program's own
    # agency always sees its registrations, so only another agency can lose the sharing).
    county = new_agency(within=s.agency)
    etag = registry.get(path, headers=owner(s.credential)).headers["etag"]
    shared = registry.patch(
        path,
        json={"share_with": [s.agency.slug, county.slug]},
        headers={**owner(s.credential), "If-Match": etag},
    )
    assert shared.status_code == 200, shared.text
    opened = registry.post(
        f"{path}/live-windows",
        json={"reason": "alert", "duration_s": 8 if end == "expired" else 600, "agencies": [county.slug]},
        headers=owner(s.credential),
    )
    assert opened.status_code == 201, opened.text
    watch = Watch(relay, viewing(relay, investigator(auth, county), s.camera_id).json())
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30), watch.status
    if end == "expired":
        ends_at = datetime.fromisoformat(opened.json()["expires_at"]).timestamp()
    else:
        ends_at = time.time()
        etag = registry.get(path, headers=owner(s.credential)).headers["etag"]
        headers = {**owner(s.credential), "If-Match": etag}
        if end == "deleted":
            r = registry.delete(path, headers=headers)
        else:
            change: dict[str, Any] = (
                {"share_with": [s.agency.slug]} if end == "unshared" else {"status": "paused"}
            )
            r = registry.patch(path, json=change, headers=headers)
        assert r.status_code in (200, 204), r.text
    assert eventually(lambda: watch.ended_at is not None, timeout=30)
    cut_after = time.time() - (time.monotonic() - (watch.ended_at or 0.0)) - ends_at
    assert cut_after < 2.0, cut_after
    assert viewing(relay, investigator(auth, county), s.camera_id).status_code == 403


def test_headless_chromium_plays_the_stream_with_media_source_extensions(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    """The browser contract: an investigator's page (on the portal's origin, which the relay accepts) asks for a
    viewing, fetches the stream with the grant and appends it to a MediaSource: the video's time advances and a
    frame drawn from it is not blank; when the window closes, the page sees the stream end."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import PORTAL_PORT
    from tests.portal.conftest import CHROMIUM, CHROMIUM_ARGS

    s = site()
    window_id = open_window(registry, s)
    origin = f"http://127.0.0.1:{PORTAL_PORT}"
    token = investigator(auth, s.agency)["Authorization"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *LOCAL_PAGE])
        try:
            page = browser.new_page()
            page.route(origin + "/player", lambda route: route.fulfill(body=PLAYER, content_type="text/html"))
            page.goto(origin + "/player")
            page.evaluate(
                "([relay, token, camera]) => play(relay, token, camera)", [relay.url, token, s.camera_id]
            )
            page.wait_for_function("() => window.state.time > 1.5", timeout=30_000)
            assert page.evaluate("() => window.state.type").startswith('video/mp4; codecs="avc1.')
            assert page.evaluate("() => grey_levels()") > 20
            # The top half too: a keyframe whose slices reached the browser as separate pictures left it green.
            assert page.evaluate("() => grey_levels(0, 120)") > 20
            close_window(registry, s, window_id)
            page.wait_for_function("() => window.state.ended", timeout=5_000)
        finally:
            browser.close()


# The player page is given to the browser by the test (not served from an address), so Chromium takes it for a
# public one and would ask the relay on loopback for a private-network preflight first, which no deployment's
# relay (behind the same public origin as the portal) is asked.
LOCAL_PAGE = [
    "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
    "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"
]

PLAYER = """<!doctype html><video muted></video><canvas width="320" height="240"></canvas><script>
window.state = {time: 0, ended: false, type: ""};
async function play(relay, token, camera) {
  const v = await (await fetch(relay + "/v1/viewings", {method: "POST",
    headers: {Authorization: token, "Content-Type": "application/json"},
    body: JSON.stringify({camera_id: camera})})).json();
  const r = await fetch(relay + v.stream, {headers: {Authorization: "Bearer " + v.grant}});
  const video = document.querySelector("video");
  const media = new MediaSource();
  video.src = URL.createObjectURL(media);
  await new Promise((ok) => media.addEventListener("sourceopen", ok, {once: true}));
  window.state.type = r.headers.get("Content-Type");
  const buffer = media.addSourceBuffer(window.state.type);
  video.addEventListener("timeupdate", () => { window.state.time = video.currentTime; });
  (async () => {
    const reader = r.body.getReader();
    for (;;) {
      const {done, value} = await reader.read();
      if (done) { window.state.ended = true; return; }
      buffer.appendBuffer(value);
      await new Promise((ok) => buffer.addEventListener("updateend", ok, {once: true}));
      if (video.paused) video.play();
    }
  })();
}
function grey_levels(top = 0, rows = 240) {
  const c = document.querySelector("canvas").getContext("2d");
  c.drawImage(document.querySelector("video"), 0, 0, 320, 240);
  const px = c.getImageData(0, top, 320, rows).data, seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add(px[i] + "," + px[i + 1] + "," + px[i + 2]);
  return seen.size;
}
</script>"""


def test_revoking_the_agent_cuts_its_viewers_and_the_relay_no_longer_accepts_it(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    s = site()
    open_window(registry, s)
    watch = Watch(relay, viewing(relay, investigator(auth, s.agency), s.camera_id).json())
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30)
    agents = registry.get(
        f"/v1/registrations/{s.registration_id}/edge-agents", headers=owner(s.credential)
    ).json()
    revoked_at = time.monotonic()
    r = registry.delete(
        f"/v1/registrations/{s.registration_id}/edge-agents/{agents[0]['id']}", headers=owner(s.credential)
    )
    assert r.status_code == 204
    # The camera had no address of its own: it left the window with its last agent, and its viewer is cut.
    assert eventually(lambda: watch.ended_at is not None, timeout=30)
    assert (watch.ended_at or 0.0) - revoked_at < 2.0
    # The relay disconnects the agent and refuses it from then on: it stays offline, however often it retries.
    assert eventually(lambda: s.status().get("connected") is False, timeout=30)
    before = s.status()["connections"]
    assert eventually(lambda: "InvalidStatus" in s.agent_log.read_text(), timeout=30)
    assert s.status() | {"at": 0} == s.status() | {"at": 0, "connected": False, "connections": before}


def test_a_grant_is_refused_unknown_forged_or_late_and_a_viewing_needs_the_agent_online(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    s = site()
    open_window(registry, s)
    v = viewing(relay, investigator(auth, s.agency), s.camera_id).json()
    stream = relay.url + v["stream"]
    for bearer in ("", v["grant"][:-2] + "xx", "cvr_" + "0" * 32 + "_secret"):
        r = httpx.get(stream, headers={"Authorization": f"Bearer {bearer}"} if bearer else {}, timeout=30)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, (bearer, r.text)
    # A grant of another viewing does not open this one.
    other = viewing(relay, investigator(auth, s.agency), s.camera_id).json()
    r = httpx.get(stream, headers={"Authorization": f"Bearer {other['grant']}"}, timeout=30)
    assert r.status_code == 401
    # Late: after its expiry (this relay's grants last 5 seconds), a grant is refused as expired.
    expires = datetime.fromisoformat(v["grant_expires_at"])
    assert expires - datetime.now(expires.tzinfo) <= timedelta(seconds=5)
    assert eventually(lambda: datetime.now(expires.tzinfo) > expires, timeout=30, interval=0.2)
    r = httpx.get(stream, headers={"Authorization": f"Bearer {v['grant']}"}, timeout=30)
    assert r.status_code == 403 and r.json()["type"].endswith("/grant-expired")
    # Bad input: a viewing id that is not one, a camera id that is not one.
    assert httpx.get(relay.url + "/v1/viewings/nope/stream", timeout=30).status_code == 422
    r = httpx.post(
        relay.url + "/v1/viewings", json={"camera_id": "x"}, headers=investigator(auth, s.agency), timeout=30
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    # A grant used is refused as used, also after the time it had to be used in.
    used = viewing(relay, investigator(auth, s.agency), s.camera_id).json()
    watch = Watch(relay, used)
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30)
    watch.stop()
    used_expires = datetime.fromisoformat(used["grant_expires_at"])
    assert eventually(lambda: datetime.now(used_expires.tzinfo) > used_expires, timeout=30, interval=0.2)
    r = httpx.get(
        relay.url + used["stream"], headers={"Authorization": f"Bearer {used['grant']}"}, timeout=30
    )
    assert r.status_code == 403 and r.json()["type"].endswith("/grant-used")
    # The owner sees their agent online (and nobody else does).
    presence_url = f"{relay.url}/v1/registrations/{s.registration_id}/edge-agent"
    presence = httpx.get(presence_url, headers=owner(s.credential), timeout=30).json()
    assert presence["online"] is True and presence["cameras"] == [s.camera_id]
    assert httpx.get(presence_url, headers=investigator(auth, s.agency), timeout=30).status_code == 401
    # The owner's site goes offline: the relay says so (409), it does not hang; the owner sees it offline.
    s.agent.terminate()
    s.agent.wait(10)
    offline = eventually(
        lambda: (lambda r: r if r.status_code == 409 else None)(
            viewing(relay, investigator(auth, s.agency), s.camera_id)
        ),
        timeout=30,
    )
    assert offline is not None and offline.json()["type"].endswith("/agent-offline")
    assert httpx.get(presence_url, headers=owner(s.credential), timeout=30).json()["online"] is False


def test_a_user_cannot_pile_up_viewings_without_watching_them(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token
) -> None:
    """Viewings not watched are kept past their grant's expiry (to refuse it as expired): a user holding 16 whose
    grants are still good is refused a 17th (429); another user is not, and the first may ask again once they
    have expired."""
    s = site()
    open_window(registry, s)
    first = [viewing(relay, investigator(auth, s.agency), s.camera_id) for _ in range(16)]
    assert [r.status_code for r in first] == [201] * 16
    refused = viewing(relay, investigator(auth, s.agency), s.camera_id)
    assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM, refused.text
    assert refused.json()["type"].endswith("/too-many-grants") and refused.headers["retry-after"]
    assert viewing(relay, investigator(auth, s.agency, sub="inv-2"), s.camera_id).status_code == 201
    expires = datetime.fromisoformat(first[-1].json()["grant_expires_at"])
    assert eventually(lambda: datetime.now(expires.tzinfo) > expires, timeout=30, interval=0.2)
    assert viewing(relay, investigator(auth, s.agency), s.camera_id).status_code == 201


def test_a_viewer_is_cut_when_registry_api_cannot_confirm_the_window(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, suite: Suite
) -> None:
    """Fail closed: the relay asks an instance of registry_api of its own, which then stops; with no answer to
    its checks, the relay cuts the viewer within CANVASS_RELAY_UNCONFIRMED_CUT_S (1.5 s) and one recheck."""
    s = site()
    open_window(registry, s)
    own_registry = start_server("registry_api", suite.env)
    try:
        before = s.status()["connections"]
        relay.stop()
        restarted = start_server(
            "live_relay", relay_env(suite) | {"REGISTRY_API_URL": own_registry.url}, port=relay.port
        )
        relay.process = restarted.process
        assert eventually(lambda: s.status().get("connections", 0) > before and s.status()["connected"], 60)
        watch = Watch(relay, viewing(relay, investigator(auth, s.agency), s.camera_id).json())
        assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30), watch.status
        down = time.monotonic()
        own_registry.stop()
        assert eventually(lambda: watch.ended_at is not None, timeout=10)
        assert (watch.ended_at or 0.0) - down < 2.5, (watch.ended_at or 0.0) - down
        # And no new viewing while it cannot ask: 503, not a stream.
        r = viewing(relay, investigator(auth, s.agency), s.camera_id)
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
    finally:
        own_registry.stop()


def start_together(db: Any, relay: Server, viewings: list[dict[str, Any]]) -> list[Watch]:
    """Each viewing's stream, started while the test holds the audit chain's head, so every start waits at its audit
    record; once all wait there, let go together."""
    holder = Db(db.url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE audit.chain_head IN EXCLUSIVE MODE")
        watches = [Watch(relay, v) for v in viewings]
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE relation = CAST('audit.chain_head' AS regclass)"
            " AND mode = 'RowShareLock' AND NOT granted"
        )
        assert eventually(lambda: db.fetchval(waiting) == len(viewings), timeout=30), (
            "the starts never reached the audit"
        )
        holder.execute("COMMIT")
    finally:
        holder.close()
    return watches


def test_two_viewers_starting_at_once_share_the_cameras_one_feed(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    """Both viewers' starts are held at their audit record (the test holds the audit chain's head), then let go
    together: both get the video, from one run of FFmpeg at the agent."""
    s = site()
    open_window(registry, s)
    first, second = (viewing(relay, investigator(auth, s.agency), s.camera_id).json() for _ in range(2))
    watches = start_together(db, relay, [first, second])
    for w in watches:
        assert eventually(w.fragments, timeout=30), (w.status, bytes(w.data[:200]))
    assert s.camera_status()["streaming"] is True
    for w in watches:
        w.stop()
