"""A live viewing lasts no longer than the agency token that asked for it: the relay cuts the viewer when the
token's `exp` passes (audited as `token-expired`), even though the window is still open, and a grant never
outlives its token; a new viewing with a renewed token goes on watching."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import jwt

from shared.auth import mint_token
from tests.live.conftest import MakeSite, open_window
from tests.live.test_relay import PROBLEM, Watch, viewing
from tests.support import Server, eventually


def token(slug: str, sub: str, ttl_s: int) -> tuple[dict[str, str], float]:
    """An investigator's bearer header whose token expires in `ttl_s` seconds, and that `exp`."""
    raw = mint_token("investigator", slug, sub=sub, ttl_s=ttl_s)
    exp = float(jwt.decode(raw, options={"verify_signature": False})["exp"])
    return {"Authorization": f"Bearer {raw}"}, exp


def test_a_viewer_is_cut_within_2s_of_its_tokens_expiry_audited_as_token_expired_and_may_go_on_with_a_new_token(
    registry: httpx.Client, site: MakeSite, relay: Server, db: Any
) -> None:
    s = site()
    open_window(
        registry, s, duration_s=600
    )  # open long after the token's end: only the token ends the viewing
    headers, exp = token(s.agency.slug, "inv-token", ttl_s=10)
    r = viewing(relay, headers, s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    watch = Watch(relay, v)
    assert eventually(lambda: watch.data.count(b"moof") >= 1, timeout=30), (watch.status, len(watch.data))
    assert time.time() < exp, "the video came only after the token had expired"
    assert eventually(lambda: watch.ended_at is not None, timeout=exp - time.time() + 10)
    ended = time.time() - (time.monotonic() - (watch.ended_at or 0.0))
    cut_after = ended - exp
    print(f"viewer cut {cut_after:.2f} s after its token expired")
    assert -0.1 < cut_after < 2.0, cut_after  # not before the token's end, and soon after it
    rows = eventually(
        lambda: db.fetch(
            "SELECT actor, details FROM audit.events"
            " WHERE service = 'live_relay' AND action = 'live_viewing.end' AND details->>'viewing_id' = $1",
            v["id"],
        ),
        timeout=10,
    )
    [end] = rows
    details = end["details"] if isinstance(end["details"], dict) else json.loads(end["details"])
    assert end["actor"] == "inv-token" and details["ended_by"] == "token-expired"
    assert details["bytes"] > 0
    # The window is still open: a new viewing asked with a renewed token plays again.
    renewed, _ = token(s.agency.slug, "inv-token", ttl_s=600)
    again = viewing(relay, renewed, s.camera_id)
    assert again.status_code == 201, again.text
    rewatch = Watch(relay, again.json())
    assert eventually(lambda: rewatch.data.count(b"moof") >= 1, timeout=30), rewatch.status
    rewatch.stop()


def test_a_grant_never_outlives_the_token_that_asked_for_it(
    registry: httpx.Client, site: MakeSite, relay: Server
) -> None:
    """The test relay's grants last 5 s; one asked with a token expiring in 2 s expires with the token. A token
    shared/auth still accepts within its leeway, but past its `exp`, gets no grant."""
    s = site()
    open_window(registry, s)
    headers, exp = token(s.agency.slug, "inv-short", ttl_s=2)
    asked = time.time()
    r = viewing(relay, headers, s.camera_id)
    assert r.status_code == 201, r.text
    v = r.json()
    assert datetime.fromisoformat(v["grant_expires_at"]).timestamp() <= exp
    assert eventually(lambda: time.time() > exp + 0.05, timeout=10, interval=0.05)
    late = httpx.get(relay.url + v["stream"], headers={"Authorization": f"Bearer {v['grant']}"}, timeout=30)
    assert time.time() < asked + 5, "the grant's own 5 s ran out too: this proves nothing"
    assert late.status_code == 403 and late.headers["content-type"] == PROBLEM, late.text
    assert late.json()["type"].endswith("/grant-expired")
    expired, _ = token(s.agency.slug, "inv-short", ttl_s=-5)
    refused = viewing(relay, expired, s.camera_id)
    assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM, refused.text
    assert refused.json()["type"].endswith("/token-expired")
