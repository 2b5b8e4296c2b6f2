"""The bad-input corpus: GeoJSON of wrong types, out-of-range and non-finite coordinates, positions of 4+ numbers,
unclosed and self-crossing rings, empty and huge geometries, deep nesting, 50 MB bodies (declared and chunked),
wrong content types, injection strings, NUL bytes, invalid UTF-8, unknown fields and wrong types, instants at the
calendar's edges (in queries, bodies and cursors), sent to every write and query endpoint of the three services
over real HTTP.

Every answer must be a 4xx `application/problem+json` (type, title, status, detail), never a 5xx; and the data must
be unchanged: a fingerprint of every table of the `registry` and `requests` schemas (row counts and an md5 of the
rows) is taken before and after, and the audit chain must still verify with no search audited. Where an injection
string is valid input (free text such as notes or a message) it is stored verbatim on objects made for that.
"""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import orjson

from tests.contract.conftest import Owner, Scene, polygon, request_body
from tests.contract.operations import Operation, contract, credentials, operations, real_ids
from tests.support import Db, open_owner_text

PROBLEM = "application/problem+json"
RAW = "\ue000raw\ue000"  # stands for a literal spliced into the serialised JSON (NaN, Infinity, 1e999)

INJECTIONS = [
    "'; DROP TABLE registry.cameras; --",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "../../etc/passwd",
    "nul\x00byte",
    "x" * 10_000,
]
QUERY_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "", "0x10", "1,5", "abc"]
QUERY_STRINGS = [*INJECTIONS, "%00", "%ff%fe", "%c0%af"]
# Instants at the calendar's edges written with offsets that carry them past it in UTC, the two the database driver
# reads as -infinity and infinity, and strings that are not RFC 3339 instants: refused wherever an instant is taken
# (a query parameter, a body member, or inside a paging cursor).
INSTANTS = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "2016-12-31T23:59:60Z",
    "2026-11-20T22:15:00",
    "1763676900",
    "2026-11-20",
]


# --- building the cases ----------------------------------------------------------------------------------


