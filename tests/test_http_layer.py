"""The HTTP layer in front of every service, where it needs a server of its own: what another service's outage
looks like through requests_api, how `make run` wires the services together, and the server's limits."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal

import httpx
import orjson
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field, ValidationError, field_validator

from scripts.run_suite import suite_env
from shared.app import create_app
from shared.errors import validation_problem
from tests.conftest import Suite, Token
from tests.contract.conftest import Owner, create_agency, request_body
from tests.support import QuietHandler, Server, free_port, http_server, start_server

PROBLEM = "application/problem+json"


class Restarting(QuietHandler):
    """registry_api while its database restarts: every answer a 503 problem with Retry-After."""

    def do_GET(self) -> None:
        body = b'{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"database"}'
        self.send_response(503)
        self.send_header("Content-Type", PROBLEM)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


@pytest.fixture
def requests_behind_a_restarting_registry(suite: Suite) -> Iterator[Server]:
    with http_server(Restarting) as port:
        server = start_server("requests_api", dict(suite.env, REGISTRY_API_URL=f"http://127.0.0.1:{port}"))
        try:
            yield server
        finally:
            server.stop()


def test_an_upstream_503_reaches_the_client_as_a_503_with_its_retry_after(
    requests_behind_a_restarting_registry: Server, registry: httpx.Client, auth: Token, slug: str
) -> None:
    create_agency(registry, auth, slug, (-87.98, 42.98, -87.86, 43.10))
    owner = Owner(str(uuid.uuid4()), "cvo_x", [str(uuid.uuid4())])
    r = httpx.post(
        requests_behind_a_restarting_registry.url + "/v1/requests",
        json=request_body(owner, -87.9065, 43.0389),
        headers=auth("investigator", slug),
    )
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["retry-after"] == "7"


def test_make_run_finds_every_service_on_the_ports_its_variables_chose() -> None:
    env, ports = suite_env(
        {
            "REGISTRY_API_PORT": "9101",
            "GEO_QUERY_PORT": "9102",
            "REQUESTS_API_PORT": "9103",
            "COMMUNITY_API_PORT": "9104",
            "LIVE_RELAY_PORT": "9105",
        }
    )
    assert ports == {
        "registry_api": 9101,
        "geo_query": 9102,
        "requests_api": 9103,
        "community_api": 9104,
        "live_relay": 9105,
    }
    assert env["REGISTRY_API_URL"] == "http://127.0.0.1:9101"
    assert env["GEO_QUERY_URL"] == "http://127.0.0.1:9102"
    assert env["LIVE_RELAY_URL"] == "http://127.0.0.1:9105"  # what registry_api names in a window's view
    given, _ = suite_env({"REGISTRY_API_URL": "http://registry.internal:80"})
    assert given["REGISTRY_API_URL"] == "http://registry.internal:80"


def failing_app() -> FastAPI:
    """An app built by the factory every service uses, with one route that fails unexpectedly."""
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    async def revision() -> str | None:
        return None

    return create_app(
        service="registry_api",
        title="t",
        description="t",
        lifespan=lifespan,
        db_revision=revision,
        routers=[router],
        tags=[],
    )


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_500_is_a_problem_with_its_request_id_and_nosniff() -> None:
    with serving(failing_app()) as url:
        r = httpx.get(url + "/v1/boom", headers={"X-Request-ID": "trace-500"})
        assert r.status_code == 500
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["x-request-id"] == "trace-500"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "a bug" not in r.text
        assigned = httpx.get(url + "/v1/boom")
        assert len(assigned.headers["x-request-id"]) == 32


def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client would send these) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /v1/" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: a\r\n" % i for i in range(500))
            + b"\r\n",
            431,
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["query-70k", "path-20k", "header-70k", "500-headers", "garbage"],
)
def test_requests_the_server_cannot_take_are_refused_with_a_problem(
    suite: Suite, request_bytes: bytes, status: int
) -> None:
    for server in (suite.registry, suite.geo, suite.requests):
        got, headers, body = raw_exchange(server.port, request_bytes)
        assert got == status, (server.name, got, body[:200])
        assert headers["content-type"] == PROBLEM
        assert headers["x-content-type-options"] == "nosniff" and len(headers["x-request-id"]) == 32
        assert orjson.loads(body)["status"] == status


def test_a_refused_members_params_are_json_scalars_whatever_pydantic_carries() -> None:
    """pydantic's error context may hold a Decimal limit, an infinite one or a custom validator's exception: the
    problem document carries the limit as a JSON number, and neither of the others (the reason says them)."""

    class Body(BaseModel):
        share: Decimal = Field(ge=Decimal("0.5"))
        speed: float = Field(lt=float("inf"))
        count: int

        @field_validator("count")
        @classmethod
        def _count(cls, v: int) -> int:
            raise ValueError("not this count")

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"share": "0.25", "speed": float("inf"), "count": 3})
    errors = [{**e, "loc": ("body", *e["loc"])} for e in caught.value.errors()]
    body = orjson.loads(bytes(validation_problem(errors).body))
    members = {e["pointer"]: e for e in body["errors"]}
    assert (members["/body/share"]["code"], members["/body/share"]["params"]) == (
        "greater_than_equal",
        {"ge": 0.5},
    )
    assert members["/body/speed"]["code"] == "less_than" and "params" not in members["/body/speed"]
    assert members["/body/count"] == {
        "pointer": "/body/count",
        "reason": "not this count",
        "code": "value_error",
    }
