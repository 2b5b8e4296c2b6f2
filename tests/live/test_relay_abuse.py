"""The relay against what it should refuse or end: an edge agent's hello that is not what the protocol says, and a
viewing whose own window closes while another window open to the same agency includes the camera (the viewing
belongs to the window it was granted in: it ends with it, and its audit record names that window)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets

from tests.conftest import Token
from tests.live.conftest import MakeSite, Site, close_window, investigator, open_window
from tests.live.test_relay import Watch, viewing
from tests.support import Server, eventually


def _agent_credential(s: Site) -> str:
    saved = json.loads((s.config_path.parent / f"credential-{s.registration_id}.json").read_text())
    return str(saved["credential"])


async def _hello(relay: Server, credential: str, hello: str) -> int | None:
    """The close code the relay answers a hello with (None: it closed without one)."""
    url = f"ws://127.0.0.1:{relay.port}/v1/edge-agents/connect"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        await ws.send(hello)
        try:
            await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    raise AssertionError("the relay kept a connection whose hello it cannot read")


def test_an_agent_hello_naming_cameras_by_numbers_is_refused_with_1008_not_an_application_error(
    site: MakeSite, relay: Server
) -> None:
    s = site()
    credential = _agent_credential(s)
    for hello in ('{"type": "hello", "cameras": [1]}', '{"type": "hello", "cameras": [{"id": 1}]}'):
        assert asyncio.run(_hello(relay, credential, hello)) == 1008, hello
    assert "Exception in ASGI application" not in relay.log_path.read_text()


def test_a_viewer_is_cut_within_2s_when_its_window_closes_though_another_window_includes_the_camera(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    s = site()
    first = open_window(registry, s, duration_s=300)
    headers = investigator(auth, s.agency, sub="inv-two-windows")
    r = viewing(relay, headers, s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    assert v["window_id"] == first
    watch = Watch(relay, v)
    assert eventually(lambda: watch.fragments() >= 1, timeout=30)
    second = open_window(registry, s, duration_s=900)  # ends later: the one registry_api names first
    closed_at = time.monotonic()
    close_window(registry, s, first)
    assert eventually(lambda: watch.ended_at is not None, timeout=5), "the viewer outlived its window"
    assert watch.ended_at is not None and watch.ended_at - closed_at < 2.0
    end = eventually(
        lambda: db.fetchval(
            "SELECT details FROM audit.events WHERE service = 'live_relay' AND action = 'live_viewing.end'"
            " AND details->>'viewing_id' = $1",
            v["id"],
        ),
        timeout=10,
    )
    details = end if isinstance(end, dict) else json.loads(end)
    assert (details["window_id"], details["ended_by"]) == (first, "window-ended")
    # The agency still sees the camera through the other window: a new viewing belongs to that one.
    again = viewing(relay, headers, s.camera_id)
    assert again.status_code == 201, again.text
    assert again.json()["window_id"] == second
