"""The search routes' lean handler (services/geo_query/routing.py), answering from inside the middleware past FastAPI's
router, answers exactly as FastAPI's own handler would: the same status, headers, problem+json and body for good
input, bad input and bad credentials, from a browser's origin, with gzip and for HEAD. Both run in this process on
the test database: FastAPI's handler is what the lean one falls back to while a dependency override is set.

Also: verified principals are remembered per token, never past the token's `exp` nor for another Settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import orjson
import pytest
from fastapi import Request

from services.geo_query.routing import LeanDispatch, LeanRoute
from shared import auth as auth_mod
from shared.auth import mint_token, verified_principal
from shared.db import make_pool
from shared.settings import Settings, get_settings
from tests.conftest import Token
from tests.geo_query.conftest import Registry
from tests.geo_query.test_ogc_and_bad_input import BAD_GETS

R = {"lon": "-73.975", "lat": "40.74"}


def _unused_dependency() -> None:
    """Overriding it changes nothing but makes every route use FastAPI's own handler."""


# Headers that differ from one answer to the next whatever answered.
_OWN_HEADERS = {"date", "x-request-id", "content-length"}


def _comparable(r: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    body: Any = r.content
    if r.content and r.headers.get("content-type", "").endswith("json"):
        body = orjson.loads(r.content)
        if isinstance(body, dict):
            body.pop("timeStamp", None)
            body.pop("instance", None)
    headers = sorted((k, v) for k, v in r.headers.multi_items() if k not in _OWN_HEADERS)
    return r.status_code, headers, body


@pytest.fixture(scope="module")
def in_process(database_url: str, geo_database_url: str) -> Iterator[Any]:
    from services.geo_query import audit_log as audit_mod
    from services.geo_query.database import db
    from services.geo_query.main import app

    loop = asyncio.new_event_loop()
    settings = get_settings()

    async def _open() -> None:
        db.read = await make_pool(
            geo_database_url, settings, "geo_query", read_only=True, session_state=False
        )
        db.audit = await make_pool(database_url, settings, "geo_query-audit", session_state=False)
        audit_mod.audit_log.open(db.audit)

    loop.run_until_complete(_open())
    try:
        yield loop, app
    finally:

        async def _close() -> None:
            await audit_mod.audit_log.close()
            await db.read.close()
            await db.audit.close()

        loop.run_until_complete(_close())
        loop.close()


def _both(in_process: Any, method: str, path: str, params: dict[str, str], headers: dict[str, str]) -> Any:
    loop, app = in_process

    async def _go() -> tuple[Any, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://geo") as c:
            before, dispatched = LeanRoute.served, LeanDispatch.served
            lean = await c.request(method, path, params=params, headers=headers)
            # The comparison means something only if the plan answered the first request, from the middleware, and
            # FastAPI's handler the second (a fast path that quietly fell back would compare FastAPI with itself).
            assert LeanRoute.served == before + 1, "the lean handler did not answer"
            assert LeanDispatch.served == dispatched + 1, "the lean dispatch did not answer"
            app.dependency_overrides[_unused_dependency] = _unused_dependency
            try:
                stock = await c.request(method, path, params=params, headers=headers)
            finally:
                app.dependency_overrides.clear()
            assert LeanRoute.served == before + 1, "FastAPI's handler did not answer"
            assert LeanDispatch.served == dispatched + 1
        return _comparable(lean), _comparable(stock)

    return loop.run_until_complete(_go())


def test_a_route_the_lean_handler_cannot_serve_stops_the_app_at_start_up() -> None:
    from fastapi import APIRouter, FastAPI, Header

    router = APIRouter(route_class=LeanRoute)

    async def endpoint(x_thing: str = Header()) -> Any:  # a header parameter: not something the plan does
        raise AssertionError("never called")

    with pytest.raises(RuntimeError, match="LeanRoute does not do"):
        router.add_api_route("/lean-or-nothing", endpoint)
        FastAPI().include_router(router)


def _app_with_a_lean_route(app_dependency: Any) -> Any:
    from fastapi import APIRouter, Depends, FastAPI
    from fastapi.responses import Response

    router = APIRouter(route_class=LeanRoute)

    async def endpoint(q: int = 1) -> Response:
        return Response(str(q))

    router.add_api_route("/lean", endpoint)
    app = FastAPI(dependencies=[Depends(app_dependency)])
    app.include_router(router, prefix="/v1")
    return app


def test_the_lean_handler_runs_the_apps_own_dependencies() -> None:
    from services.geo_query.routing import prepare

    calls: list[str] = []

    async def app_dependency(request: Request) -> None:
        calls.append(request.url.path)

    app = _app_with_a_lean_route(app_dependency)
    prepare(app)

    async def _go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lean") as c:
            return await c.get("/v1/lean", params={"q": "7"})

    before = LeanRoute.served
    r = asyncio.run(_go())
    assert (r.status_code, r.text) == (200, "7")
    assert LeanRoute.served == before + 1  # the plan answered, not FastAPI's handler...
    assert calls == ["/v1/lean"]  # ...and ran the dependency the app declares for all its routes


def test_an_app_dependency_the_lean_handler_cannot_run_stops_the_app_at_start_up() -> None:
    from services.geo_query.routing import prepare

    def app_dependency() -> None:  # a sync function: not something the plan does
        raise AssertionError("never called")

    with pytest.raises(RuntimeError, match="LeanRoute does not do"):
        prepare(_app_with_a_lean_route(app_dependency))


def test_the_camera_searches_use_the_lean_handler() -> None:
    from services.geo_query import cameras

    gets = [r for r in cameras.router.routes if "GET" in getattr(r, "methods", ())]
    assert len(gets) == 3
    assert all(isinstance(r, LeanRoute) for r in gets)


GOOD = [
    ("/v1/cameras/radius", {**R, "radius_m": "800"}),
    ("/v1/cameras/radius", {**R, "radius_m": "800", "limit": "3", "owner_kind": "business,school"}),
    ("/v1/cameras/radius", {**R, "radius_m": "800", "incident_at": "2026-01-01T10:00:00Z", "live": "false"}),
    ("/v1/cameras/radius", {"x": "988217", "y": "211790", "crs": "EPSG:2263", "radius_m": "500"}),
    ("/v1/cameras/nearest", {**R, "k": "5"}),
    ("/v1/cameras/nearest", {**R, "k": "5", "max_distance_m": "300", "contacts": "false"}),
    ("/v1/cameras/nearest", {**R, "k": "3", "case_number": "2026-1", "placement": "outdoor"}),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75"}),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75", "limit": "2", "count": "true"}),
    ("/v1/cameras/bbox", {"bbox": "-73.99,40.72,-73.96,40.75", "point": "-73.975,40.74", "facing": "1"}),
]