def bow_tie() -> dict[str, Any]:
    lon, lat = -87.9065, 43.0389
    d = 0.002
    ring = [[lon, lat], [lon + d, lat + d], [lon + d, lat], [lon, lat + d], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def unclosed() -> dict[str, Any]:
    ring = polygon(-87.91, 43.03, -87.90, 43.04)["coordinates"][0][:-1]
    return {"type": "Polygon", "coordinates": [ring]}


def geometry_cases(kind: str) -> list[tuple[str, Any]]:
    """Bad geometries for a member that takes a Point (`kind` "point") or an area ("area")."""
    out: list[tuple[str, Any]] = [
        ("type Pointy", {"type": "Pointy", "coordinates": [-87.9, 43.0]}),
        ("coordinates a string", {"type": "Point", "coordinates": "-87.9,43.0"}),
        ("coordinates an object", {"type": "Point", "coordinates": {"lon": -87.9, "lat": 43.0}}),
        ("geometry a string", "POINT(-87.9 43.0)"),
        ("geometry an array", [-87.9, 43.0]),
        ("empty coordinates", {"type": "Point" if kind == "point" else "Polygon", "coordinates": []}),
        ("GeometryCollection", {"type": "GeometryCollection", "geometries": []}),
        ("unknown member", {"type": "Point", "coordinates": [-87.9, 43.0], "crs": "EPSG:4326"}),
    ]
    if kind == "line":
        line = [[-87.91, 43.03], [-87.90, 43.03]]
        out += [
            ("zero-length path", {"type": "LineString", "coordinates": [line[0], line[0]]}),
            ("one position", {"type": "LineString", "coordinates": line[:1]}),
            ("lat 95", {"type": "LineString", "coordinates": [line[0], [-87.9, 95]]}),
            ("lon 200", {"type": "LineString", "coordinates": [[200, 43.03], line[1]]}),
            ("NaN literal", {"type": "LineString", "coordinates": [[RAW + "NaN", 43.03], line[1]]}),
            ("1e999", {"type": "LineString", "coordinates": [line[0], [-87.9, RAW + "1e999"]]}),
            ("4-number positions", {"type": "LineString", "coordinates": [[*p, 1, 2] for p in line]}),
            ("longer than the cap", {"type": "LineString", "coordinates": [[-87.9, 43.0], [-86.9, 43.0]]}),
            ("across the antimeridian", {"type": "LineString", "coordinates": [[179.9, 0.0], [-179.9, 0.0]]}),
            ("empty MultiLineString", {"type": "MultiLineString", "coordinates": []}),
            (
                "MultiLineString with a zero-length part",
                {"type": "MultiLineString", "coordinates": [line, line[:1]]},
            ),
            ("Polygon for a line", polygon(-87.91, 43.03, -87.90, 43.04)),
        ]
        return out
    if kind == "point":
        out += [
            ("lat 95", {"type": "Point", "coordinates": [-87.9, 95]}),
            ("lon 200", {"type": "Point", "coordinates": [200, 43.0]}),
            ("swapped lon/lat out of range", {"type": "Point", "coordinates": [43.0389, -97.9065]}),
            ("4 numbers", {"type": "Point", "coordinates": [-87.9, 43.0, 10, 1]}),
            ("one number", {"type": "Point", "coordinates": [-87.9]}),
            ("string numbers", {"type": "Point", "coordinates": ["-87.9", "43.0"]}),
            ("boolean numbers", {"type": "Point", "coordinates": [True, False]}),
            ("NaN literal", {"type": "Point", "coordinates": [RAW + "NaN", 43.0]}),
            ("Infinity literal", {"type": "Point", "coordinates": [-87.9, RAW + "Infinity"]}),
            ("-Infinity literal", {"type": "Point", "coordinates": [RAW + "-Infinity", 43.0]}),
            ("1e999", {"type": "Point", "coordinates": [-87.9, RAW + "1e999"]}),
            ("Polygon for a Point", polygon(-87.91, 43.03, -87.90, 43.04)),
        ]
    else:
        ring = polygon(-87.91, 43.03, -87.90, 43.04)["coordinates"][0]
        out += [
            ("lat 95", {"type": "Polygon", "coordinates": [[[-87.9, 95], *ring[1:-1], [-87.9, 95]]]}),
            ("lon 200", {"type": "Polygon", "coordinates": [[[200, 43.03], *ring[1:-1], [200, 43.03]]]}),
            ("4-number positions", {"type": "Polygon", "coordinates": [[[*p, 1, 2] for p in ring]]}),
            ("NaN literal", {"type": "Polygon", "coordinates": [[[RAW + "NaN", 43.03], *ring[1:]]]}),
            (
                "Infinity literal",
                {"type": "Polygon", "coordinates": [[*ring[:-1], [RAW + "Infinity", 43.03]]]},
            ),
            ("1e999", {"type": "Polygon", "coordinates": [[[-87.91, RAW + "1e999"], *ring[1:]]]}),
            ("unclosed ring", unclosed()),
            ("bow-tie ring", bow_tie()),
            ("3-position ring", {"type": "Polygon", "coordinates": [ring[:2] + ring[:1]]}),
            ("empty ring", {"type": "Polygon", "coordinates": [[]]}),
            ("empty MultiPolygon", {"type": "MultiPolygon", "coordinates": []}),
            ("MultiPolygon of an empty polygon", {"type": "MultiPolygon", "coordinates": [[]]}),
            ("Point for an area", {"type": "Point", "coordinates": [-87.9, 43.0]}),
            (
                "30k positions",
                {"type": "Polygon", "coordinates": [[[0, 0], *([[1, 1], [1, 0]] * 15_000), [0, 0]]]},
            ),
        ]
    return out


def set_at(doc: Any, pointer: str, value: Any) -> Any:
    out = copy.deepcopy(doc)
    parts = [p for p in pointer.split("/") if p]
    cur = out
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


def drop_at(doc: Any, pointer: str) -> Any:
    out = copy.deepcopy(doc)
    parts = [p for p in pointer.split("/") if p]
    cur = out
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    del cur[parts[-1]]
    return out


def dump(doc: Any) -> bytes:
    text = orjson.dumps(doc).decode()
    while RAW in text:
        start = text.index('"' + RAW)
        end = text.index('"', start + 1)
        text = text[:start] + text[start + 1 + len(RAW) : end] + text[end + 1 :]
    return text.encode()


@dataclass
class Case:
    endpoint: str
    name: str
    method: str
    path: str
    headers: dict[str, str]
    content: bytes | Iterator[bytes] | None = None
    query: str | None = None  # a raw query string, sent as is
    heavy: bool = False
    edge: bool = False  # a timestamp at the calendar's edge: served or refused, never a 5xx


@dataclass
class Endpoint:
    """A write or query endpoint: its valid request, and where its geometries, constrained strings, numbers and
    required members sit."""

    label: str
    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    points: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # members that take a path (LineString or MultiLineString)
    strings: list[str] = field(default_factory=list)  # members where an injection string is invalid
    texts: list[str] = field(default_factory=list)  # free text: valid data, except a NUL or 10k characters
    numbers: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    query: dict[str, Any] = field(default_factory=dict)  # a valid query
    query_numbers: list[str] = field(default_factory=list)
    query_strings: list[str] = field(default_factory=list)
    instants: list[str] = field(default_factory=list)  # body members that take an RFC 3339 instant
    query_instants: list[str] = field(default_factory=list)
    cursor_instant: bool = False  # its paging cursor carries an instant (`at`)
    unknown_query_refused: bool = False
    heavy: bool = False  # the family's endpoint for the 50 MB, deep-nesting and 200k-position cases

    def case(self, name: str, **kw: Any) -> Case:
        headers = dict(self.headers)
        if "content_type" in kw:
            ct = kw.pop("content_type")
            if ct is not None:
                headers["Content-Type"] = ct
        elif self.body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(kw.pop("extra_headers", {}))
        return Case(self.label, name, self.method, self.path, headers, **kw)

    def query_string(self, **over: Any) -> str:
        """The query as sent: values percent-encoded, except those given already encoded ("%ff" stays an invalid
        UTF-8 byte on the wire, "%00" a NUL)."""
        q = {**self.query, **over}
        return "&".join(
            f"{k}={v if str(v).startswith('%') else quote(str(v), safe=',:')}" for k, v in q.items()
        )


def cursor_with(**values: Any) -> str:
    """A cursor as the services write them (base64url of JSON, unpadded), carrying `values`."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def fifty_mb() -> Iterator[bytes]:
    block = b" " * (1 << 20)
    yield b'{"padding": "'
    for _ in range(50):
        yield block
    yield b'"}'


def body_cases(ep: Endpoint) -> list[Case]:
    assert ep.body is not None
    base = ep.body
    cases = [
        ep.case("malformed JSON", content=dump(base)[:-5]),
        ep.case("empty body", content=b""),
        ep.case("JSON null", content=b"null"),
        ep.case("array for the object", content=b"[]"),
        ep.case("a string for the object", content=b'"x"'),
        ep.case("NaN literal body", content=b"NaN"),
        ep.case("unknown member", content=dump({**base, "is_admin": True})),
        ep.case("invalid UTF-8", content=dump(base)[:-1] + b', "x": "\xff\xfe\xc0\xaf"}'),
        ep.case("text/plain", content=dump(base), content_type="text/plain"),
        ep.case(
            "application/xml", content=b"<agency><slug>x</slug></agency>", content_type="application/xml"
        ),
        ep.case(
            "multipart",
            content=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
            content_type="multipart/form-data; boundary=b",
        ),
        ep.case("no content type", content=dump(base), content_type=None),
    ]
    for ptr in ep.points:
        cases += [
            ep.case(f"{ptr}: {name}", content=dump(set_at(base, ptr, g)))
            for name, g in geometry_cases("point")
        ]
    for ptr in ep.areas:
        cases += [
            ep.case(f"{ptr}: {name}", content=dump(set_at(base, ptr, g)))
            for name, g in geometry_cases("area")
        ]
    for ptr in ep.lines:
        cases += [
            ep.case(f"{ptr}: {name}", content=dump(set_at(base, ptr, g)))
            for name, g in geometry_cases("line")
        ]
    for ptr in ep.strings:
        cases += [ep.case(f"{ptr}: {s[:20]!r}", content=dump(set_at(base, ptr, s))) for s in INJECTIONS]
        cases += [
            ep.case(f"{ptr}: number for a string", content=dump(set_at(base, ptr, 12))),
            ep.case(f"{ptr}: object for a string", content=dump(set_at(base, ptr, {"$ne": None}))),
        ]
    for ptr in ep.texts:
        cases += [
            ep.case(f"{ptr}: NUL byte", content=dump(set_at(base, ptr, "nul\x00byte"))),
            ep.case(f"{ptr}: 10k characters", content=dump(set_at(base, ptr, "x" * 10_000))),
        ]
    for ptr in ep.numbers:
        cases += [
            ep.case(f"{ptr}: string for a number", content=dump(set_at(base, ptr, "12"))),
            ep.case(f"{ptr}: array for a number", content=dump(set_at(base, ptr, [1]))),
            ep.case(f"{ptr}: NaN", content=dump(set_at(base, ptr, RAW + "NaN"))),
            ep.case(f"{ptr}: Infinity", content=dump(set_at(base, ptr, RAW + "Infinity"))),
            ep.case(f"{ptr}: 1e999", content=dump(set_at(base, ptr, RAW + "1e999"))),
            ep.case(f"{ptr}: -1e308", content=dump(set_at(base, ptr, -1e308))),
        ]
    for ptr in ep.instants:
        cases += [ep.case(f"{ptr}: {v!r}", content=dump(set_at(base, ptr, v))) for v in INSTANTS]
    for ptr in ep.required:
        cases += [
            ep.case(f"{ptr}: null", content=dump(set_at(base, ptr, None))),
            ep.case(f"{ptr}: missing", content=dump(drop_at(base, ptr))),
            ep.case(f"{ptr}: array for the member", content=dump(set_at(base, ptr, []))),
        ]
    if ep.heavy:
        ring = [[round(-87.91 + i * 1e-7, 7), 43.03] for i in range(200_000)]
        cases += [
            ep.case("50 MB with Content-Length", content=b"".join(fifty_mb()), heavy=True),
            ep.case("50 MB chunked", content=fifty_mb(), heavy=True),
            ep.case("100k nested arrays", content=b"[" * 100_000 + b"]" * 100_000, heavy=True),
            ep.case("100k nested objects", content=b'{"a":' * 100_000 + b"1" + b"}" * 100_000, heavy=True),
            ep.case(
                "200k positions",
                content=dump(
                    set_at(base, (ep.areas or ep.points)[0], {"type": "Polygon", "coordinates": [ring]})
                ),
                heavy=True,
            ),
        ]
    return cases


def query_cases(ep: Endpoint) -> list[Case]:
    cases = []
    for name in ep.query_numbers:
        cases += [ep.case(f"?{name}={v}", query=ep.query_string(**{name: v})) for v in QUERY_NUMBERS]
    for name in ep.query_strings:
        cases += [ep.case(f"?{name}={v[:20]!r}", query=ep.query_string(**{name: v})) for v in QUERY_STRINGS]
    body = dump(ep.body) if ep.body is not None else None
    for name in ep.query_instants:
        cases += [ep.case(f"?{name}={v}", query=ep.query_string(**{name: v}), content=body) for v in INSTANTS]
    if ep.cursor_instant:
        cases += [
            ep.case(f"cursor at {v}", query=ep.query_string(cursor=cursor_with(at=v, id=str(uuid.uuid4()))))
            for v in INSTANTS
        ]
    if "lat" in ep.query:
        cases += [
            ep.case("?lat=95", query=ep.query_string(lat=95)),
            ep.case("?lon=200", query=ep.query_string(lon=200)),
            ep.case("swapped lon/lat out of range", query=ep.query_string(lon=43.0389, lat=-97.9)),
        ]
    if ep.unknown_query_refused:
        cases.append(ep.case("unknown parameter", query=ep.query_string(radius_meters=5)))
    return cases


# --- the endpoints ---------------------------------------------------------------------------------------


def endpoints(s: Scene, scratch: Owner, draft: str, sent: str, etags: dict[str, str]) -> list[Endpoint]:
    w = s.world
    x_admin = s.agent("agency_admin")
    fresh = "z-" + uuid.uuid4().hex[:8]
    lon, lat = s.a_lonlat
    reg_body = {
        "agency": w.x,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "contact": {"email": "dana@example.org"},
        "owner_kind": "business",
        "cameras": [{"location": {"type": "Point", "coordinates": [lon, lat]}, "direction_deg": 90}],
    }
    req = request_body(w.a, lon, lat)
    area_req = {k: v for k, v in req.items() if k not in ("radius_m", "camera_ids")}
    area_req["area"] = polygon(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    geo_q = {"lon": lon, "lat": lat, "case_number": "C-1"}
    inv = s.agent("investigator")
    return [
        # registry_api
        Endpoint(
            "registry POST /v1/agencies",
            "registry_api",
            "POST",
            "/v1/agencies",
            s.auth("agency_admin", fresh),
            body={"slug": fresh, "name": "Police Z", "jurisdiction": polygon(-80.0, 40.0, -79.9, 40.1)},
            areas=["/jurisdiction"],
            strings=["/slug"],
            required=["/name", "/jurisdiction"],
        ),
        Endpoint(
            "registry PATCH /v1/agencies/{slug}",
            "registry_api",
            "PATCH",
            f"/v1/agencies/{w.x}",
            {**x_admin, "If-Match": etags["agency"]},
            body={
                "jurisdiction": polygon(-87.98, 42.98, -87.86, 43.10),
                "policy": {"max_search_radius_m": 2000.0},
            },
            areas=["/jurisdiction"],
            numbers=["/policy/max_search_radius_m"],
        ),
        Endpoint(
            "registry POST /v1/registrations",
            "registry_api",
            "POST",
            "/v1/registrations",
            {},
            body=reg_body,
            points=["/location", "/cameras/0/location"],
            strings=["/agency", "/contact/email", "/owner_kind"],
            texts=[
                "/notes_for_investigators",
                "/business_name",
                "/address",
                "/contact/name",
                "/cameras/0/label",
            ],
            numbers=["/cameras/0/direction_deg"],
            required=["/location", "/contact"],
            heavy=True,
        ),
        Endpoint(
            "registry PATCH /v1/registrations/{id}",
            "registry_api",
            "PATCH",
            f"/v1/registrations/{scratch.registration_id}",
            {**scratch.headers, "If-Match": etags["scratch"]},
            body={"location": {"type": "Point", "coordinates": [lon, lat]}, "status": "active"},
            points=["/location"],
            strings=["/status"],
            texts=["/notes_for_investigators", "/business_name"],
        ),
        Endpoint(
            "registry POST /v1/registrations/{id}/cameras",
            "registry_api",
            "POST",
            f"/v1/registrations/{scratch.registration_id}/cameras",
            scratch.headers,
            body={
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "direction_deg": 10,
                "placement": "indoor",
            },
            points=["/location"],
            strings=["/placement"],
            texts=["/label", "/schedule"],
            numbers=["/direction_deg"],
        ),
        Endpoint(
            "registry PATCH /v1/registrations/{id}/cameras/{id}",
            "registry_api",
            "PATCH",
            f"/v1/registrations/{scratch.registration_id}/cameras/{scratch.camera_ids[0]}",
            {**scratch.headers, "If-Match": etags["scratch"]},
            body={
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "range_m": 20.0,
                "live_mode": "never",
            },
            points=["/location"],
            strings=["/live_mode"],
            numbers=["/range_m"],
        ),
        Endpoint(
            "registry POST /v1/registrations/{id}/live-windows",
            "registry_api",
            "POST",
            f"/v1/registrations/{scratch.registration_id}/live-windows",
            scratch.headers,
            body={"reason": "alert", "duration_s": 60, "agencies": [w.x], "cameras": [scratch.camera_ids[0]]},
            strings=["/reason", "/agencies/0", "/cameras/0"],
            numbers=["/duration_s"],
        ),
        Endpoint(
            "registry POST /v1/credential-resets",
            "registry_api",
            "POST",
            "/v1/credential-resets",
            {},
            body={"email": "nobody@example.org"},
            strings=["/email"],
            required=["/email"],
        ),
        Endpoint(
            "registry POST /v1/credential-resets/redeem",
            "registry_api",
            "POST",
            "/v1/credential-resets/redeem",
            {},
            body={"token": "cvr_" + "A" * 43},
            strings=["/token"],
            required=["/token"],
        ),
        Endpoint(
            "registry POST /v1/registrations/{id}/notifications",
            "registry_api",
            "POST",
            f"/v1/registrations/{scratch.registration_id}/notifications",
            s.auth("service", None, sub="requests_api"),
            body={"notification_id": str(uuid.uuid4()), "kind": "request", "subject": "S", "body": "B"},
            strings=["/notification_id", "/kind"],
            texts=["/subject"],
            required=["/notification_id", "/subject"],
        ),
        Endpoint(
            "registry POST /v1/edge-agents/enrol",
            "registry_api",
            "POST",
            "/v1/edge-agents/enrol",
            {},
            body={"code": "cve_" + "A" * 43},
            strings=["/code"],
            required=["/code"],
        ),
        Endpoint(
            "registry GET /v1/live-windows/check",
            "registry_api",
            "GET",
            "/v1/live-windows/check",
            s.auth("service", None, sub="live_relay"),
            query={"agency": w.x, "camera_id": scratch.camera_ids[0]},
            query_strings=["agency", "camera_id", "window_id"],
        ),
        Endpoint(
            "registry GET /v1/deleted-registrations",
            "registry_api",
            "GET",
            "/v1/deleted-registrations",
            s.auth("service", None, sub="requests_api"),
            query={"after": 0, "limit": 10},
            query_numbers=["after", "limit"],
        ),
        Endpoint(
            "registry GET /v1/agencies/covering",
            "registry_api",
            "GET",
            "/v1/agencies/covering",
            {},
            query={"lon": lon, "lat": lat},
            query_numbers=["lon", "lat", "simplify"],
            query_strings=["skipGeometry"],
        ),
        Endpoint(
            "registry GET /v1/agencies",
            "registry_api",
            "GET",
            "/v1/agencies",
            {},
            query={"limit": 10},
            query_numbers=["limit", "simplify"],
            query_strings=["cursor", "skipGeometry"],
        ),
        Endpoint(
            "registry GET /v1/registrations/{id}/contact",
            "registry_api",
            "GET",
            f"/v1/registrations/{w.a.registration_id}/contact",
            inv,
            query={"case_number": "C-1"},
            query_strings=["case_number"],
        ),
        Endpoint(
            "registry GET /v1/agencies/{slug}/reconfirmations-due",
            "registry_api",
            "GET",
            f"/v1/agencies/{w.x}/reconfirmations-due",
            x_admin,
            query={"within_days": 10},
            query_numbers=["within_days", "limit"],
            query_strings=["cursor"],
            cursor_instant=True,
        ),
        Endpoint(
            "registry POST /v1/imports",
            "registry_api",
            "POST",
            "/v1/imports",
            s.agent("integrator"),
            query={"dry_run": "true"},
            query_strings=["crs", "mode", "dry_run", "credentials"],
        ),
        # geo_query
        Endpoint(
            "geo GET /v1/cameras/radius",
            "geo_query",
            "GET",
            "/v1/cameras/radius",
            inv,
            query={**geo_q, "radius_m": 100},
            query_numbers=["lon", "lat", "radius_m", "limit", "facing"],
            query_strings=["case_number", "crs", "owner_kind", "incident_at", "cursor", "cad_incident"],
            query_instants=["incident_at"],
            unknown_query_refused=True,
        ),
        Endpoint(
            "geo GET /v1/cameras/nearest",
            "geo_query",
            "GET",
            "/v1/cameras/nearest",
            inv,
            query={**geo_q, "k": 5},
            query_numbers=["lon", "lat", "k", "max_distance_m"],
            query_strings=["case_number", "placement", "live_mode"],
            query_instants=["incident_at"],
            unknown_query_refused=True,
        ),
        Endpoint(
            "geo GET /v1/cameras/bbox",
            "geo_query",
            "GET",
            "/v1/cameras/bbox",
            inv,
            query={"bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}", "case_number": "C-1"},
            query_numbers=["limit"],
            query_strings=["bbox", "bbox-crs", "case_number", "point"],
            query_instants=["incident_at"],
            unknown_query_refused=True,
        ),
        Endpoint(
            "geo GET /v1/coverage",
            "geo_query",
            "GET",
            "/v1/coverage",
            {},
            query={
                "agency": s.world.x,
                "size": 1000,
                "bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}",
            },
            query_numbers=["size"],
            query_strings=["agency", "bbox"],
        ),
        Endpoint(
            "geo GET /v1/tiles/coverage/{z}/{x}/{y}.mvt",
            "geo_query",
            "GET",
            "/v1/tiles/coverage/12/1205/1539.mvt",
            {},
            query={"agency": s.world.x},
            query_strings=["agency"],
        ),
        Endpoint(
            "geo GET /v1/coverage/agency",
            "geo_query",
            "GET",
            "/v1/coverage/agency",
            x_admin,
            query={"size": 1000, "bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"},
            query_numbers=["size"],
            query_strings=["bbox"],
        ),
        Endpoint(
            "geo GET /v1/tiles/cameras/{z}/{x}/{y}.mvt",
            "geo_query",
            "GET",
            "/v1/tiles/cameras/16/19298/24633.mvt",
            inv,
            query={"case_number": "C-1"},
            query_strings=["case_number", "cad_incident"],
        ),
        Endpoint(
            "geo POST /v1/cameras/area",
            "geo_query",
            "POST",
            "/v1/cameras/area",
            inv,
            body={
                "area": polygon(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001),
                "point": {"type": "Point", "coordinates": [lon, lat]},
            },
            areas=["/area"],
            points=["/point"],
            required=["/area"],
            query_instants=["incident_at"],
            heavy=True,
        ),
        Endpoint(
            "geo POST /v1/cameras/route",
            "geo_query",
            "POST",
            "/v1/cameras/route",
            inv,
            body={
                "path": {"type": "LineString", "coordinates": [[lon - 0.002, lat], [lon + 0.002, lat]]},
                "buffer_m": 100,
                "times": ["2026-11-20T22:15:00Z", "2026-11-20T22:19:00Z"],
                "margin_s": 60,
            },
            lines=["/path"],
            numbers=["/buffer_m", "/margin_s"],
            instants=["/times/0", "/times/1"],
            required=["/path", "/buffer_m"],
            query_instants=["incident_at"],
        ),
        Endpoint(
            "geo GET /v1/ogc/collections/{id}/items",
            "geo_query",
            "GET",
            "/v1/ogc/collections/cameras/items",
            inv,
            query={"bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"},
            query_numbers=["limit"],
            query_strings=["bbox", "f", "cursor"],
            query_instants=["incident_at"],
            unknown_query_refused=True,
        ),
        Endpoint(
            "geo GET /v1/ogc/collections/{id}/items/{id}",
            "geo_query",
            "GET",
            f"/v1/ogc/collections/cameras/items/{w.a.camera_ids[0]}",
            inv,
            query_strings=["f", "case_number"],
            unknown_query_refused=True,
        ),
        # requests_api
        Endpoint(
            "requests POST /v1/requests",
            "requests_api",
            "POST",
            "/v1/requests",
            inv,
            body=req,
            points=["/incident"],
            strings=["/case_number", "/category", "/camera_ids/0", "/window/start"],
            texts=["/message"],
            numbers=["/radius_m"],
            required=["/case_number", "/incident", "/window", "/message"],
            instants=["/window/start", "/window/end", "/due_at"],
            heavy=True,
        ),
        Endpoint(
            "requests POST /v1/requests (area)",
            "requests_api",
            "POST",
            "/v1/requests",
            inv,
            body=area_req,
            areas=["/area"],
        ),
        Endpoint(
            "requests POST /v1/requests/{id}/transitions",
            "requests_api",
            "POST",
            f"/v1/requests/{draft}/transitions",
            {**inv, "If-Match": "*"},
            body={"action": "cancel"},
            strings=["/action"],
            texts=["/note"],
            required=["/action"],
        ),
        Endpoint(
            "requests PUT /v1/requests/{id}/legal-hold",
            "requests_api",
            "PUT",
            f"/v1/requests/{draft}/legal-hold",
            {**s.agent("supervisor"), "If-Match": "*"},
            body={"legal_hold": True},
            strings=["/legal_hold"],
            texts=["/note"],
            required=["/legal_hold"],
        ),
        Endpoint(
            "requests POST /v1/owner/requests/{id}/answer",
            "requests_api",
            "POST",
            f"/v1/owner/requests/{sent}/answer",
            w.a.headers,
            body={"answer": "decline"},
            strings=["/answer"],
            texts=["/note"],
            required=["/answer"],
        ),
        Endpoint(
            "requests PUT /v1/agencies/{slug}/webhook",
            "requests_api",
            "PUT",
            f"/v1/agencies/{w.x}/webhook",
            x_admin,
            body={"url": "https://rms.example.gov/hook", "active": True},
            strings=["/url", "/active"],
            required=["/url"],
        ),
        Endpoint(
            "requests GET /v1/requests",
            "requests_api",
            "GET",
            "/v1/requests",
            inv,
            query={"limit": 5},
            query_numbers=["limit"],
            query_strings=["state", "cursor"],
            cursor_instant=True,
        ),
        Endpoint(
            "requests GET /v1/transparency",
            "requests_api",
            "GET",
            "/v1/transparency",
            {},
            query={"months": 3},
            query_numbers=["months"],
            query_strings=["agency"],
        ),
    ]


def upload_cases(s: Scene, sent_accepted: str) -> list[Case]:
    ep = Endpoint(
        "requests POST /v1/owner/evidence/{id}",
        "requests_api",
        "POST",
        f"/v1/owner/evidence/{sent_accepted}",
        s.world.a.headers,
    )
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
    return [
        ep.case("JSON for multipart", content=b'{"file": "x"}', content_type="application/json"),
        ep.case("text/plain", content=b"footage", content_type="text/plain"),
        ep.case("multipart without a boundary", content=part, content_type="multipart/form-data"),
        ep.case(
            "garbage multipart", content=b"\xff\xfe--b--", content_type="multipart/form-data; boundary=b"
        ),
        ep.case(
            "empty file part", content=part + b"\r\n--b--\r\n", content_type="multipart/form-data; boundary=b"
        ),
        ep.case(
            "no file part",
            content=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
            content_type="multipart/form-data; boundary=b",
        ),
        ep.case(
            "media type not accepted",
            content=part.replace(b"video/mp4", b"text/html") + b"<script>alert(1)</script>\r\n--b--\r\n",
            content_type="multipart/form-data; boundary=b",
        ),
        ep.case(
            "camera_id an injection",
            content=b'--b\r\nContent-Disposition: form-data; name="camera_id"\r\n\r\n\'; DROP TABLE registry.cameras; --'
            b"\r\n" + part + b"data\r\n--b--\r\n",
            content_type="multipart/form-data; boundary=b",
        ),
        # A file name that is a path is not refused but cleaned (tests/requests/test_evidence_names.py).
        ep.case(
            "body cut short before its closing boundary",
            content=part + b"data",
            content_type="multipart/form-data; boundary=b",
        ),
        ep.case(
            "boundary of 5,000 characters",
            content=part.replace(b"--b", b"--" + b"b" * 5000) + b"data\r\n--" + b"b" * 5000 + b"--\r\n",
            content_type="multipart/form-data; boundary=" + "b" * 5000,
        ),
    ]


def import_cases(s: Scene) -> list[Case]:
    ep = Endpoint("registry POST /v1/imports", "registry_api", "POST", "/v1/imports", s.agent("integrator"))
    fc = b'{"type":"FeatureCollection","features":[]}'
    return [
        ep.case("text/plain", content=fc, content_type="text/plain"),
        ep.case("application/xml", content=b"<x/>", content_type="application/xml"),
        ep.case("multipart", content=b"--b--\r\n", content_type="multipart/form-data; boundary=b"),
        ep.case("no content type", content=fc, content_type=None),
        ep.case("empty GeoJSON body", content=b"", content_type="application/geo+json"),
        ep.case(
            "crs an injection", content=fc, content_type="application/geo+json", query="crs=%27%3B%20DROP"
        ),
        ep.case("crs NaN", content=fc, content_type="application/geo+json", query="crs=EPSG%3Anan"),
        ep.case("mode unknown", content=fc, content_type="application/geo+json", query="mode=%3Cscript%3E"),
    ]


# --- the data's fingerprint ------------------------------------------------------------------------------

# The worker moves outbox rows on its own clock; their ids (what was enqueued) are compared, not their progress.
VOLATILE = {"requests.outbox": "id::text", "community.deliveries": "id::text"}
# Refused guesses of credentials and codes are counted (the guess limits), as are anonymous tips, refused or not
# (the tips' rate limit): bookkeeping of refusals, not data.
NOT_DATA = {"registry.guess_counts", "community.rate_counts", "community.rate_windows"}


def fingerprint(db: Db, exclude: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Per table of `registry` and `requests`: its row count and the md5 of its rows (`exclude`: a condition on
    the rows of a table that are compared)."""
    tables = db.fetch(
        "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
        " WHERE table_schema IN ('registry', 'requests', 'community') AND table_type = 'BASE TABLE' ORDER BY 1"
    )
    out = {}
    for row in tables:
        t = row["t"]
        if t in NOT_DATA:
            continue
        expr = VOLATILE.get(t, "x::text")
        where = f" WHERE {exclude[t]}" if exclude and t in exclude else ""
        row = db.fetch(
            f"SELECT count(*) AS n, md5(coalesce(string_agg({expr}, '|' ORDER BY {expr}), '')) AS h"  # noqa: S608 - table names from the catalogue
            f" FROM {t} x{where}"
        )[0]
        out[t] = (row["n"], row["h"])
    return out


SEARCHES = "SELECT count(*) FROM audit.events WHERE action LIKE 'search.%' OR action LIKE 'ogc.%'"


def settle(db: Db) -> int:
    """Wait until background work (owner notifications, import jobs, alerts' recipients becoming deliveries,
    geo_query's batched audit records, the erasure of what deleted owners wrote) is done, so that only the corpus could change data; the number of
    audited searches then."""
    deadline = time.monotonic() + 30
    last = -1
    while time.monotonic() < deadline:
        busy = db.fetchval(
            "SELECT (SELECT count(*) FROM requests.outbox WHERE status = 'pending'"
            "        AND next_attempt_at < now() + interval '2 minutes')"
            " + (SELECT count(*) FROM registry.import_jobs WHERE status IN ('queued', 'running'))"
            " + (SELECT count(*) FROM community.delivery_batches)"
            " + (SELECT count(*) FROM registry.deletions WHERE seq > coalesce((SELECT position FROM requests.feeds"
            "        WHERE name = 'registry.deletions'), 0))"
        )
        searches = db.fetchval(SEARCHES)
        if not busy and searches == last:
            return int(searches)
        last = searches
        time.sleep(0.5)
    raise AssertionError("background work did not settle")


# --- running it ------------------------------------------------------------------------------------------


def send(client: httpx.Client, c: Case) -> httpx.Response:
    url = c.path + (f"?{c.query}" if c.query else "")
    return client.request(c.method, url, content=c.content, headers=c.headers, timeout=120)


def check(r: httpx.Response) -> str | None:
    if r.status_code >= 500:
        return f"{r.status_code}: {r.text[:200]}"
    if not 400 <= r.status_code < 500:
        return f"accepted with {r.status_code}: {r.text[:200]}"
    if r.headers.get("content-type") != PROBLEM:
        return f"{r.status_code} as {r.headers.get('content-type')}: {r.text[:200]}"
    doc = r.json()
    missing = [k for k in ("type", "title", "status", "detail") if not doc.get(k)]
    if missing or doc["status"] != r.status_code:
        return f"{r.status_code}: not a full problem document ({missing}): {r.text[:200]}"
    return None


def community_endpoints(s: Scene) -> list[Endpoint]:
    from tests.contract.community_bad_input import community_endpoints as endpoints_of

    return endpoints_of(s)


def tip_form_cases(s: Scene) -> list[Case]:
    from tests.contract.community_bad_input import tip_form_cases as cases_of

    return cases_of(s)


def test_bad_input_is_refused_with_a_problem_and_changes_nothing(scene: Scene, db: Db) -> None:
    s = scene
    scratch = s.new_owner()
    draft = s.draft()
    sent = s.sent()
    etags = {
        "agency": s.registry.get(f"/v1/agencies/{s.world.x}").headers["etag"],
        "scratch": s.registry.get(
            f"/v1/registrations/{scratch.registration_id}", headers=scratch.headers
        ).headers["etag"],
    }
    eps = endpoints(s, scratch, draft, sent, etags) + community_endpoints(s)
    cases: list[Case] = []
    for ep in eps:
        if ep.body is not None:
            cases += body_cases(ep)
        if ep.query or ep.query_strings or ep.query_numbers or ep.query_instants or ep.cursor_instant:
            cases += query_cases(ep)
    cases += upload_cases(s, s.request_id) + import_cases(s) + tip_form_cases(s)
    clients = {"registry": s.registry, "geo": s.geo, "requests": s.requests, "community": s.community_client}

    searches = settle(db)
    before = fingerprint(db)
    started = time.monotonic()
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    per_endpoint: Counter[str] = Counter()
    for c in cases:
        r = send(clients[c.endpoint.split()[0]], c)
        statuses[r.status_code] += 1
        per_endpoint[c.endpoint] += 1
        problem = check(r)
        if problem:
            failures.append(f"{c.endpoint} [{c.name}]: {problem}")
    elapsed = time.monotonic() - started
    searches_after = settle(db)
    after = fingerprint(db)

    print(f"\nbad-input corpus: {len(cases)} cases over {len(per_endpoint)} endpoints in {elapsed:.1f} s")
    for label, n in per_endpoint.items():
        print(f"  {n:5d}  {label}")
    print("  answers: " + ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items())))
    changed = [t for t in before if before[t] != after.get(t)] + [t for t in after if t not in before]
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures[:80])
    assert not changed, (
        f"the corpus changed data in {changed}: {[(before.get(t), after.get(t)) for t in changed]}"
    )
    broken = db.fetch("SELECT seq, reason FROM audit.verify_chain() WHERE NOT ok ORDER BY seq LIMIT 1")
    assert not broken, f"audit chain broken at {dict(broken[0])}"
    assert searches_after == searches, f"{searches_after - searches} refused searches were audited"


