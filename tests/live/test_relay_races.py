"""The relay's limits hold for requests that arrive at the same moment: a user's viewings not watched yet are
counted where the grant is made (not before registry_api's answer is awaited), and a token that expires while its
viewer's start waits gets no video (a 403 `token-expired`), while the camera's feed goes on for another viewer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import mint_token
from tests.conftest import Suite, Token
from tests.live.conftest import MakeSite, investigator, open_window, relay_env
from tests.live.test_relay import PROBLEM, Watch, viewing
from tests.live.test_relay_token import token
from tests.registry.conftest import owner
from tests.support import Db, Server, eventually, start_server

MAX_UNUSED = 2


@pytest.fixture
def relay(suite: Suite) -> Iterator[Server]:
    """This module's relay (the `site` fixture's too): a user may hold 2 viewings not watched yet."""
    env = dict(relay_env(suite), CANVASS_RELAY_MAX_UNUSED_GRANTS=str(MAX_UNUSED))
    server = start_server("live_relay", env)
    try:
        yield server
    finally:
        server.stop()


# registry_api's window checks for the relay, waiting for the lock the test holds (nothing else reads the windows
# meanwhile: no camera streams, so the agent does not ask about its windows, nor the relay about its viewers').
CHECKS_WAITING = (
    "SELECT count(*) FROM pg_locks WHERE relation = CAST('registry.live_windows' AS regclass) AND NOT granted"
)


def test_a_user_asking_for_more_viewings_at_once_than_the_limit_gets_the_limit_and_429s(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    """Three asks of one user (limit 2) are held at registry_api's window check (the test locks the windows),
    then let go together: two grants, one 429 `too-many-grants`."""
    s = site()
    open_window(registry, s)
    headers = investigator(auth, s.agency, sub="inv-many")
    answers: list[httpx.Response] = []
    holder = Db(db.url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE registry.live_windows IN ACCESS EXCLUSIVE MODE")
        asks = [
            threading.Thread(target=lambda: answers.append(viewing(relay, headers, s.camera_id)))
            for _ in range(MAX_UNUSED + 1)
        ]
        for ask in asks:
            ask.start()
        assert eventually(lambda: db.fetchval(CHECKS_WAITING) == MAX_UNUSED + 1, timeout=30), (
            "the asks never reached registry_api's window check"
        )
        holder.execute("COMMIT")
    finally:
        holder.close()
    for ask in asks:
        ask.join(30)
    assert sorted(r.status_code for r in answers) == [201] * MAX_UNUSED + [429], [r.text for r in answers]
    [refused] = [r for r in answers if r.status_code == 429]
    assert refused.headers["content-type"] == PROBLEM and refused.json()["type"].endswith("/too-many-grants")


def test_a_token_expiring_while_its_viewers_start_waits_gets_403_and_the_other_viewer_keeps_the_feed(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    """One viewer watches with a long token; a second, whose token expires in 3 s, has its grant redeemed and its
    start held at its audit record (the test holds the audit chain's head) until that token has expired: it gets
    a 403 `token-expired` and no video, and the first viewer's stream goes on."""
    s = site()
    open_window(registry, s)
    long_lived = viewing(relay, investigator(auth, s.agency, sub="inv-long"), s.camera_id)
    assert long_lived.status_code == 201, long_lived.text
    first = Watch(relay, long_lived.json())
    assert eventually(lambda: first.fragments() >= 1, timeout=30), (first.status, len(first.data))
    headers, exp = token(s.agency.slug, "inv-short", ttl_s=3)
    short = viewing(relay, headers, s.camera_id)
    assert short.status_code == 201, short.text
    holder = Db(db.url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE audit.chain_head IN EXCLUSIVE MODE")
        second = Watch(relay, short.json())
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE relation = CAST('audit.chain_head' AS regclass)"
            " AND mode = 'RowShareLock' AND NOT granted"
        )
        assert eventually(lambda: db.fetchval(waiting) == 1, timeout=30), "the start never reached the audit"
        assert eventually(lambda: time.time() > exp + 0.1, timeout=10, interval=0.05)
        holder.execute("COMMIT")
    finally:
        holder.close()
    assert eventually(lambda: second.ended_at is not None, timeout=30)
    assert second.status == 403 and second.content_type == PROBLEM, (second.status, bytes(second.data[:200]))
    assert b"token-expired" in second.data
    # The camera's feed is still up for the first viewer, whose token is good: more fragments come.
    seen = first.fragments()
    assert eventually(lambda: first.fragments() > seen, timeout=30), "the first viewer's stream stopped"
    assert first.ended_at is None
    first.stop()


def test_a_service_token_gets_no_viewing(relay: Server, site: MakeSite, registry: httpx.Client) -> None:
    """Canvass's own `service` token names no agency user: it may not watch a camera."""
    s = site()
    open_window(registry, s)
    service = {"Authorization": f"Bearer {mint_token('service', None, sub='svc')}"}
    r = viewing(relay, service, s.camera_id)
    assert r.status_code in (401, 403) and r.headers["content-type"] == PROBLEM, r.text


def _server_side_open(server_port: int, client_port: int) -> bool:
    """Whether the server's end of a TCP connection from `client_port` is still open (established, or told of
    the client's close but not closed yet): uvicorn closes its socket once it has seen the client go."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return state in ("01", "08")  # ESTABLISHED, CLOSE_WAIT
    return False


def test_a_viewer_gone_before_its_stream_starts_is_ended_and_audited_and_the_camera_stops(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    """The viewer asks for the stream and hangs up while its start waits at its audit record (the test holds the
    audit chain's head); once let go, the start completes for nobody: the viewing's end is audited and the camera,
    which had no other viewer, is stopped (it used to stream on, with no end record, until the agent went)."""
    s = site()
    open_window(registry, s)
    v = viewing(relay, investigator(auth, s.agency), s.camera_id).json()
    holder = Db(db.url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE audit.chain_head IN EXCLUSIVE MODE")
        conn = socket.create_connection(("127.0.0.1", relay.port), timeout=10)
        client_port = conn.getsockname()[1]
        conn.sendall(
            f"GET {v['stream']} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {v['grant']}\r\n\r\n".encode()
        )
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE relation = CAST('audit.chain_head' AS regclass)"
            " AND mode = 'RowShareLock' AND NOT granted"
        )
        assert eventually(lambda: db.fetchval(waiting) == 1, timeout=30), "the start never reached the audit"
        conn.close()
        assert eventually(lambda: not _server_side_open(relay.port, client_port), timeout=10)
        holder.execute("COMMIT")
    finally:
        holder.close()
    ended = (
        "SELECT details->>'ended_by' FROM audit.events WHERE service = 'live_relay'"
        " AND action = 'live_viewing.end' AND details->>'viewing_id' = $1"
    )
    assert eventually(lambda: db.fetchval(ended, v["id"]), timeout=30), "the viewing's end was never audited"
    assert eventually(lambda: s.camera_status().get("streaming") is False, timeout=10), s.camera_status()
    presence = httpx.get(
        f"{relay.url}/v1/registrations/{s.registration_id}/edge-agent",
        headers=owner(s.credential),
        timeout=30,
    ).json()
    assert presence["online"] is True and presence["streaming"] == []


def test_a_viewer_is_cut_at_its_tokens_expiry_even_while_registry_api_is_slow_to_answer(
    registry: httpx.Client, site: MakeSite, relay: Server, db: Any
) -> None:
    """registry_api is held from answering the relay's window checks (the test locks the windows) from 1.5 s
    before the viewer's token expires: the viewer is still cut at that `exp`, as `token-expired` (the recheck,
    waiting for registry_api's answers, used to see the token only after it had cut the viewer as
    `window-unconfirmed`)."""
    s = site()
    open_window(registry, s)
    headers, exp = token(s.agency.slug, "inv-slow", ttl_s=12)
    r = viewing(relay, headers, s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    watch = Watch(relay, v)
    assert eventually(lambda: watch.fragments() >= 1, timeout=30), (watch.status, len(watch.data))
    assert eventually(lambda: time.time() >= exp - 1.5, timeout=15, interval=0.02)
    holder = Db(db.url)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE registry.live_windows IN ACCESS EXCLUSIVE MODE")
        assert time.time() < exp - 0.5, "the lock came too late: this proves nothing"
        assert eventually(lambda: watch.ended_at is not None, timeout=15)
        ended = time.time() - (time.monotonic() - (watch.ended_at or 0.0))
    finally:
        holder.execute("COMMIT")
        holder.close()
    print(f"viewer cut {ended - exp:.2f} s after its token expired")
    assert -0.1 < ended - exp < 1.0, ended - exp
    ended_by = (
        "SELECT details->>'ended_by' FROM audit.events WHERE service = 'live_relay'"
        " AND action = 'live_viewing.end' AND details->>'viewing_id' = $1"
    )
    assert eventually(lambda: db.fetchval(ended_by, v["id"]), timeout=10) == "token-expired"


def test_an_exp_of_any_size_or_type_is_a_401_or_a_grant_bounded_by_it_never_a_500(
    registry: httpx.Client, site: MakeSite, relay: Server
) -> None:
    s = site()
    open_window(registry, s)
    now = time.time()
    for exp in (1e300, float("inf"), -5, 0, "soon", True):
        raw = mint_token("investigator", s.agency.slug, sub="inv-exp", extra={"exp": exp})
        r = viewing(relay, {"Authorization": f"Bearer {raw}"}, s.camera_id)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, (exp, r.status_code, r.text)
    fractional = now + 20.75
    raw = mint_token("investigator", s.agency.slug, sub="inv-exp", extra={"exp": fractional})
    r = viewing(relay, {"Authorization": f"Bearer {raw}"}, s.camera_id)
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["grant_expires_at"]).timestamp() <= fractional
