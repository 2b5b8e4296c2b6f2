"""The suite's foundation: health, readiness, problem+json on every error path, request ids, auth."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PORTAL_PORT, Suite

PROBLEM = "application/problem+json"


@pytest.fixture(params=["registry", "geo", "requests"])
def service(request: pytest.FixtureRequest, suite: Suite) -> str:
    return getattr(suite, request.param).url


def test_every_service_is_alive_and_ready_at_the_migration_head(service: str) -> None:
    assert httpx.get(service + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(service + "/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["revision"]


def test_unknown_path_is_a_404_problem(service: str) -> None:
    r = httpx.get(service + "/v1/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == 404 and body["type"].endswith("/not-found") and body["title"]
    assert "/v1/nothing-here" in body["detail"]


def test_wrong_method_is_a_405_problem(service: str) -> None:
    r = httpx.delete(service + "/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["status"] == 405


def test_request_id_is_echoed_or_assigned(service: str) -> None:
    r = httpx.get(service + "/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = httpx.get(service + "/healthz", headers={"X-Request-ID": "<script>"})
    assert r.headers["x-request-id"] != "<script>" and len(r.headers["x-request-id"]) == 32


def test_oversized_body_is_a_413_problem(service: str) -> None:
    r = httpx.post(
        service + "/healthz", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


def test_cors_headers_only_for_a_configured_origin(service: str) -> None:
    """Without an Origin (the middleware passes the request straight on) no CORS header; with the portal's, the
    CORS headers; with another, none."""
    plain = httpx.get(service + "/healthz")
    assert not [h for h in plain.headers if h.startswith("access-control-")]
    portal = httpx.get(service + "/healthz", headers={"Origin": f"http://127.0.0.1:{PORTAL_PORT}"})
    assert portal.headers["access-control-allow-origin"] == f"http://127.0.0.1:{PORTAL_PORT}"
    assert "x-request-id" in portal.headers["access-control-expose-headers"].lower()
    stranger = httpx.get(service + "/healthz", headers={"Origin": "http://stranger.example"})
    assert not [h for h in stranger.headers if h.startswith("access-control-")]
