"""The running agent: one outbound WebSocket to Canvass's relay (reconnected with backoff and jitter), FFmpeg for
a camera only while the relay asks for it *and* registry_api lists it in a window open now, a counter of the media
bytes sent per camera, and the local status and trigger endpoint on 127.0.0.1.

FFmpeg remuxes the camera's H.264 into fragmented MP4 without re-encoding (decision 0011), and each fragment is
mended so that every sample is one whole picture (fmp4.py) before it is sent. The camera's address and password
reach FFmpeg on a pipe, never on its command line; FFmpeg's messages are discarded, never logged: they can name
the camera's address."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from typing import Any

import httpx
import websockets

from canvass_edge.config import Config
from canvass_edge.fmp4 import BadStream, Mender

log = logging.getLogger("canvass_edge")
CHUNK = 64 * 1024
GUARD_S = 1.0  # how often the open windows are asked about while a camera streams
RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0
# FFmpeg reads the camera through its concat demuxer, from a one-entry script (ffconcat) that holds the camera's URL
# with its credentials and comes on FFmpeg's standard input. A command line is readable by every user of the box
# (`ps`, /proc/PID/cmdline), a pipe by the agent's user alone, and nothing is written to disk. FFmpeg 5.1 has no other
# way (the RTSP demuxer has no user or password option; `-/option file` came in FFmpeg 7.0). The demuxer hands on
# the camera's packets, time base and codec parameters as they are, its timestamps starting at nought as FFmpeg's
# own do: the remux is the same. Its protocols: the pipe, and TCP or TLS (rtsps) under RTSP over TCP.
FFMPEG_INPUT = ["-f", "concat", "-safe", "0", "-protocol_whitelist", "pipe,tcp,tls", "-i", "pipe:0"]
# A fragment starts at each keyframe, unless the fragment is shorter than 10 ms: the slices of one keyframe can come
# out of FFmpeg as samples a tick apart (fmp4.py), and must stay in one fragment to be joined there. 10 ms is far
# over those ticks and under a picture's duration (100 pictures a second), so a camera's fragments are unchanged.
FFMPEG_FMP4 = [
    *("-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-min_frag_duration", "10000"),
    "pipe:1",
]


def ffconcat(url: str) -> bytes:
    """The concat demuxer's script for one camera read over RTSP on TCP. The URL is one single-quoted token (a
    quote in it written '\\''); a line break would end the directive, and a camera's URL has none (config.py)."""
    token = "'" + url.replace("'", "'\\''") + "'"
    return f"ffconcat version 1.0\nfile {token}\noption rtsp_transport tcp\n".encode()


class Agent:
    def __init__(self, config: Config, credential: str) -> None:
        self.config = config
        self.credential = credential
        self.sent: dict[uuid.UUID, int] = dict.fromkeys(config.cameras, 0)
        self.streams: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.ws: Any = None
        self.connections = 0  # how many times the relay connection was made (a reconnect counts)
        self.http = httpx.AsyncClient(
            base_url=config.registry_url,
            headers={"Authorization": f"Bearer {credential}", "User-Agent": "canvass-edge/1"},
            timeout=httpx.Timeout(5.0, connect=3.0),
        )

    # --- what registry_api says ------------------------------------------------------------------------

    async def open_cameras(self) -> set[uuid.UUID]:
        r = await self.http.get("/v1/edge-agents/me/windows")
        r.raise_for_status()
        return {uuid.UUID(c) for w in r.json() for c in w["cameras"]}

    async def trigger(self) -> dict[str, Any]:
        """Open a window for the agencies and duration the owner configured, on the configured cameras."""
        t = self.config.trigger
        body: dict[str, Any] = {
            "reason": t.reason,
            "duration_s": t.duration_s,
            "cameras": [str(c) for c in self.config.cameras],
        }
        if t.agencies:
            body["agencies"] = t.agencies
        r = await self.http.post("/v1/edge-agents/me/live-windows", json=body)
        out: dict[str, Any] = r.json()
        if r.status_code != 201:
            raise TriggerFailed(out.get("detail", r.reason_phrase))
        return out

    # --- the relay -------------------------------------------------------------------------------------

    async def run(self) -> None:
        server = await asyncio.start_server(self._status_client, "127.0.0.1", self.config.status_port)
        async with server:
            await asyncio.gather(self._relay_forever(), self._guard_forever())

    async def _relay_forever(self) -> None:
        failures = 0
        while True:
            try:
                async with websockets.connect(
                    self.config.relay_url,
                    additional_headers={"Authorization": f"Bearer {self.credential}"},
                    ping_interval=10,
                    ping_timeout=10,
                    max_size=1024 * 1024,
                ) as ws:
                    self.ws = ws
                    self.connections += 1
                    failures = 0
                    log.info("connected to the relay")
                    await ws.send(
                        json.dumps({"type": "hello", "cameras": [str(c) for c in self.config.cameras]})
                    )
                    async for message in ws:
                        if isinstance(message, str):
                            await self._command(message)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                log.info("relay connection: %s", type(exc).__name__)
            finally:
                self.ws = None
                await self.stop_all()
            failures += 1
            # Exponential backoff with full jitter: after a relay restart, agents do not all come back at once.
            delay = min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2 ** min(failures - 1, 10))
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def _command(self, text: str) -> None:
        try:
            msg = json.loads(text)
            kind, camera_id = msg["type"], uuid.UUID(msg["camera_id"])
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ):  # AttributeError: an id that is not a string
            return
        if kind == "start":
            await self.start(camera_id)
        elif kind == "stop":
            await self.stop(camera_id)

    async def start(self, camera_id: uuid.UUID) -> None:
        """Stream the camera if it is configured here and in a window open now (asked of registry_api: the relay
        asking is not enough)."""
        if camera_id not in self.config.cameras or camera_id in self.streams:
            return
        try:
            if camera_id not in await self.open_cameras():
                log.info("camera %s is in no open window: not started", camera_id)
                return
        except httpx.HTTPError as exc:
            log.info("cannot confirm the window of camera %s: %s", camera_id, type(exc).__name__)
            return
        ws = self.ws
        if camera_id not in self.streams and ws is not None:
            # Said before the first byte: the relay takes the bytes after it as a new stream's start.
            await ws.send(json.dumps({"type": "started", "camera_id": str(camera_id)}))
            self.streams[camera_id] = asyncio.create_task(self._stream(camera_id))

    async def stop(self, camera_id: uuid.UUID) -> None:
        task = self.streams.pop(camera_id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop_all(self) -> None:
        for camera_id in list(self.streams):
            await self.stop(camera_id)

    async def _stream(self, camera_id: uuid.UUID) -> None:
        camera = self.config.cameras[camera_id]
        proc = await asyncio.create_subprocess_exec(
            self.config.ffmpeg,
            *("-nostdin", "-loglevel", "error", *FFMPEG_INPUT),
            *("-map", "0:v:0", "-c", "copy", "-an", *FFMPEG_FMP4),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        prefix = camera_id.bytes
        mender = Mender()
        try:
            # A few hundred bytes: the pipe takes them at once. If FFmpeg has already ended, its output ends too.
            with contextlib.suppress(OSError):
                proc.stdin.write(ffconcat(camera.source()))
                await proc.stdin.drain()
            proc.stdin.close()
            while chunk := await proc.stdout.read(CHUNK):
                data = mender.feed(chunk)
                for at in range(0, len(data), CHUNK):
                    piece = data[at : at + CHUNK]
                    ws = self.ws
                    if ws is None:
                        return
                    await ws.send(prefix + piece)
                    self.sent[camera_id] += len(piece)
        except BadStream:
            log.info("camera %s: FFmpeg's output is not a fragmented MP4 stream: stopped", camera_id)
            return
        except websockets.WebSocketException:
            return
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            if self.streams.get(camera_id) is asyncio.current_task():
                del self.streams[camera_id]

    async def _guard_forever(self) -> None:
        """While a camera streams, its window is asked about every second: one no longer open stops it, whatever
        the relay says."""
        while True:
            await asyncio.sleep(GUARD_S)
            if not self.streams:
                continue
            try:
                open_now = await self.open_cameras()
            except httpx.HTTPError:
                continue  # unconfirmed: the relay cuts its viewers on its own side too
            for camera_id in [c for c in self.streams if c not in open_now]:
                log.info("camera %s left its window: stopped", camera_id)
                await self.stop(camera_id)

    # --- the local endpoint ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.ws is not None,
            "connections": self.connections,
            "cameras": {
                str(c): {"streaming": c in self.streams, "bytes_sent": self.sent[c]}
                for c in self.config.cameras
            },
            "at": time.time(),
        }

    async def _status_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """`GET /status` (the counters) and `POST /trigger` (the owner's button): HTTP/1.1, 127.0.0.1 only, and
        only to a program of this machine, never to a web page (`_from_a_page`)."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            line, _, rest = head.decode("latin-1").partition("\r\n")
            method, path, _ = line.split(" ", 2)
            headers = _headers(rest)
            if _from_a_page(headers, self.config.status_port):
                status, body = (
                    403,
                    {"error": "only programs on this machine may call the agent, not web pages"},
                )
            elif method == "GET" and path == "/status":
                status, body = 200, self.status()
            elif method == "POST" and path == "/trigger":
                try:
                    status, body = 201, await self.trigger()
                except (TriggerFailed, httpx.HTTPError) as exc:
                    status, body = 502, {"error": str(exc) or type(exc).__name__}
            else:
                status, body = 404, {"error": "GET /status or POST /trigger"}
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, body = 400, {"error": "bad request"}
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()

    async def aclose(self) -> None:
        await self.stop_all()
        await self.http.aclose()


class TriggerFailed(Exception):
    pass


def _headers(text: str) -> dict[str, str]:
    """A request's header fields, by lower-case name (the last of a repeated one)."""
    out: dict[str, str] = {}
    for field in text.split("\r\n"):
        name, sep, value = field.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _from_a_page(headers: dict[str, str], port: int) -> bool:
    """Whether a request comes from a web page rather than from a program of this machine (curl, a button's
    script, `canvass-edge status`). Listening on 127.0.0.1 keeps other machines out, not the owner's own browser:
    any page it opens may send a POST to a loopback address without reading the answer, so a page could open a
    live window, sharing the owner's cameras, unasked. A browser names the page's origin (`Origin`, sent with
    every POST, and `Sec-Fetch-Site` when it is not the user's own navigation); and a page whose name was made to
    point at 127.0.0.1 (DNS rebinding) sends its own name as `Host`. Programs send neither, and `Host` is this
    address."""
    if "origin" in headers or headers.get("sec-fetch-site", "none") != "none":
        return True
    return headers.get("host", "").lower() not in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
