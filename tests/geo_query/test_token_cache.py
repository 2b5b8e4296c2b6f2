"""Verified tokens remembered by their hash until they expire, and what a key the issuer withdraws from its JWKS
means for them: once the process has read the key set without it, every token it signed is verified again and
refused, those already remembered as well as new ones; tokens of the keys that stay are still served from memory.

The key set is served over real HTTP by a server the test changes; the JWKS client reads it again when its
lifespan ends, which the test stands in for by asking it to read now (`get_jwk_set(refresh=True)`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import auth as auth_mod
from shared.auth import verified_principal
from shared.errors import Problem
from shared.settings import Settings
from tests.support import JwksIssuer, free_port, jwk, jwks_issuer

OLD_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer() -> Iterator[JwksIssuer]:
    with jwks_issuer([jwk(OLD_KEY, "old"), jwk(NEW_KEY, "new")]) as state:
        yield state


def test_a_verified_token_is_remembered_until_its_exp_not_a_minute(
    issuer: JwksIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Settings(CANVASS_JWKS_URL=issuer.url)
    token = issuer.token(NEW_KEY, "new", "remembered-long", ttl_s=3600)
    first = verified_principal(token, s)

    def never(token: str, settings: Settings) -> Any:
        raise AssertionError("verified again")

    monkeypatch.setattr(auth_mod, "verify_jwt", never)
    soon = time.time() + 1800  # half an hour on: well past the minute the cache used to keep it
    monkeypatch.setattr(auth_mod.time, "time", lambda: soon)
    assert verified_principal(token, s) is first
    past = time.time() + 3601
    monkeypatch.setattr(auth_mod.time, "time", lambda: past)
    with pytest.raises(AssertionError, match="verified again"):
        verified_principal(token, s)
    assert auth_mod.token_key(token) not in auth_mod.principal_cache


def test_a_key_withdrawn_from_the_jwks_refuses_its_remembered_tokens_once_the_set_is_read_again(
    issuer: JwksIssuer,
) -> None:
    s = Settings(CANVASS_JWKS_URL=issuer.url)
    old = issuer.token(OLD_KEY, "old", "signed-by-the-old-key")
    new = issuer.token(NEW_KEY, "new", "signed-by-the-new-key")
    kept_new = verified_principal(new, s)
    assert verified_principal(old, s).sub == "signed-by-the-old-key"
    reads = issuer.reads
    assert verified_principal(old, s).sub == "signed-by-the-old-key"  # remembered: the set is not read again
    assert issuer.reads == reads

    issuer.keys = [jwk(NEW_KEY, "new")]  # the issuer rotates: "old" is withdrawn
    issuer.reread()

    with pytest.raises(Problem) as refused:
        verified_principal(old, s)
    assert refused.value.status == 401
    assert auth_mod.token_key(old) not in auth_mod.principal_cache
    # A token of the withdrawn key the process never saw is refused too (its signing key is not remembered on
    # its own beyond the key set).
    with pytest.raises(Problem):
        verified_principal(issuer.token(OLD_KEY, "old", "new-token-of-the-old-key"), s)
    # The key that stays keeps its tokens remembered.
    assert verified_principal(new, s) is kept_new


def test_a_jwks_that_cannot_be_read_again_makes_remembered_tokens_verify_again_and_fail_closed(
    issuer: JwksIssuer,
) -> None:
    s = Settings(CANVASS_JWKS_URL=issuer.url)
    token = issuer.token(NEW_KEY, "new", "unreachable-jwks")
    verified_principal(token, s)
    client = auth_mod.jwks_client(issuer.url)
    assert client.jwk_set_cache is not None
    client.jwk_set_cache.put(None)  # the key set has lapsed ...
    client.uri = f"http://127.0.0.1:{free_port()}/gone"  # ... and the issuer is out of reach
    try:
        with pytest.raises(Problem) as refused:
            verified_principal(token, s)
        assert refused.value.status == 401
    finally:
        client.uri = issuer.url
        auth_mod.jwks_client.cache_clear()
