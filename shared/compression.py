"""Gzip of large answers, for clients that accept it: a map of the registry (thousands of Features, megabytes of
GeoJSON) shrinks several times over, while the small answers of a search are sent as they are (compressing a few
KiB costs more CPU than it saves on the wire).

An answer of at least GZIP_MIN_BYTES in one body is compressed; a streamed answer (a large page, sent as it is
read) is compressed as it goes. Chunks of 128 KiB or more are compressed off the event loop. A client that does
not send `Accept-Encoding: gzip` gets the answer unchanged; every compressed answer says `Vary: Accept-Encoding`.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

# Above the nearest / bbox / radius answers of an ordinary search (a few to ~20 KiB) and below a page of a few
# hundred Features.
GZIP_MIN_BYTES = 32 * 1024
# Level 5: GeoJSON compresses about as well as at 9 for a fraction of the CPU.
GZIP_LEVEL = 5


def install_compression(app: FastAPI) -> None:
    """Gzip the app's large answers. Added last, so outermost: what it compresses is the final answer, CORS and
    policy headers included."""
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
