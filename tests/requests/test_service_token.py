"""requests_api calls registry_api as `service` with a token it mints for itself from the secret key the services
share, renewed before it expires: owner operations work in production with no CANVASS_SERVICE_TOKEN to mint by
hand and restart with every day."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import jwt
import pytest

from services.requests_api import upstream
from shared.auth import verify_jwt
from shared.service_token import RENEW_S, TTL_S
from shared.settings import DEV_ENCRYPTION_KEY, DEV_KEYSTORE_KEY, Settings, get_settings
from tests.conftest import Suite
from tests.requests.conftest import OFFSET, Flow, NewOwner
from tests.support import Server, start_server


@pytest.fixture
def fresh_token_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("CANVASS_SERVICE_TOKEN", raising=False)
    get_settings.cache_clear()
    upstream.service_token.reset()
    yield
    get_settings.cache_clear()


def _exp(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


@pytest.mark.usefixtures("fresh_token_state")
def test_the_minted_service_token_is_renewed_before_it_expires() -> None:
    t0 = 2_000_000_000.0
    first = upstream.service_token(now=t0)
    assert _exp(first) == t0 + TTL_S
    # Kept while more than the renewal margin is left ...
    kept_until = t0 + TTL_S - RENEW_S
    assert upstream.service_token(now=kept_until) == first
    # ... replaced once less is left: before the old one expires, by one that lives a full term again.
    renewed = upstream.service_token(now=kept_until + 1)
    assert renewed != first
    assert _exp(renewed) == kept_until + 1 + TTL_S
    assert kept_until + 1 < _exp(first)
    assert upstream.service_token(now=kept_until + 2) == renewed


@pytest.mark.usefixtures("fresh_token_state")
def test_the_minted_service_token_is_accepted_as_service_by_a_production_registry() -> None:
    token = upstream.service_token()
    production = Settings(
        CANVASS_ENV="production",
        CANVASS_SECRET_KEY=get_settings().secret_key + "-long-enough-for-production-0000",
        CANVASS_ENCRYPTION_KEY="p1:" + base64.urlsafe_b64encode(b"p" * 32).decode(),
        CANVASS_PUBLIC_BASE_URL="https://canvass.example.gov",
        CANVASS_KEYSTORE_URL="postgresql://keys@keystore/canvass_keys",
        CANVASS_KEYSTORE_KEY="w1:" + base64.urlsafe_b64encode(b"w" * 32).decode(),
    )
    with pytest.raises(Exception, match="refused"):  # another secret: refused
        verify_jwt(token, production)
    same = production.model_copy(update={"secret_key": get_settings().secret_key})
    assert verify_jwt(token, same).roles == frozenset({"service"})


def test_owner_operations_work_in_production_without_a_configured_service_token(
    suite: Suite, flow: Flow, new_owner: NewOwner
) -> None:
    """registry_api and requests_api in production mode, sharing only the secret key, no CANVASS_SERVICE_TOKEN:
    requests_api names each owner's address to registry_api as `service` (its own minted token), so a guesser's
    wrong credentials exhaust the guesser's allowance, not the owner's, who is still let in."""
    limit = 4
    victim = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    other = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    env = {k: v for k, v in suite.env.items() if k != "CANVASS_SERVICE_TOKEN"}
    env.update(
        CANVASS_ENV="production",
        CANVASS_SECRET_KEY="production-secret-shared-by-the-services-0123456789",
        # The suite's data is sealed under the development keys: a rotated ring (a new key first) still opens it.
        CANVASS_ENCRYPTION_KEY="p1:"
        + base64.urlsafe_b64encode(b"p" * 32).decode()
        + ","
        + DEV_ENCRYPTION_KEY,
        CANVASS_KEYSTORE_KEY="w1:" + base64.urlsafe_b64encode(b"w" * 32).decode() + "," + DEV_KEYSTORE_KEY,
    )
    registry = start_server(
        "registry_api",
        dict(env, FORWARDED_ALLOW_IPS="10.255.255.254", CANVASS_GUESS_LIMIT_PER_CLIENT=str(limit)),
    )
    requests = None
    try:
        requests = start_server("requests_api", dict(env, REGISTRY_API_URL=registry.url))
        wrong = other.credential[:-4] + ("AAAA" if not other.credential.endswith("AAAA") else "BBBB")
        with _client_at(requests, "127.0.0.71") as guesser, _client_at(requests, "127.0.0.72") as owner:
            for _ in range(limit):
                assert guesser.get("/v1/owner/requests", headers=_bearer(wrong)).status_code == 401
            assert guesser.get("/v1/owner/requests", headers=_bearer(wrong)).status_code == 429
            r = owner.get("/v1/owner/requests", headers=_bearer(victim.credential))
            assert r.status_code == 200, r.text
    finally:
        if requests is not None:
            requests.stop()
        registry.stop()


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _client_at(server: Server, address: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))