def test_injection_strings_in_free_text_are_stored_verbatim_and_nothing_else_changes(
    scene: Scene, db: Db
) -> None:
    s = scene
    owner = s.new_owner()
    draft = s.draft()
    exclude = {
        "registry.registrations": f"x.id <> '{owner.registration_id}'",
        "requests.requests": f"x.id <> '{draft}'",
        "requests.events": f"x.request_id <> '{draft}'",
    }
    settle(db)
    before = fingerprint(db, exclude)
    stored = 0
    for value in INJECTIONS:
        path = f"/v1/registrations/{owner.registration_id}"
        etag = s.registry.get(path, headers=owner.headers).headers["etag"]
        r = s.registry.patch(
            path, json={"notes_for_investigators": value}, headers={**owner.headers, "If-Match": etag}
        )
        hold = s.requests.put(
            f"/v1/requests/{draft}/legal-hold",
            json={"legal_hold": True, "note": value},
            headers={**s.agent("supervisor"), "If-Match": "*"},
        )
        if "\x00" in value or len(value) > 2000:  # text no person writes: refused, not stored
            assert check(r) is None and r.status_code == 422, r.text
            assert check(hold) is None and hold.status_code == 422, hold.text
            continue
        assert r.status_code == 200, r.text
        assert r.json()["properties"]["notes_for_investigators"] == value
        contact = s.registry.get(
            f"/v1/registrations/{owner.registration_id}/contact",
            params={"case_number": "C-1"},
            headers=s.agent("investigator"),
        )
        assert contact.json()["notes_for_investigators"] == value
        assert hold.status_code == 200, hold.text
        events = s.requests.get(f"/v1/requests/{draft}/events", headers=s.agent("investigator")).json()[
            "events"
        ]
        assert events[-1]["note"] == value
        stored += 1
    settle(db)
    after = fingerprint(db, exclude)
    assert stored == 4
    assert before == after, [t for t in before if before[t] != after.get(t)]
    sealed = db.fetchval(
        "SELECT notes_for_investigators_enc FROM registry.registrations WHERE id = $1",
        uuid.UUID(owner.registration_id),
    )
    notes = open_owner_text(
        owner.registration_id, sealed, f"registration:{owner.registration_id}:notes_for_investigators"
    )
    assert notes == INJECTIONS[3]
    assert db.fetchval("SELECT to_regclass('registry.cameras') IS NOT NULL")


