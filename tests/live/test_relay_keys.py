"""A live viewing does not outlast the identity provider's key that signed the token that asked for it: once the
key is withdrawn from the provider's JWKS (a rotation after a leak, say), the relay, which reads the JWKS again for
the keys of open viewings every CANVASS_RELAY_KEY_RECHECK_S, cuts their viewers and refuses the key's tokens; the
viewers of the keys kept go on watching. The JWKS is served over real HTTP and changed by the test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Suite
from tests.live.conftest import MakeSite, open_window, relay_env
from tests.live.test_relay import PROBLEM, Watch, viewing
from tests.support import JwksIssuer, Server, eventually, jwk, jwks_issuer, start_server

OLD_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer() -> Iterator[JwksIssuer]:
    with jwks_issuer([jwk(OLD_KEY, "old"), jwk(NEW_KEY, "new")], "https://idp.county.example") as state:
        yield state


@pytest.fixture
def relay(suite: Suite, issuer: JwksIssuer) -> Iterator[Server]:
    """This module's relay (the edge agents of `site` connect to it): it trusts the test's identity provider, and
    reads its JWKS again every half second for the keys of open viewings."""
    env = dict(
        relay_env(suite),
        CANVASS_JWKS_URL=issuer.url,
        CANVASS_JWT_ISSUERS=json.dumps({issuer.iss: ["*"]}),
        CANVASS_RELAY_KEY_RECHECK_S="0.5",
    )
    server = start_server("live_relay", env)
    try:
        yield server
    finally:
        server.stop()


def test_withdrawing_the_key_that_signed_a_viewers_token_cuts_it_and_no_other_viewer(
    registry: httpx.Client, site: MakeSite, relay: Server, issuer: JwksIssuer, db: Any
) -> None:
    s = site()
    open_window(registry, s, duration_s=600)
    old = {"Authorization": f"Bearer {issuer.token(OLD_KEY, 'old', 'inv-old', agency=s.agency.slug)}"}
    new = {"Authorization": f"Bearer {issuer.token(NEW_KEY, 'new', 'inv-new', agency=s.agency.slug)}"}
    watches: dict[str, tuple[Watch, str]] = {}
    for name, headers in (("old", old), ("new", new)):
        r = viewing(relay, headers, s.camera_id)
        assert r.status_code == 201, r.text
        watches[name] = (Watch(relay, r.json()), r.json()["id"])
    cut, kept = watches["old"][0], watches["new"][0]
    assert eventually(lambda: cut.fragments() >= 1 and kept.fragments() >= 1, timeout=30), (
        cut.status,
        kept.status,
    )
    assert cut.ended_at is None

    issuer.keys = [jwk(NEW_KEY, "new")]  # the provider rotates "old" out
    withdrawn = time.monotonic()
    assert eventually(lambda: cut.ended_at is not None, timeout=10)
    cut_after = (cut.ended_at or 0.0) - withdrawn
    print(f"viewer cut {cut_after:.2f} s after its key was withdrawn")
    assert cut_after < 2.5, cut_after  # the key recheck (0.5 s here) and 2 s
    seen = kept.fragments()
    assert eventually(lambda: kept.fragments() > seen, timeout=10), "the kept key's viewer was cut too"
    assert kept.ended_at is None

    again = viewing(relay, old, s.camera_id)
    assert again.status_code == 401 and again.headers["content-type"] == PROBLEM, again.text
    [end] = eventually(
        lambda: db.fetch(
            "SELECT actor, details FROM audit.events WHERE service = 'live_relay'"
            " AND action = 'live_viewing.end' AND details->>'viewing_id' = $1",
            watches["old"][1],
        ),
        timeout=10,
    )
    details = end["details"] if isinstance(end["details"], dict) else json.loads(end["details"])
    assert end["actor"] == "inv-old" and details["ended_by"] == "key-withdrawn", details
    kept.stop()
