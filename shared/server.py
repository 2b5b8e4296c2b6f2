"""The HTTP server protocol every service runs under (uvicorn's httptools protocol with Canvass's limits).

A request whose target is longer than MAX_TARGET_BYTES answers 414, one whose header section is larger than
MAX_HEADER_BYTES or has more than MAX_HEADERS fields answers 431, and any other request the parser cannot read
answers 400 — each as an `application/problem+json` document with `nosniff` and an `X-Request-ID`, where uvicorn
would send a text/plain 400 (or, for headers, accept any size). These requests never reach the application, so
the refusal is written here, and the connection is closed.

Selected with `uvicorn --http shared.server:HttpProtocol` (UVICORN_HTTP in the image; `make run` and the tests
pass it, in `uvicorn_command`, with the CANVASS_WORKERS worker processes).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from shared.settings import Settings

UVICORN_HTTP = "shared.server:HttpProtocol"
MAX_TARGET_BYTES = 16 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100

_REFUSALS = {
    400: ("bad-request", "Bad Request", "The request could not be read as HTTP/1.1."),
    414: (
        "uri-too-long",
        "URI Too Long",
        f"The request target is longer than {MAX_TARGET_BYTES:,} bytes; send large inputs in a body.",
    ),
    431: (
        "request-header-fields-too-large",
        "Request Header Fields Too Large",
        f"The request's headers are larger than {MAX_HEADER_BYTES:,} bytes or more than {MAX_HEADERS} fields.",
    ),
}


def uvicorn_command(app: str, host: str, port: int, env: Mapping[str, str]) -> list[str]:
    """How `make run` and the tests start a service: this interpreter's uvicorn with Canvass's protocol and the
    worker processes `env` asks for (CANVASS_WORKERS; docker-compose gives uvicorn WEB_CONCURRENCY instead)."""
    workers = int(env.get("CANVASS_WORKERS") or Settings.model_fields["workers"].default)
    server = ["--http", UVICORN_HTTP, "--host", host, "--port", str(port), "--workers", str(workers)]
    return [sys.executable, "-m", "uvicorn", app, *server]


class _Refused(Exception):
    pass


class HttpProtocol(HttpToolsProtocol):
    _refusal: int | None = None
    _header_bytes = 0
    _header_count = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal = None
        self._header_bytes = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self._refusal = 414
            raise _Refused  # the parser stops, and uvicorn answers through send_400_response

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_bytes > MAX_HEADER_BYTES or self._header_count > MAX_HEADERS:
            self._refusal = 431
            raise _Refused
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        status = self._refusal or 400
        kind, title, detail = _REFUSALS[status]
        body = orjson.dumps({"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail})
        head = [f"HTTP/1.1 {status} {title}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-content-type-options: nosniff\r\n",
            b"x-request-id: " + uuid.uuid4().hex.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(head))
        self.transport.close()
