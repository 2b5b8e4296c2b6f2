"""The relay's limits hold for requests that arrive at the same moment: a user's viewings not watched yet are
counted where the grant is made (not before registry_api's answer is awaited), and a token that expires while its
viewer's start waits gets no video (a 403 `token-expired`), while the camera's feed goes on for another viewer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.auth import mint_token
from tests.conftest import Suite, Token
from tests.live.conftest import MakeSite, investigator, open_window, relay_env
from tests.live.test_relay import PROBLEM, Watch, viewing
from tests.live.test_relay_token import token
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
