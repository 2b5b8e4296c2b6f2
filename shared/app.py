"""The application factory every service is built with.

It wires what each service must have the same way: problem+json error handlers, request ids and JSON logs,
a request body size limit, `/healthz` and `/readyz`, an OpenAPI document in which every operation lists
its problem responses, and the garbage collector's policy under load.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.exceptions import HTTPException
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import AgencyLookup
from shared.cors import install_cors
from shared.errors import ProblemDetail, install_error_handlers, problem_response, problem_responses
from shared.geojson import JSONResponse
from shared.http import HttpPolicyMiddleware, request_rules
from shared.inputs import not_null
from shared.logging import RequestContextMiddleware, configure_logging
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
API_VERSION = "1.0.0"

# A request allocates thousands of short-lived objects, nearly all freed by reference counting: the young
# generation is collected every 20,000 allocations instead of 700, and what exists when the service starts (its
# modules, routes, models: it lives as long as the process) is frozen out of the collector, which otherwise walks
# all of it on each full collection while every request in flight waits. registry_api under 16 clients: p99 of a
# registration 70-85 -> 22-23 ms, its CPU per registration -10 %.
GC_THRESHOLDS = (20_000, 20, 20)


def _with_gc_policy(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The service's lifespan, started under the collector's policy (a service may set its own in its lifespan)."""

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        async with lifespan(app):
            yield

    return _lifespan


@lru_cache
def migration_head() -> str | None:
    """The head revision of the one Alembic tree, read from the migrations folder."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(cfg).get_current_head()


class BodyLimitMiddleware:
    """Refuses request bodies over the limit with 413, by Content-Length or while streaming; and an encoded body
    (a Content-Encoding other than identity: no operation decodes one) with 415 and `Accept-Encoding: identity`
    (RFC 7694), before anything reads it as a malformed body."""

    def __init__(self, app: ASGIApp, default_limit: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        framed = False  # the request says it has a body (Content-Length or Transfer-Encoding)
        # Every coding named, in one header or in several (which HTTP reads as one comma-separated list: `gzip`
        # then `identity` is a gzip body): one header's value alone would let the others through.
        codings: list[bytes] = []
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                declared, framed = value, True
            elif name == b"transfer-encoding":
                framed = True
            elif name == b"content-encoding":
                codings += (c.strip().lower() for c in value.split(b","))
        if not framed:  # no body to count (HTTP/1.1 frames every body with one of them): nothing to watch
            await self.app(scope, receive, send)
            return
        encoded = [c for c in codings if c not in (b"", b"identity")]
        if encoded and declared != b"0":
            await problem_response(
                415,
                "This operation takes its body as it is (no Content-Encoding), "
                f"not encoded as {b', '.join(encoded).decode('latin-1')!r}.",
                headers={"Accept-Encoding": "identity"},
            )(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))

        def too_large() -> Response:  # built only when it is needed: most requests are small
            return problem_response(413, _TooLarge(limit).detail)

        if declared is not None:
            try:
                if int(declared) > limit:
                    await too_large()(scope, receive, send)
                    return
            except ValueError:
                await problem_response(400, "Content-Length is not a number.")(scope, receive, send)
                return
        received = 0
        started = False

        async def _receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _TooLarge:
            if not started:
                await too_large()(scope, receive, send)


class _TooLarge(HTTPException):
    """Raised from the body's stream: an HTTPException, so that whoever reads the body (FastAPI's JSON or form
    parsing, which turns any other error into "error parsing the body", or a route streaming it) lets it through
    to the problem handler as the 413 it is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the {limit:,} bytes this operation accepts.")


@dataclass(frozen=True)
class ReplicaLag:
    """Whether a service's database is a streaming replica (in recovery) and, if so, its replay lag in seconds
    (None: unknown)."""

    standby: bool
    seconds: float | None


