"""Which browser origins may call the API services (CORS): the Canvass portal's, and any other front-end the
deployment names in CANVASS_CORS_ORIGINS (comma-separated origins). In development and test, without it, the
local portal's own origin (127.0.0.1 and localhost on PORTAL_PORT, 8000 by default). An origin not named gets
no CORS headers at all, so its pages cannot read any answer."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from shared.settings import get_settings

# What the portal sends: the owner's credential or an agency token, If-Match on every change, Idempotency-Key
# on a registration, JSON bodies; and what its pages must read back (the version to send as If-Match).
ALLOWED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "Idempotency-Key",
    "Accept",
    "Accept-Language",
    "X-Tip-Code",  # community_api: the tipster's code
    "X-Subscription-Token",  # community_api: the subscriber's manage token
]
EXPOSED_HEADERS = ["ETag", "Location", "Link", "Retry-After", "X-Request-ID"]


class _ConfiguredOriginsOnly(CORSMiddleware):
    """Starlette's CORS, except that an answer to an origin not configured carries no CORS header at all
    (Starlette adds Access-Control-Expose-Headers to every answer that has an Origin)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A request without an Origin (every client but a browser's cross-origin call) gets no CORS header:
        # passed on without building its headers' mapping first.
        if scope["type"] == "http" and not any(name == b"origin" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def simple_response(
        self, scope: Scope, receive: Receive, send: Send, request_headers: Headers
    ) -> None:
        origin = request_headers.get("origin")
        if origin is None or not self.is_allowed_origin(origin=origin):
            await self.app(scope, receive, send)
            return
        await super().simple_response(scope, receive, send, request_headers)


def install_cors(app: FastAPI) -> None:
    """Adds Starlette's CORS middleware for the configured origins (outside every other middleware, so refusals
    such as a 413 carry the headers the browser needs to show them)."""
    settings = get_settings()
    configured = settings.cors_origins
    if configured is not None:
        origins = [o.strip().rstrip("/") for o in configured.split(",") if o.strip()]
    elif settings.env in ("development", "test"):
        port = settings.portal_port
        origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    else:
        origins = []
    if not origins:
        return
    app.add_middleware(
        _ConfiguredOriginsOnly,
        allow_origins=origins,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=600,
    )
