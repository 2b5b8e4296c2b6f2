"""The relay's limit of viewers per camera (CANVASS_RELAY_MAX_VIEWERS_PER_CAMERA, here 1) holds for viewers that
start at the same moment: the limit is applied where the viewer joins the camera's feed, not before the wait for
the viewing's audit record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Suite, Token
from tests.live.conftest import MakeSite, investigator, open_window, relay_env
from tests.live.test_relay import start_together, viewing
from tests.support import Server, eventually, start_server


@pytest.fixture
def relay(suite: Suite) -> Iterator[Server]:
    """This module's relay (the `site` fixture's too): one viewer per camera."""
    server = start_server("live_relay", dict(relay_env(suite), CANVASS_RELAY_MAX_VIEWERS_PER_CAMERA="1"))
    try:
        yield server
    finally:
        server.stop()


def test_two_viewers_starting_at_once_on_a_camera_allowing_one_get_one_stream_and_one_429(
    registry: httpx.Client, site: MakeSite, relay: Server, auth: Token, db: Any
) -> None:
    """Both starts are held at their audit record (the test holds the audit chain's head), then let go together."""
    s = site()
    open_window(registry, s)
    first, second = (viewing(relay, investigator(auth, s.agency), s.camera_id).json() for _ in range(2))
    watches = start_together(db, relay, [first, second])
    assert eventually(lambda: all(w.status is not None for w in watches), timeout=30)
    assert sorted(w.status or 0 for w in watches) == [200, 429], [w.status for w in watches]
    [watching] = [w for w in watches if w.status == 200]
    assert eventually(watching.fragments, timeout=30)
    for w in watches:
        w.stop()
