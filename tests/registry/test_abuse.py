"""Guess limits: wrong owner credentials and reset codes are counted per client (never per registration: its
owner is never locked out), counted before they are checked, and past the limit answer 429 problems with
Retry-After; a client is kept only as a keyed hash, only for its window; a service names the owner it acts for;
a reset request answers the same, byte for byte, whether or not the address is registered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.auth import mint_token
from shared.crypto import keyring
from tests.registry.conftest import fresh_email
from tests.support import Db, Server, start_server

PROBLEM = "application/problem+json"
PER_CLIENT, WINDOW_S = 4, 600


@pytest.fixture(scope="module")
def limited(service_env: dict[str, str]) -> Iterator[Server]:
    """registry_api with low limits, on the run's database."""
    server = start_server(
        "registry_api",
        dict(
            service_env,
            CANVASS_GUESS_LIMIT_PER_CLIENT=str(PER_CLIENT),
            CANVASS_GUESS_WINDOW_S=str(WINDOW_S),
        ),
    )
    yield server
    server.stop()


def _client(server: Server, address: str) -> httpx.Client:
    """A client calling from its own loopback address: another client, to the service."""
    return httpx.Client(base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def _registration(c: httpx.Client) -> tuple[str, str, str]:
    slug = "t-" + uuid.uuid4().hex[:10]
    lon, lat = -100 + uuid.uuid4().int % 1000 / 100, 35.0
    area = {
        "type": "Polygon",
        "coordinates": [[[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]],
    }
    admin = {"Authorization": "Bearer " + mint_token("agency_admin", slug)}
    assert (
        c.post(
            "/v1/agencies", json={"slug": slug, "name": "PD", "jurisdiction": area}, headers=admin
        ).status_code
        == 201
    )
    email = fresh_email()
    r = c.post(
        "/v1/registrations",
        json={
            "agency": slug,
            "location": {"type": "Point", "coordinates": [lon + 0.05, lat + 0.05]},
            "contact": {"email": email},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["credential"], email


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _wrong(credential: str) -> str:
    return credential[:-4] + ("AAAA" if not credential.endswith("AAAA") else "BBBB")


def _assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == PROBLEM
    assert 0 < int(r.headers["retry-after"]) <= WINDOW_S


def test_wrong_credentials_from_one_client_are_limited_and_the_owner_elsewhere_still_gets_in(
    limited: Server, db: Db
) -> None:
    with _client(limited, "127.0.0.2") as guesser, _client(limited, "127.0.0.3") as owner:
        rid, cred, _ = _registration(owner)
        url = f"/v1/registrations/{rid}"
        for _ in range(PER_CLIENT):
            assert guesser.get(url, headers=_bearer(_wrong(cred))).status_code == 401
        _assert_limited(guesser.get(url, headers=_bearer(_wrong(cred))))
        # The guessing client is refused even the right credential: it cannot tell a hit from a refusal.
        _assert_limited(guesser.get(url, headers=_bearer(cred)))
        # Another client, with the right credential: in.
        assert owner.get(url, headers=_bearer(cred)).status_code == 200
        # The client is stored as a keyed hash, never as its address.
        buckets = {bytes(r["bucket"]) for r in db.fetch("SELECT bucket FROM registry.guess_counts")}
        assert b"c" + keyring().exact_index("127.0.0.2", "guess-limit") in buckets
        assert not any(b"127.0.0.2" in b for b in buckets)


def test_guesses_at_a_registration_from_many_clients_never_lock_its_owner_out(limited: Server) -> None:
    """Wrong guesses at one registration from several clients, each up to its own limit: the owner's right
    credential still opens and deletes it (no lock on the registration: anyone knowing its id could set one)."""
    with _client(limited, "127.0.0.4") as owner:
        rid, cred, _ = _registration(owner)
        url = f"/v1/registrations/{rid}"
        # More guesses in all than any registration-wide limit would allow (the default was 50).
        clients = [_client(limited, f"127.0.1.{i}") for i in range(1, 15)]
        try:
            statuses = [
                c.get(url, headers=_bearer(_wrong(cred))).status_code
                for c in clients
                for _ in range(PER_CLIENT)
            ]
            assert statuses == [401] * PER_CLIENT * len(clients)
            for c in clients:
                _assert_limited(c.get(url, headers=_bearer(_wrong(cred))))
        finally:
            for c in clients:
                c.close()
        assert owner.get(url, headers=_bearer(cred)).status_code == 200
        assert owner.delete(url, headers=_bearer(cred)).status_code == 204


def test_parallel_wrong_guesses_from_one_client_are_checked_at_most_up_to_its_limit(limited: Server) -> None:
    """Guesses released together (a barrier): each is counted before it is checked, so only the limit's number
    of them are checked; the rest are refused."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    with _client(limited, "127.0.0.12") as owner:
        rid, cred, _ = _registration(owner)
    url = f"/v1/registrations/{rid}"
    n = PER_CLIENT * 5
    clients = [_client(limited, "127.0.0.13") for _ in range(n)]
    barrier = threading.Barrier(n)

    def guess(c: httpx.Client) -> int:
        barrier.wait(30)
        return c.get(url, headers=_bearer(_wrong(cred))).status_code

    try:
        for c in clients:  # connected beforehand, so that the requests leave together
            assert c.get("/v1/agencies/covering", params={"lon": 0, "lat": 0}).status_code == 200
        with ThreadPoolExecutor(n) as pool:
            statuses = list(pool.map(guess, clients))
    finally:
        for c in clients:
            c.close()
    assert sorted(statuses) == [401] * PER_CLIENT + [429] * (n - PER_CLIENT), statuses


def test_a_right_credential_is_not_counted_against_its_client(limited: Server, db: Db) -> None:
    with _client(limited, "127.0.0.14") as owner:
        rid, cred, _ = _registration(owner)
        for _ in range(PER_CLIENT * 2):
            assert owner.get(f"/v1/registrations/{rid}", headers=_bearer(cred)).status_code == 200
    bucket = b"c" + keyring().exact_index("127.0.0.14", "guess-limit")
    assert not db.fetch("SELECT 1 FROM registry.guess_counts WHERE bucket = $1", bucket)


def test_a_client_address_named_by_a_canvass_service_is_believed_only_with_its_service_token(
    limited: Server,
) -> None:
    """requests_api names the owner it checks a credential for: guesses are counted as that owner's, not as the
    service's. The same header from anyone without a service token is ignored."""
    service = {
        "X-Canvass-Service-Authorization": "Bearer " + mint_token("service", None, sub="requests_api"),
    }
    with _client(limited, "127.0.0.15") as relay, _client(limited, "127.0.0.16") as spoofer:
        rid, cred, _ = _registration(relay)
        url = f"/v1/registrations/{rid}"
        guesser = {**service, "X-Canvass-Client-Address": "198.51.100.7"}
        for _ in range(PER_CLIENT):
            assert relay.get(url, headers={**_bearer(_wrong(cred)), **guesser}).status_code == 401
        _assert_limited(relay.get(url, headers={**_bearer(cred), **guesser}))
        # Another owner through the same service, and the service itself: not limited.
        other = {**service, "X-Canvass-Client-Address": "2001:db8::1"}
        assert relay.get(url, headers={**_bearer(cred), **other}).status_code == 200
        assert relay.get(url, headers=_bearer(cred)).status_code == 200
        # Without a service token (an investigator's, or none), a named address is not believed: each guess
        # claims a new address and is counted as the client's own.
        investigator = "Bearer " + mint_token("investigator", "some-pd")
        for i in range(PER_CLIENT):
            spoof = {"X-Canvass-Client-Address": f"203.0.113.{i}"}
            if i % 2:
                spoof["X-Canvass-Service-Authorization"] = investigator
            assert spoofer.get(url, headers={**_bearer(_wrong(cred)), **spoof}).status_code == 401
        _assert_limited(
            spoofer.get(url, headers={**_bearer(cred), **service, "X-Canvass-Client-Address": "junk"})
        )


def test_wrong_reset_codes_are_limited_per_client(limited: Server) -> None:
    with _client(limited, "127.0.0.5") as guesser, _client(limited, "127.0.0.6") as other:
        for _ in range(PER_CLIENT):
            r = guesser.post("/v1/credential-resets/redeem", json={"token": "cvr_" + uuid.uuid4().hex * 2})
            assert r.status_code == 400
        _assert_limited(guesser.post("/v1/credential-resets/redeem", json={"token": "cvr_" + "x" * 40}))
        assert (
            other.post("/v1/credential-resets/redeem", json={"token": "cvr_" + "x" * 40}).status_code == 400
        )


def test_counts_are_kept_only_for_their_window(limited: Server, db: Db) -> None:
    with _client(limited, "127.0.0.7") as guesser:
        rid, cred, _ = _registration(guesser)
        assert guesser.get(f"/v1/registrations/{rid}", headers=_bearer(_wrong(cred))).status_code == 401
        db.execute("UPDATE registry.guess_counts SET window_ends = now() - interval '1 second'")
        assert guesser.get(f"/v1/registrations/{rid}", headers=_bearer(_wrong(cred))).status_code == 401
        # Counting a check deletes every count whose window has ended: only this client's fresh one is left.
        rows = db.fetch("SELECT failures FROM registry.guess_counts")
        assert sorted(r["failures"] for r in rows) == [1]


def test_a_reset_request_answers_the_same_for_a_known_and_an_unknown_address_before_any_work(
    registry: httpx.Client, mailbox: Any, db: Db
) -> None:
    _rid, _cred, email = _registration(registry)
    # The codes' table is locked by the test: the answers cannot wait for any work on it.
    db.execute("BEGIN")
    try:
        db.execute("LOCK TABLE registry.credential_resets IN ACCESS EXCLUSIVE MODE")
        known = registry.post("/v1/credential-resets", json={"email": email}, timeout=4)
        unknown = registry.post("/v1/credential-resets", json={"email": fresh_email()}, timeout=4)
    finally:
        db.execute("COMMIT")
    varying = {"x-request-id", "date"}
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert {k: v for k, v in known.headers.items() if k not in varying} == {
        k: v for k, v in unknown.headers.items() if k not in varying
    }
    mailbox.wait_for(email, lambda m: "cvr_" in m.get_payload(decode=True).decode())  # the work still happens
