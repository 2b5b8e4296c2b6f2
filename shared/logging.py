"""Structured JSON logs, one line per event, each carrying the request id of the request it belongs to."""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import sys
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    access_log.service, access_log.stream = service, handler.stream
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Replaced by our access line (AccessLog). Without a handler of its own or its ancestors', uvicorn's protocol
    # does not even build its line's arguments (the client's address, the quoted path) for each request.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.disabled = True
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)  # readiness reads the migration head


class AccessLog:
    """The access line of each request: the same JSON line JsonFormatter writes for a record of `canvass.access`,
    written to the same stream, while that logger is enabled for INFO (the default level).

    Built directly, without the logging machinery's per-record work (a LogRecord, the caller's frame, handler
    locks, the formatter: about 40 µs a request, a tenth of a search's CPU), and written once per turn of the
    event loop with every line of that turn (one write instead of one per request). A line is on the stream
    before the loop waits for the next event, so it may follow a log line of a request that finished later."""

    def __init__(self) -> None:
        self.service = ""
        self.stream: Any = None  # the log handler's stream (standard error until logging is configured)
        self.logger = logging.getLogger("canvass.access")
        self._lines: list[bytes] = []

    def request(
        self, method: str | None, path: str | None, status: int, duration_ms: float, rid: str
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        line = {
            "ts": _timestamp(time.time()),
            "level": "info",
            "service": self.service,
            "logger": self.logger.name,
            "msg": "request",
            "request_id": rid,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        }
        self._lines.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: written at once
                self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            stream = self.stream or sys.stderr
            stream.write(b"".join(lines).decode())
            stream.flush()


access_log = AccessLog()
atexit.register(access_log.flush)


class RequestContextMiddleware:
    """Assigns a request id (honouring a sane incoming X-Request-ID), echoes it, and logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        rid = (
            incoming if 0 < len(incoming) <= 64 and incoming.replace("-", "").isalnum() else uuid.uuid4().hex
        )
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            access_log.request(
                scope.get("method"),
                scope.get("path"),
                status,
                round((time.perf_counter() - start) * 1000, 2),
                rid,
            )
            request_id_var.reset(token)
