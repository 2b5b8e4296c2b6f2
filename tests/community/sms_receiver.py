"""A local SMS provider for the tests: it answers the Messages API as Twilio does, after checking each request as
Twilio would (the account in the path, HTTP Basic with the account SID and auth token, a form body with an E.164
`To`, the configured `From`, a `Body` within 1,600 characters), and keeps what it accepted. It can be told to
fail the next requests for a number with 503, as a provider having a bad minute."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import HTTPServer
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tests.support import QuietHandler

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "receiver-auth-token-0123456789abcdef"
FROM = "+14145550100"
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass
class SmsReceiver:
    messages: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)
    # A number -> (set when its request arrived, the event that lets the answer go): the sender is held mid-send.
    hold: dict[str, tuple[threading.Event, threading.Event]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                status, body = receiver.handle(self.path, dict(self.headers), self.rfile.read(int(self.headers.get("content-length") or 0)))  # fmt: skip
                data = orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {
            "CANVASS_SMS_API_URL": self.url,
            "CANVASS_SMS_ACCOUNT_SID": ACCOUNT_SID,
            "CANVASS_SMS_AUTH_TOKEN": AUTH_TOKEN,
            "CANVASS_SMS_FROM": FROM,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.refused.append(message)
        return status, {"code": code, "message": message, "status": status}

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
        headers = {k.lower(): v for k, v in headers.items()}
        if path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return self._error(404, 20404, f"unknown resource {path}")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if headers.get("authorization") != expected:
            return self._error(401, 20003, "authentication failed")
        if headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self._error(400, 21600, "the body must be a form")
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
        if set(form) != {"To", "From", "Body"}:
            return self._error(400, 21601, f"unexpected parameters {sorted(form)}")
        if not E164.fullmatch(form["To"]):
            return self._error(400, 21211, "invalid To number")
        if form["From"] != FROM:
            return self._error(400, 21606, "From is not a number of this account")
        if not 0 < len(form["Body"]) <= 1600:
            return self._error(400, 21617, "Body is empty or longer than 1600 characters")
        held = self.hold.pop(form["To"], None)
        if held is not None:
            arrived, release = held
            arrived.set()
            release.wait(30)
        with self.lock:
            left = self.fail_next.get(form["To"], 0)
            if left:
                self.fail_next[form["To"]] = left - 1
                return 503, {"code": 20500, "message": "service unavailable", "status": 503}
            sid = "SM" + uuid.uuid4().hex
            self.messages.append({"sid": sid, "to": form["To"], "body": form["Body"]})
        return 201, {"sid": sid, "status": "queued", "to": form["To"], "from": FROM, "body": form["Body"]}

    def to(self, number: str) -> list[dict[str, str]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == number]