# --- the corpus generated from the contracts -------------------------------------------------------------
#
# Every operation of openapi/*.json, present and future, meets these without a case written by hand: the calendar's
# edges with the widest offsets on every date-time parameter and body member, a repeated single-valued parameter,
# an unknown parameter, a chunked body over the limit, and broken multipart bodies.

TIMESTAMP_EDGES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00")


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def is_date_time(doc: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = resolve(doc, schema)
    return schema.get("format") == "date-time" or any(
        is_date_time(doc, s) for s in schema.get("anyOf", []) + schema.get("oneOf", [])
    )


def date_time_members(
    doc: dict[str, Any], schema: dict[str, Any], value: Any, pointer: str = ""
) -> list[str]:
    """The JSON Pointers of the date-time members of `value` (an example body), found through its schema."""
    schema = resolve(doc, schema)
    if is_date_time(doc, schema):
        return [pointer]
    out: list[str] = []
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        out += date_time_members(doc, branch, value, pointer)
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                out += date_time_members(doc, sub, value[name], f"{pointer}/{name}")
    return sorted(set(out))


def example_body(doc: dict[str, Any], op: Operation) -> Any:
    media = ((op.spec.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    if "example" in media:
        return media["example"]
    schema = resolve(doc, media.get("schema") or {})
    return (schema.get("examples") or [None])[0]


def param_example(p: dict[str, Any]) -> str:
    schema = p.get("schema") or {}
    for source in (p, schema):
        if "example" in source:
            return str(source["example"])
        if source.get("examples"):
            ex = source["examples"]
            return str(ex[0] if isinstance(ex, list) else next(iter(ex.values()))["value"])
    return "1"


def generated_cases(s: Scene) -> list[Case]:
    cases: list[Case] = []
    docs = {svc: contract(svc) for svc in ("registry_api", "geo_query", "requests_api", "community_api")}
    s.draft()  # a second request of the agency: its listing pages, so its cursor is met too
    label = {
        "registry_api": "registry",
        "geo_query": "geo",
        "requests_api": "requests",
        "community_api": "community",
    }
    for op in operations():
        doc = docs[op.service]
        ep = Endpoint(
            f"{label[op.service]} {op.method.upper()} {op.path}", op.service, op.method.upper(), "", {}
        )
        headers = credentials(s, op)
        # Reads meet the edges on real objects; writes on made-up ids, so nothing real can change.
        path = op.fill(real_ids(s)) if op.method == "get" else op.fill()
        required = {p["name"]: param_example(p) for p in op.query() if p.get("required")}
        base_query = "&".join(f"{k}={quote(v, safe=',:')}" for k, v in required.items())

        case = partial(_op_case, ep, headers, path)
        json_body = "application/json" in op.body_types
        body = example_body(doc, op) if json_body else None
        content = {"content": dump(body), "content_type": "application/json"} if body is not None else {}
        for p in op.query():
            name = p["name"]
            if is_date_time(doc, p.get("schema") or {}):
                for edge in TIMESTAMP_EDGES:
                    q = "&".join(filter(None, [base_query, f"{name}={quote(edge)}"]))
                    cases.append(case(f"{name}={edge}", q, edge=True, **content))
            if (p.get("schema") or {}).get("type") != "array":
                value = quote(required.get(name) or param_example(p), safe=",:")
                q = "&".join(filter(None, [base_query, f"{name}={value}", f"{name}={value}"]))
                cases.append(case(f"{name} twice", q, **content))
        cases += cursor_edge_cases(s, op, path, headers, base_query, case)
        cases.append(
            case("an unknown parameter", "&".join(filter(None, [base_query, "not_a_parameter=1"])), **content)
        )
        if body is not None:
            for pointer in date_time_members(
                doc, op.spec["requestBody"]["content"]["application/json"]["schema"], body
            ):
                for edge in TIMESTAMP_EDGES:
                    cases.append(
                        case(
                            f"{pointer}={edge}",
                            base_query or None,
                            edge=True,
                            content=dump(set_at(body, pointer, edge)),
                            content_type="application/json",
                        )
                    )
        if json_body:
            cases.append(
                case(
                    "a chunked body over the limit",
                    base_query or None,
                    content=chunked_oversize(),
                    content_type="application/json",
                )
            )
        if "multipart/form-data" in op.body_types:
            # on a request of its own the owner accepted, so that the body is parsed, not refused for its path
            case = partial(_op_case, ep, headers, op.fill({**real_ids(s), "request_id": accepted_request(s)}))
            part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\nContent-Type: video/mp4\r\n\r\nfootage'
            long = b"x" * 5000
            cases += [
                case(
                    "multipart without its closing boundary",
                    content=part,
                    content_type="multipart/form-data; boundary=b",
                ),
                case(
                    "multipart cut in its headers",
                    content=part[:40],
                    content_type="multipart/form-data; boundary=b",
                ),
                case(
                    "a 5,000-character boundary",
                    content=part.replace(b"--b", b"--" + long) + b"\r\n--" + long + b"--\r\n",
                    content_type="multipart/form-data; boundary=" + long.decode(),
                ),
                case(
                    "multipart of garbage",
                    content=b"\xff\xfe\x00--b--",
                    content_type="multipart/form-data; boundary=b",
                ),
            ]
    return cases


def cursor_edge_cases(
    s: Scene, op: Operation, path: str, headers: dict[str, str], base_query: str, case: Any
) -> list[Case]:
    """A paging cursor carrying a timestamp: the operation's own `next` cursor (one item a page), each of its
    timestamps moved to the calendar's edges."""
    names = {p["name"] for p in op.query()}
    if op.method != "get" or not {"cursor", "limit"} <= names:
        return []
    client = {
        "registry_api": s.registry,
        "geo_query": s.geo,
        "requests_api": s.requests,
        "community_api": s.community_client,
    }[op.service]
    # The widest listing: each bounded optional integer (e.g. `within_days`) at its maximum.
    widest = [
        f"{p['name']}={p['schema']['maximum']}"
        for p in op.query()
        if not p.get("required") and p["name"] != "limit" and "maximum" in (p.get("schema") or {})
    ]
    base_query = "&".join(filter(None, [base_query, *widest]))
    page = client.get(path + "?" + "&".join(filter(None, [base_query, "limit=1"])), headers=headers)
    links = (page.json().get("links") or []) if page.is_success else []
    hrefs = [lk["href"] for lk in links if lk.get("rel") == "next"]
    if not hrefs:
        return []
    cursor = parse_qs(urlsplit(hrefs[0]).query)["cursor"][0]
    values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    out = []
    for key, value in values.items():
        try:
            datetime.fromisoformat(str(value))
        except ValueError:
            continue
        for edge in TIMESTAMP_EDGES:
            forged = base64.urlsafe_b64encode(orjson.dumps({**values, key: edge})).decode().rstrip("=")
            q = "&".join(filter(None, [base_query, "limit=1", f"cursor={forged}"]))
            out.append(case(f"cursor {key}={edge}", q, edge=True))
    return out


def accepted_request(s: Scene) -> str:
    rid = s.sent()
    r = s.requests.post(
        f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=s.world.a.headers
    )
    assert r.status_code == 200, r.text
    return rid


def _op_case(
    ep: Endpoint, headers: dict[str, str], path: str, name: str, query: str | None = None, **kw: Any
) -> Case:
    c = ep.case(name, extra_headers=headers, **kw)
    c.path, c.query = path, query
    return c


def chunked_oversize() -> Iterator[bytes]:
    """Over every JSON operation's limit (CANVASS_MAX_BODY_BYTES, 1 MiB by default), with no Content-Length."""
    yield b'{"padding": "'
    for _ in range(3):
        yield b" " * (1 << 20)
    yield b'"}'


def test_every_operation_of_the_contracts_meets_the_generated_bad_input(scene: Scene) -> None:
    """Each case a 4xx problem, never a 5xx; a timestamp at the calendar's edge may also be served (a 2xx), as
    long as it is not a 5xx."""
    cases = generated_cases(scene)
    clients = {
        "registry": scene.registry,
        "geo": scene.geo,
        "requests": scene.requests,
        "community": scene.community_client,
    }
    failures, per_kind = [], Counter[str]()
    for c in cases:
        r = send(clients[c.endpoint.split()[0]], c)
        per_kind[c.name.split("=")[0] if c.edge else c.name] += 1
        if c.edge and r.status_code < 300:
            continue
        problem = check(r)
        if problem:
            failures.append(f"{c.endpoint} [{c.name}]: {problem}")
    print(f"\ngenerated corpus: {len(cases)} cases over {len({c.endpoint for c in cases})} operations")
    assert len({c.endpoint for c in cases}) >= 60
    assert not failures, f"{len(failures)} of {len(cases)} generated cases failed:\n" + "\n".join(failures)
