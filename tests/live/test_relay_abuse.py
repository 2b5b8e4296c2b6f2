"""The relay and the agent against what they should refuse or end: an edge agent's hello that is not what the
protocol says, a relay's command the agent cannot read, and a viewing whose own window closes while another window open to the same agency includes the camera (the viewing
belongs to the window it was granted in: it ends with it, and its audit record names that window)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.sync.client import connect

from tests.conftest import Token
from tests.live.conftest import MakeSite, Site, close_window, edge_env, investigator, open_window
from tests.live.test_relay import Watch, viewing
from tests.support import Server, eventually, free_port


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


def test_an_agent_hello_naming_more_cameras_than_a_registration_holds_or_not_a_list_is_refused_with_1008(
    site: MakeSite, relay: Server
) -> None:
    """An agent's credential cannot make the relay hold an unbounded set of ids: 51 cameras (a registration holds 50),
    a text past 8 KB (refused before it is parsed), or cameras given as a string or an object are each refused."""
    s = site()
    credential = _agent_credential(s)
    ids = [str(uuid.uuid4()) for _ in range(51)]
    for hello in (
        json.dumps({"type": "hello", "cameras": ids}),
        json.dumps({"type": "hello", "cameras": [s.camera_id] * 2, "pad": "x" * 9_000}),
        json.dumps({"type": "hello", "cameras": str(s.camera_id)}),
        json.dumps({"type": "hello", "cameras": {str(s.camera_id): True}}),
    ):
        assert asyncio.run(_hello(relay, credential, hello)) == 1008, hello[:80]
    # A hello of 50 cameras is taken: the relay holds the link (its log says it connected) while the socket is open.
    assert _taken(
        relay, s, credential, json.dumps({"type": "hello", "cameras": [str(s.camera_id), *ids[:49]]})
    )
    assert "Exception in ASGI application" not in relay.log_path.read_text()


def _taken(relay: Server, s: Site, credential: str, hello: str) -> bool:
    line = f"of registration {s.registration_id} connected"
    before = relay.log_path.read_text().count(line)
    url = f"ws://127.0.0.1:{relay.port}/v1/edge-agents/connect"
    with connect(url, additional_headers={"Authorization": f"Bearer {credential}"}) as ws:
        ws.send(hello)
        attached = eventually(lambda: relay.log_path.read_text().count(line) > before)
        return bool(attached) and ws.protocol.close_code is None


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


def test_a_relay_command_naming_a_camera_by_a_number_is_ignored_and_the_agent_keeps_its_connection(
    registry: httpx.Client, site: MakeSite, tmp_path: Path
) -> None:
    """The agent reads the relay's commands in order: after the malformed `start`, a proper one for a camera in an
    open window is answered with `started` on the same connection (had the malformed one ended the agent, that
    connection would be closed)."""
    s = site()
    open_window(registry, s)

    async def relay_side() -> dict[str, Any]:
        connected: asyncio.Queue[Any] = asyncio.Queue()

        async def handler(ws: Any) -> None:
            await connected.put(ws)
            await ws.wait_closed()

        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            config = tmp_path / "edge-fake-relay.toml"
            config.write_text(
                re.sub(
                    r'relay_url = ".*"|status_port = \d+',
                    lambda m: (
                        f'relay_url = "ws://127.0.0.1:{port}/v1/edge-agents/connect"'
                        if m.group(0).startswith("relay_url")
                        else f"status_port = {free_port()}"
                    ),
                    s.config_path.read_text(),
                )
            )
            config.chmod(0o600)  # the camera's password is in it
            agent = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "canvass_edge", "run", "--config", str(config)),
                env=edge_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                ws = await asyncio.wait_for(connected.get(), 30)
                assert json.loads(await ws.recv())["type"] == "hello"
                await ws.send(json.dumps({"type": "start", "camera_id": 1}))
                await ws.send(json.dumps({"type": "start", "camera_id": s.camera_id}))
                said: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
                return said
            finally:
                agent.terminate()
                await asyncio.wait_for(agent.wait(), 10)

    assert asyncio.run(relay_side()) == {"type": "started", "camera_id": s.camera_id}
