"""Gzip of large answers, for clients that accept it: a map of the registry (thousands of Features, megabytes of
GeoJSON) shrinks several times over, while the small answers of a search are sent as they are (compressing a few
KiB costs more CPU than it saves on the wire).

An answer of at least GZIP_MIN_BYTES in one body is compressed; a streamed answer (a large page, sent as it is
read) is compressed as it goes. Chunks of 128 KiB or more are compressed off the event loop. A client that does
not send `Accept-Encoding: gzip` gets the answer unchanged; every compressed answer says `Vary: Accept-Encoding`.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import Message, Receive, Scope, Send

# Above the nearest / bbox / radius answers of an ordinary search (a few to ~20 KiB) and below a page of a few
# hundred Features.
GZIP_MIN_BYTES = 32 * 1024
# Level 5: GeoJSON compresses about as well as at 9 for a fraction of the CPU.
GZIP_LEVEL = 5


class LargeAnswerGzip(GZipMiddleware):
    """Starlette's gzip, stepped out of the way of what it would send unchanged: a client that does not accept
    gzip, and an answer whose Content-Length is under the threshold, pass straight through (no buffering, no
    header rewriting), so the small answers of a search cost the same CPU as without it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        route: Send | None = None

        async def choose(message: Message) -> None:
            nonlocal route
            if route is None and message["type"] == "http.response.start":
                length = _content_length(message)
                if length is not None and length < self.minimum_size:
                    route = send
                else:  # built only for an answer it may compress (building one costs microseconds)
                    responder = GZipResponder(
                        self.app,
                        self.minimum_size,
                        compresslevel=self.compresslevel,
                        thread_minimum_size=self.thread_minimum_size,
                        exclude_content_types=self.exclude_content_types,
                    )
                    responder.send = send
                    route = responder.send_with_compression
            await (route or send)(message)

        await self.app(scope, receive, choose)


def _accepts_gzip(scope: Scope) -> bool:
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in scope["headers"])


def _content_length(start: Message) -> int | None:
    for name, value in start.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def install_compression(app: FastAPI) -> None:
    """Gzip the app's large answers. Added last, so outermost: what it compresses is the final answer, CORS and
    policy headers included."""
    app.add_middleware(LargeAnswerGzip, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