def health_router(
    db_revision: Callable[[], Awaitable[str | None]],
    replica_lag: Callable[[], Awaitable[ReplicaLag]] | None = None,
) -> APIRouter:
    """`replica_lag`: for a service that may read a streaming replica (geo_query), whether its database is one and
    how far its replay lags; /readyz reports it and fails beyond GEO_QUERY_MAX_REPLICA_LAG_S."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers",
        response_model=dict[str, str],
        responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
    )
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    # Only a service that may read a replica says so in its contract; the others' stays as it was.
    ready_example: dict[str, Any] = {"status": "ready", "revision": "0001"}
    readiness = "Readiness: the database answers and its schema is at the migrations' head"
    if replica_lag is not None:
        ready_example["replica_lag_s"] = 0.0
        readiness += "; a replica is not too far behind"

    @router.get(
        "/readyz",
        summary=readiness,
        description=None
        if replica_lag is None
        else "Reading a streaming replica, the answer also gives its replay lag in seconds (`replica_lag_s`), "
        "and is a 503 problem when the lag is beyond GEO_QUERY_MAX_REPLICA_LAG_S or unknown, so that a load "
        "balancer routes searches to another replica.",
        response_model=dict[str, str | None] if replica_lag is None else dict[str, str | float | None],
        responses={
            200: {"content": {"application/json": {"example": ready_example}}},
            **problem_responses(503),
        },
    )
    async def readyz() -> Response:
        head = migration_head()
        try:
            current = await db_revision()
        except Exception:
            return problem_response(503, "The database is not reachable.", kind="unavailable")
        if current != head:
            return problem_response(
                503,
                f"The database schema is at {current or 'no revision'}, the code expects {head}: run migrations.",
                kind="unavailable",
            )
        body: dict[str, str | float | None] = {"status": "ready", "revision": current}
        if replica_lag is not None:
            try:
                lag = await replica_lag()
            except Exception:
                return problem_response(503, "The database is not reachable.", kind="unavailable")
            if lag.standby:
                limit = get_settings().geo_query_max_replica_lag_s
                if lag.seconds is None:
                    return problem_response(
                        503,
                        "The replica's replay lag is unknown: it has replayed nothing it received since it started.",
                        kind="unavailable",
                        extra={"replica_lag_s": None},
                    )
                if lag.seconds > limit:
                    return problem_response(
                        503,
                        f"The replica is {lag.seconds:.1f} s behind the primary, more than the {limit:g} s allowed.",
                        kind="unavailable",
                        extra={"replica_lag_s": lag.seconds},
                    )
                body["replica_lag_s"] = lag.seconds
        return JSONResponse(body)

    return router


# FastAPI's native OpenTelemetry, off (see create_app).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    db_revision: Callable[[], Awaitable[str | None]],
    routers: list[APIRouter],
    tags: list[dict[str, str]],
    body_limits: dict[str, int] | None = None,
    agency_known: AgencyLookup | None = None,
    replica_lag: Callable[[], Awaitable[ReplicaLag]] | None = None,
) -> FastAPI:
    """The service's app. `agency_known(slug)` says whether Canvass knows an agency: a token speaking for any
    other is refused with 403 on every operation (see shared/auth.py)."""
    settings = get_settings()
    configure_logging(service, settings.log_level)
    app = FastAPI(
        title=title,
        description=description,
        version=API_VERSION,
        lifespan=_with_gc_policy(lifespan),
        openapi_tags=[*tags, {"name": "health", "description": "Liveness and readiness probes"}],
        default_response_class=JSONResponse,
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
        # Query strictness and request media types, for every route (see shared/http.py).
        dependencies=[Depends(request_rules)],
        # FastAPI's native OpenTelemetry asks the global providers on every request whether one is configured
        # (about 15 µs a search); Canvass configures none and reports through its logs and audit trail.
        telemetry=NO_TELEMETRY,
    )
    app.state.agency_known = agency_known
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes, limits=body_limits)
    app.add_middleware(HttpPolicyMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_cors(app)  # outermost: every answer, refusals included, carries the CORS headers
    app.include_router(health_router(db_revision, replica_lag))
    for r in routers:
        app.include_router(r)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


_COMMON_PROBLEMS = (400, 422, 500)
# What the shared rules answer with these statuses on every operation (see shared/http.py and shared/errors.py).
_DESCRIPTIONS = {
    "400": "Bad request: an unknown, repeated or invalid query parameter, or a body that is not well-formed",
    "413": "The request body is over the operation's size limit",
    "415": "The request body is not of a media type the operation takes, or is encoded (Content-Encoding)",
    "422": "A path parameter or a member of the (well-formed) body is invalid",
}


# Every text a service takes refuses NUL (PostgreSQL cannot store it): said on each string without a pattern, format
# or fixed values of its own.
NO_NUL = "^[^\\u0000]*$"


def _no_nul(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _no_nul(item)
    elif isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
            node["pattern"] = NO_NUL
        for key, value in node.items():
            if key not in ("examples", "example", "default"):
                _no_nul(value)


def _referenced(node: Any, components: dict[str, Any]) -> set[str]:
    """The component schemas `node` refers to, directly or through others."""
    seen: set[str] = set()
    todo = [node]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            ref = item.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen and name in components:
                    seen.add(name)
                    todo.append(components[name])
            todo.extend(item.values())
    return seen


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The published contract: FastAPI's document, with every operation's problem responses in
    `application/problem+json` (FastAPI's default 422 schema is not what the service sends)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        license_info=app.license_info,
        servers=[{"url": "/"}],
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ProblemDetail"] = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schemas["ProblemDetail"].pop("$defs", {})
    schemas.update(defs)
    for path_item in schema.get("paths", {}).values():
        for method, op in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for param in op.get("parameters", []):
                # A header or query parameter is absent or a string, never `null`: a client told it may be sends
                # the text "null".
                if param.get("in") in ("header", "query") and "schema" in param:
                    param["schema"] = not_null(param["schema"])
            responses = op.setdefault("responses", {})
            has_input = bool(op.get("parameters") or op.get("requestBody"))
            wanted = [s for s in _COMMON_PROBLEMS if has_input or s == 500]
            if op.get("requestBody"):
                wanted += [413, 415]  # every body has a size limit and a media type (shared/http.py)
            for status, spec in problem_responses(*wanted).items():
                key = str(status)
                if key == "422" or key not in responses:
                    responses[key] = spec
                if key in _DESCRIPTIONS:
                    responses[key]["description"] = _DESCRIPTIONS[key]
            # Every operation says who may call it: one that names no scheme is public (`security: []`).
            op.setdefault("security", [])
            if op.get("security") and "401" not in responses:
                responses.update({str(k): v for k, v in problem_responses(401).items()})
    # A webhook is a request this service sends: the receiver's answers are not this service's problems, and it
    # carries no bearer token (the receiver checks its HMAC signature header instead).
    for path_item in schema.get("webhooks", {}).values():
        for op in path_item.values():
            op.get("responses", {}).pop("422", None)
            op.setdefault("security", [])
    # On what clients send only: an answer may quote a NUL it was sent (a problem's detail names the bad value).
    inputs = [
        part
        for path_item in schema.get("paths", {}).values()
        for op in path_item.values()
        for part in (op.get("parameters", []), op.get("requestBody", {}))
    ]
    components = schema.get("components", {}).get("schemas", {})
    for name in _referenced(inputs, components):
        _no_nul(components[name])
    _no_nul(inputs)
    app.openapi_schema = schema
    return schema
