"""Load over HTTP with `wrk`, and the requests geo_query and tipg are asked.

geo_query's routes are discovered from its OpenAPI document at bench time (path and parameter names), so the bench
measures whatever of radius / nearest / bbox / polygon the running service has, and says "not available" for the
rest. wrk runs a generated Lua script that rotates through the pre-built requests of one shape (each thread from
its own offset) with the Authorization header, bounded in time; its `done` hook prints the latency percentiles and
the error counts as one JSON line.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.queries import NEAREST_K, RADIUS_M, ROUTE_BUFFER_M, ROUTE_START, Query, Shape
from bench.settings import WORK


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # with its query string
    body: str | None = None


@dataclass(frozen=True)
class Route:
    """How one shape is asked of a server: which role's token, and the request for each query."""

    method: str
    path: str
    role: str
    build: Callable[[Query], HttpRequest]


@dataclass
class Cell:
    """One measured cell: a shape, on a layout, at a client count, against one system."""

    system: str
    layout: str
    shape: str
    clients: int
    requests: int = 0
    seconds: float = 0.0
    p50: float = 0.0  # ms
    p95: float = 0.0
    p99: float = 0.0
    errors: int = 0
    note: str = ""
    other_cpu: float = 0.0  # share of the cores other work on the machine used meanwhile
    # CPU µs per request of the server's process (raw: the driver, this process) and of the PostgreSQL
    # backends serving the bench database (the audit record's included): what a change on the path costs
    cpu_us: tuple[float, float] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# ------------------------------------------------------------------------------------------- geo_query's routes


def _params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _find(
    doc: dict[str, Any], method: str, preferred: tuple[str, ...], needs: Callable[[set[str]], bool]
) -> tuple[str, dict[str, Any]] | None:
    """An operation on /v1/cameras...: the first preferred path that has it, else any whose parameters fit."""
    paths: dict[str, Any] = doc.get("paths", {})
    for p in preferred:
        op = paths.get(p, {}).get(method)
        if op is not None and needs(_params(op)):
            return p, op
    for p, item in sorted(paths.items()):
        op = item.get(method)
        if op is not None and p.startswith("/v1/cameras") and "{" not in p and needs(_params(op)):
            return p, op
    return None


def _get(path: str, params: dict[str, Any]) -> HttpRequest:
    return HttpRequest("GET", f"{path}?{urlencode(params)}")


def geo_routes(doc: dict[str, Any], shapes: tuple[Shape, ...]) -> dict[str, Route | str]:
    """For each shape, geo_query's route for it, or why it cannot be measured yet."""
    out: dict[str, Route | str] = {}
    for shape in shapes:
        out[shape.key] = _geo_route(doc, shape) or "not available (no such route in geo_query's OpenAPI yet)"
    return out


def _geo_route(doc: dict[str, Any], shape: Shape) -> Route | None:
    kind = shape.key.rstrip("0123456789").removesuffix("_cad")
    if kind == "nearest":
        found = _find(doc, "get", ("/v1/cameras/nearest",), lambda ps: {"lon", "lat", "k"} <= ps)
        if not found:
            return None
        path = found[0]
        return Route("GET", path, "cad", lambda q: _get(path, {"lon": q.lon, "lat": q.lat, "k": NEAREST_K}))
    if kind == "radius":
        found = _find(
            doc,
            "get",
            ("/v1/cameras/radius", "/v1/cameras/near"),
            lambda ps: {"lon", "lat"} <= ps and bool(ps & {"radius_m", "radius"}),
        )
        if not found:
            return None
        path, op = found
        ps = _params(op)
        rname = "radius_m" if "radius_m" in ps else "radius"
        limit = {"limit": shape.limit} if "limit" in ps and shape.limit else {}
        role = "cad" if shape.cad else "investigator"
        return Route(
            "GET", path, role, lambda q: _get(path, {"lon": q.lon, "lat": q.lat, rname: RADIUS_M, **limit})
        )
    if kind == "bbox":
        found = _find(doc, "get", ("/v1/cameras/bbox", "/v1/cameras"), lambda ps: "bbox" in ps)
        if not found:
            return None
        path, op = found
        limit = {"limit": shape.limit} if "limit" in _params(op) and shape.limit else {}
        return Route(
            "GET",
            path,
            "investigator",
            lambda q: _get(path, {"bbox": ",".join(f"{v}" for v in q.bbox), **limit}),
        )
    if kind == "polygon":
        found = _find(doc, "post", ("/v1/cameras/area", "/v1/cameras/within"), lambda ps: True)
        if not found or "requestBody" not in found[1]:
            return None
        path, op = found
        content: dict[str, Any] = op["requestBody"].get("content", {})
        media: dict[str, Any] = next(iter(content.values()), {})
        schema = _resolve(doc, media.get("schema", {}))
        props = schema.get("properties", {})
        wrap = next((k for k in ("area", "geometry", "polygon", "within") if k in props), None)
        qs = f"?{urlencode({'limit': shape.limit})}" if "limit" in _params(op) and shape.limit else ""

        def build(q: Query) -> HttpRequest:
            geom = q.hexagon
            return HttpRequest(
                "POST", path + qs, json.dumps({wrap: geom} if wrap else geom, separators=(",", ":"))
            )

        return Route("POST", path, "investigator", build)
    if kind == "route":
        found = _find(doc, "post", ("/v1/cameras/route",), lambda ps: True)
        if not found or "requestBody" not in found[1]:
            return None
        path, op = found
        route_qs = f"?{urlencode({'limit': shape.limit})}" if "limit" in _params(op) and shape.limit else ""

        def build_route(q: Query) -> HttpRequest:
            body = {
                "path": {"type": "LineString", "coordinates": q.route},
                "buffer_m": ROUTE_BUFFER_M,
                "start": ROUTE_START,
                "speed": "driving",
            }
            return HttpRequest("POST", path + route_qs, json.dumps(body, separators=(",", ":")))

        return Route("POST", path, "investigator", build_route)
    return None


