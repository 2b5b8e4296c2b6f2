"""The access line (shared/logging.py): one JSON line per request, in the shape of every other log line, with the
request's id, written without waiting for another request, and nothing at all when INFO is not logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from shared.logging import JsonFormatter, RequestContextMiddleware, access_log, configure_logging


async def _teapot(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"short and stout"})


@pytest.fixture
def logging_at() -> Iterator[object]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure(level: str) -> None:
        configure_logging("testing", level)

    yield configure
    root.handlers[:], root.level = handlers, level


def _requests(n: int) -> None:
    app = RequestContextMiddleware(_teapot)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            await asyncio.gather(
                *(c.get(f"/pot/{i}", headers={"X-Request-ID": f"rid-{i}"}) for i in range(n))
            )
        for _ in range(100):  # the lines are written when the loop turns: never later than that
            if not access_log._lines:
                break
            await asyncio.sleep(0)

    asyncio.run(go())


def test_each_request_writes_one_access_line_like_every_log_line(
    logging_at: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logging_at("INFO")  # type: ignore[operator]
    _requests(5)
    lines = [orjson.loads(v) for v in capsys.readouterr().err.splitlines()]
    lines = [v for v in lines if v["logger"] == "canvass.access"]  # httpx logs its requests too
    assert sorted(v["request_id"] for v in lines) == [f"rid-{i}" for i in range(5)]
    record = logging.LogRecord("canvass.access", logging.INFO, __file__, 1, "request", None, None)
    shape = orjson.loads(JsonFormatter("testing").format(record))
    for v in lines:
        assert set(v) == set(shape) | {"request_id", "method", "path", "status", "duration_ms"}
        assert (v["service"], v["logger"], v["level"], v["msg"]) == (
            "testing",
            "canvass.access",
            "info",
            "request",
        )
        assert (v["method"], v["status"]) == ("GET", 418) and v["path"].startswith("/pot/")
        assert len(v["ts"]) == len(shape["ts"]) and v["ts"].endswith("Z")


def test_no_access_line_is_built_when_info_is_not_logged(
    logging_at: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logging_at("WARNING")  # type: ignore[operator]
    _requests(3)
    assert capsys.readouterr().err == ""


def test_uvicorns_own_access_line_is_neither_written_nor_built(logging_at: object) -> None:
    """Ours replaces uvicorn's: its logger is off and has no handler up its hierarchy, which is what uvicorn's
    protocol checks before it builds the line's arguments (the client's address, the quoted path) per request."""
    logging_at("INFO")  # type: ignore[operator]
    uvicorn_access = logging.getLogger("uvicorn.access")
    assert uvicorn_access.disabled
    assert not uvicorn_access.hasHandlers()
