"""The floor of Python serving geo_query's SQL over HTTP (`python -m bench.floor`): two apps that answer the bench's
search requests with the statements geo_query ran for each (captured from its application, as the raw driver
replays them), the Features joined into a FeatureCollection. No token, no scoping in Python, no validation beyond
the lookup, no audit record, no middleware:

- `bare`: a plain ASGI callable (no framework), the least an asyncio Python server can do per request;
- `minimal`: a FastAPI app with one route per search, its query parameters typed (as a FastAPI tutorial's
  endpoint would be), the same SQL.

Served by uvicorn as geo_query is (one worker, httptools, uvloop). `FLOOR_STATEMENTS`: the pickle of each request
path's statements; `FLOOR_URL`: the bench database, read-only, as the raw driver connects.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Response

from bench import raw
from bench.capture import Statement

STATEMENTS: dict[str, list[Statement]] = {}
_pool: asyncpg.Pool | None = None


def _load() -> None:
    STATEMENTS.update(pickle.loads(Path(os.environ["FLOOR_STATEMENTS"]).read_bytes()))  # noqa: S301 - our own file


async def _open() -> None:
    global _pool
    _load()  # at start-up, before any request: a few hundred KB
    _pool = await raw.connect(os.environ["FLOOR_URL"], 20)


async def _page(path: str, query: bytes) -> bytes | None:
    statements = STATEMENTS.get(path + "?" + query.decode("latin-1"))
    if statements is None or _pool is None:
        return None
    async with _pool.acquire() as conn:
        rows = await raw.run(conn, statements)
    features = ",".join(r["f"] for r in rows) if isinstance(rows, list) else ""
    return ('{"type":"FeatureCollection","features":[' + features + "]}").encode()


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b"ok" if scope["path"] == "/readyz" else await _page(scope["path"], scope["query_string"])
    status = 200 if body is not None else 404
    body = body or b""
    headers = [(b"content-type", b"application/geo+json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    await _open()
    yield
    if _pool is not None:
        await _pool.close()


minimal = FastAPI(lifespan=_lifespan)


@minimal.get("/readyz")
async def _ready() -> dict[str, bool]:
    return {"ok": True}


async def _answer(request: Request) -> Response:
    body = await _page(request.url.path, request.scope["query_string"])
    if body is None:
        return Response(status_code=404)
    return Response(body, media_type="application/geo+json")


@minimal.get("/v1/cameras/nearest")
async def _nearest(request: Request, lon: float, lat: float, k: int = 10) -> Response:
    return await _answer(request)


@minimal.get("/v1/cameras/bbox")
async def _bbox(request: Request, bbox: str, limit: int = 10) -> Response:
    return await _answer(request)


@minimal.get("/v1/cameras/radius")
async def _radius(request: Request, lon: float, lat: float, radius_m: float, limit: int = 10) -> Response:
    return await _answer(request)