def tipg_route(collection: str) -> Route:
    path = f"/collections/{collection}/items"
    return Route(
        "GET",
        path,
        "none",
        lambda q: _get(path, {"bbox": ",".join(f"{v}" for v in q.bbox), "limit": 100}),
    )


def pygeoapi_route(collection: str) -> Route:
    path = f"/collections/{collection}/items"
    return Route(
        "GET",
        path,
        "none",
        lambda q: _get(path, {"bbox": ",".join(f"{v}" for v in q.bbox), "limit": 100, "f": "json"}),
    )


# ------------------------------------------------------------------------------------------------------- wrk

# wrk's report, one JSON line the bench reads (a %-template piece: % doubled).
LUA_DONE = """function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"max":%%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

_LUA = (
    """
-- Generated by bench/http.py: rotate through one shape's requests, print the figures as JSON.
local raw = {
%(requests)s
}
local get_headers = %(get_headers)s
local post_headers = %(post_headers)s
local reqs = {}
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  for i, r in ipairs(raw) do
    local h = get_headers
    if r[3] then h = post_headers end
    reqs[i] = wrk.format(r[1], r[2], h, r[3])
  end
  idx = ((tid or 1) - 1) * 37 %% #reqs
end

function request()
  idx = idx %% #reqs + 1
  return reqs[idx]
end

"""
    + LUA_DONE
)


def _lua_str(s: str) -> str:
    level = "=" * 3
    assert f"]{level}]" not in s
    return f"[{level}[{s}]{level}]"


def _lua_headers(headers: dict[str, str]) -> str:
    # The spaces matter: `[[` would open a long string.
    return "{" + ", ".join(f"[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in headers.items()) + "}"


def write_script(name: str, requests: list[HttpRequest], headers: dict[str, str]) -> Path:
    lines = ",\n".join(
        f"  {{{_lua_str(r.method)}, {_lua_str(r.path)}, {_lua_str(r.body) if r.body is not None else 'nil'}}}"
        for r in requests
    )
    post = {**headers, "Content-Type": "application/json"}
    script = WORK / "wrk" / f"{name}.lua"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        _LUA % {"requests": lines, "get_headers": _lua_headers(headers), "post_headers": _lua_headers(post)}
    )
    return script


def run_wrk(
    base_url: str, script: Path, clients: int, seconds: float, cell: Cell, *, warm_seconds: int = 0
) -> Cell:
    """Load `base_url` (loopback only) for `seconds` with `clients` connections; fill `cell` in. With
    `warm_seconds`, a run of that length at the same concurrency comes first and is not counted: the server's
    connections, pools and caches are then those of a service under this load (steady state), as they are for
    the raw driver, whose pools are opened in full before its cells."""
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"wrk only loads this machine, not {host}")
    if warm_seconds:
        run_wrk(base_url, script, clients, warm_seconds, Cell(cell.system, cell.layout, cell.shape, clients))
    threads = min(clients, 2)  # two cores: more wrk threads would only steal CPU from the server
    duration = max(1, math.ceil(seconds))
    proc = subprocess.run(  # noqa: S603 - fixed argv, loopback target checked above
        [
            shutil.which("wrk") or "/usr/bin/wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        cell.note = f"wrk failed: {(proc.stderr or proc.stdout).strip()[-200:]}"
        return cell
    r = json.loads(line[len("WRKJSON ") :])
    cell.requests = int(r["requests"])
    cell.seconds = r["duration_us"] / 1e6
    cell.p50, cell.p95, cell.p99 = r["p50"] / 1000, r["p95"] / 1000, r["p99"] / 1000
    cell.errors = int(r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"])
    if cell.errors:
        cell.note = (
            f"{cell.errors} errors (non-2xx {r['status']}, timeouts {r['timeout']}, read {r['read']},"
            f" connect {r['connect']})"
        )
    return cell