@pytest.mark.parametrize(("path", "params"), GOOD)
def test_good_searches_answer_as_with_fastapis_handler(
    in_process: Any, auth: Token, registry_data: Registry, path: str, params: dict[str, str]
) -> None:
    lean, stock = _both(in_process, "GET", path, params, auth("investigator", registry_data.x.slug))
    assert lean[0] == 200, lean
    assert lean == stock


@pytest.mark.parametrize(
    "extra",
    [
        {
            "Origin": "http://127.0.0.1:8000"
        },  # the local portal's origin, allowed in development: CORS headers
        {"Origin": "https://elsewhere.example"},  # not allowed: none
        {"Accept-Encoding": "gzip"},
        {"X-Request-ID": "abc-123"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_searches_from_a_browser_and_for_head_answer_as_with_fastapis_handler(
    in_process: Any, auth: Token, registry_data: Registry, method: str, extra: dict[str, str]
) -> None:
    headers = {**auth("investigator", registry_data.x.slug), **extra}
    path, params = GOOD[1]
    lean, stock = _both(in_process, method, path, params, headers)
    assert lean[0] == 200, lean
    assert lean == stock
    names = {k for k, _ in lean[1]}
    assert ("access-control-allow-origin" in names) == (extra.get("Origin") == "http://127.0.0.1:8000")
    assert {"x-content-type-options", "cache-control"} <= names


def test_a_path_an_earlier_route_answers_is_left_to_the_router() -> None:
    """The dispatch answers a path only where the router would choose the lean route: here a route declared
    before it matches the same path, and answers it."""
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import Response

    from services.geo_query.routing import install_lean_dispatch, prepare

    app = FastAPI()

    async def earlier(name: str) -> Response:
        return Response(f"earlier {name}")

    async def lean(q: int = 1) -> Response:
        return Response(f"lean {q}")

    app.add_api_route("/v1/{name}", earlier)
    router = APIRouter(route_class=LeanRoute)
    router.add_api_route("/v1/lean", lean)
    router.add_api_route("/v2/lean", lean)
    app.include_router(router)
    prepare(app)
    install_lean_dispatch(app)

    async def _go(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lean") as c:
            return await c.get(path, params={"q": "3"})

    dispatched = LeanDispatch.served
    assert asyncio.run(_go("/v1/lean")).text == "earlier lean"
    assert LeanDispatch.served == dispatched
    assert asyncio.run(_go("/v2/lean")).text == "lean 3"
    assert LeanDispatch.served == dispatched + 1


async def _sub_app(scope: Any, receive: Any, send: Any) -> None:
    from fastapi.responses import PlainTextResponse

    await PlainTextResponse(f"sub-app {scope['path']}")(scope, receive, send)


@pytest.mark.parametrize("before", ["mount", "host"])
def test_a_path_a_mount_or_a_host_route_before_it_takes_is_left_to_the_router(before: str) -> None:
    """A mount takes every path under its prefix, and a Host route every path of its host: declared before the
    lean route, they, not the lean route, answer what the router gives them."""
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import Response
    from starlette.routing import Host

    from services.geo_query.routing import install_lean_dispatch, prepare

    app = FastAPI()
    if before == "mount":
        app.mount("/v1", _sub_app)
    else:
        app.router.routes.append(Host("other.example", app=_sub_app))

    async def lean() -> Response:
        return Response("lean")

    router = APIRouter(route_class=LeanRoute)
    router.add_api_route("/v1/lean", lean)
    router.add_api_route("/v2/lean", lean)
    app.include_router(router)
    prepare(app)
    install_lean_dispatch(app)

    async def _go(host: str, path: str) -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}") as c:
            return (await c.get(path)).text

    host = "other.example" if before == "host" else "lean.example"
    assert asyncio.run(_go(host, "/v1/lean")) == "sub-app /v1/lean"
    assert asyncio.run(_go("lean.example", "/v2/lean")) == "lean"
    if before == "host":
        assert asyncio.run(_go(host, "/v2/lean")) == "sub-app /v2/lean"


@pytest.mark.parametrize("read_as", ["validation alias", "alias choices"])
def test_a_query_parameter_read_under_another_name_than_its_alias_stops_the_app_at_start_up(
    read_as: str,
) -> None:
    """FastAPI reads such a parameter under its validation alias (or each of its choices); the plan reads the
    alias, and would answer as if it had not been given."""
    from fastapi import APIRouter, FastAPI, Query
    from fastapi.responses import Response
    from pydantic import AliasChoices

    from services.geo_query.routing import prepare

    chosen: Any = "given_as" if read_as == "validation alias" else AliasChoices("given_as", "q")

    async def endpoint(q: int = Query(1, validation_alias=chosen)) -> Response:
        raise AssertionError("never called")

    router = APIRouter(route_class=LeanRoute)
    with pytest.raises(RuntimeError, match="LeanRoute does not do"):
        router.add_api_route("/lean", endpoint)
        app = FastAPI()
        app.include_router(router)
        prepare(app)


def test_an_absent_parameter_with_a_default_factory_gets_what_fastapis_handler_gives() -> None:
    from fastapi import APIRouter, FastAPI, Query
    from fastapi.responses import Response

    from services.geo_query.routing import install_lean_dispatch, prepare

    async def endpoint(q: str = Query(default_factory=lambda: "made")) -> Response:
        return Response(repr(q))

    router = APIRouter(route_class=LeanRoute)
    router.add_api_route("/lean", endpoint)
    app = FastAPI()
    app.include_router(router)
    prepare(app)
    install_lean_dispatch(app)

    async def _go() -> tuple[str, str]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lean") as c:
            lean = (await c.get("/lean")).text
            app.dependency_overrides[_unused_dependency] = _unused_dependency
            stock = (await c.get("/lean")).text
            return lean, stock

    before = LeanRoute.served
    assert asyncio.run(_go()) == ("'made'", "'made'")
    assert LeanRoute.served == before + 1  # the first answer was the plan's


@pytest.mark.parametrize(
    ("path", "params", "status"), [b for b in BAD_GETS if b[0].startswith("/v1/cameras/")]
)
def test_bad_searches_are_refused_as_by_fastapis_handler(
    in_process: Any, auth: Token, registry_data: Registry, path: str, params: dict[str, str], status: int
) -> None:
    lean, stock = _both(in_process, "GET", path, params, auth("investigator", registry_data.x.slug))
    assert lean[0] == status, lean
    assert lean == stock


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer cvo_0123456789abcdef0123456789abcdef_secret"},
        {"Authorization": "Bearer " + mint_token("auditor", "x-agency")},
        {"Authorization": "Bearer " + mint_token("investigator", None)},
        {"Authorization": "Bearer " + mint_token("investigator", "no-such-agency-anywhere")},
        {"Authorization": "Bearer " + mint_token("investigator", "x", ttl_s=-120)},
    ],
)
def test_bad_credentials_are_refused_as_by_fastapis_handler(in_process: Any, headers: dict[str, str]) -> None:
    # A bad parameter too: the credential is judged first, whatever else is wrong.
    lean, stock = _both(in_process, "GET", "/v1/cameras/radius", {**R, "radius_m": "-1"}, headers)
    assert lean[0] in (401, 403), lean
    assert lean == stock


def test_a_verified_principal_is_remembered_until_its_token_expires() -> None:
    s = get_settings()
    token = mint_token("investigator", "mke", ttl_s=2)
    first = verified_principal(token, s)
    assert verified_principal(token, s) is first  # remembered
    assert verified_principal(token, Settings()) is not first  # not for other settings
    with pytest.raises(auth_mod.Problem) as refused:
        verified_principal(token, Settings(CANVASS_ALLOW_HS256=False))
    assert refused.value.status == 401
    time.sleep(2.1)
    # Past `exp` the token is verified again (it still passes within PyJWT's 30 s leeway) and not kept.
    again = verified_principal(token, s)
    assert again is not first
    assert auth_mod.token_key(token) not in auth_mod.principal_cache


def test_a_refused_token_is_not_remembered() -> None:
    s = get_settings()
    bad = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60}, "not-the-secret-key-of-this-deployment", algorithm="HS256"
    )
    with pytest.raises(auth_mod.Problem):
        verified_principal(bad, s)
    assert auth_mod.token_key(bad) not in auth_mod.principal_cache


def test_the_principal_cache_is_bounded() -> None:
    s = get_settings()
    for i in range(auth_mod.PRINCIPAL_CACHE_SIZE + 50):
        verified_principal(mint_token("cad", "mke", sub=f"bounded-{i}"), s)
    assert len(auth_mod.principal_cache) <= auth_mod.PRINCIPAL_CACHE_SIZE


def test_the_principal_cache_keeps_no_bearer_token() -> None:
    s = get_settings()
    token = mint_token("cad", "mke", sub="kept-by-hash")
    verified_principal(token, s)
    assert auth_mod.token_key(token) in auth_mod.principal_cache
    assert all(isinstance(k, bytes) and len(k) == 32 for k in auth_mod.principal_cache)
    assert token not in auth_mod.principal_cache
