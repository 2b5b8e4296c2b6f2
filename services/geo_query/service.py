"""The spatial queries of geo_query, written as SQL over asyncpg, and the one place they are run and audited.

Every query is scoped the same way, by the visibility rule `registry.sees` (the database's one definition of it,
see `sees`): the caller's agency must be in the camera's `visible_to` (registry_api keeps it to the agencies an
active registration is shared with) and the camera must lie in the agency's jurisdiction.
Each Feature is assembled by PostgreSQL (`ST_AsGeoJSON` + `json_build_object`) as text, and this process joins a
page's Features as they come, never parsing them (see `fetch_page`). Pages take `limit + 1` rows to know whether
there is a next page; deep pages use keyset cursors (distance, id) or (id), never OFFSET. Pages larger than
STREAM_AT are streamed from a server-side cursor, so memory stays flat however many features are asked for.

Contact details are the one exception to "no JSON work in Python": they are sealed (AES-GCM; the owner's hours
and notes under the registration's data key from the key store), so they are opened here, only for investigators
and supervisors who gave a case number, and the audit record lists whose were read.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from services.geo_query.audit_log import audit_log
from services.geo_query.database import db
from services.geo_query.dependencies import BBox, Caller, Filters, QueryPoint, Reference
from shared.audit import AuditEvent
from shared.crypto import keyring
from shared.db import pooled
from shared.keystore import keystore, open_with

log = logging.getLogger("canvass.geo_query")

SERVICE = "geo_query"
STREAM_AT = 1000  # pages larger than this are streamed
CONTACTS_MAX = 1000  # a page with contact details is never larger than this
Order = Literal["distance", "id", "id_desc"]

# Metres per radian on the smallest radius of curvature of WGS84 (the meridian at the equator): dividing a
# geodesic distance by it gives an angle at least as large as the true one, so boxes built from it are generous.
_MIN_RADIUS_M = 6_335_439.0
_MARGIN = 1.01


def expand_boxes(lon: float, lat: float, metres: float) -> list[tuple[float, float, float, float]] | None:
    """Lon/lat boxes that contain every point within `metres` of (lon, lat): the index prefilter (`&&`) before the
    exact geodesic test. Two boxes when the circle crosses the antimeridian; None when it reaches a pole or
    half the globe (no useful prefilter)."""
    r = metres / _MIN_RADIUS_M * _MARGIN + 1e-9
    if r >= math.pi / 2:
        return None
    dlat = math.degrees(r)
    south, north = lat - dlat, lat + dlat
    if south <= -90 or north >= 90:
        return [(-180.0, max(south, -90.0), 180.0, min(north, 90.0))]
    # The widest longitude span of a spherical cap of angular radius r centred at latitude lat.
    s = math.sin(r) / math.cos(math.radians(lat))
    if s >= 1:
        return [(-180.0, south, 180.0, north)]
    dlon = math.degrees(math.asin(s)) * _MARGIN + 1e-9
    west, east = lon - dlon, lon + dlon
    if west < -180:
        return [(west + 360, south, 180.0, north), (-180.0, south, east, north)]
    if east > 180:
        return [(west, south, 180.0, north), (-180.0, south, east - 360, north)]
    return [(west, south, east, north)]


def sees(agency: str) -> str:
    """The visibility rule as a condition on `registry.cameras c` for the agency whose id is the SQL `agency` (a
    bound parameter): the database's `registry.sees`, which the planner inlines (a single-expression SQL function,
    immutable, no SET, not SECURITY DEFINER), so the GiST index on `c.geom` serves its jurisdiction test as it
    serves a test written out in place.

    The jurisdiction is passed as a copy read once per statement (a scalar subquery; ST_SetSRID copies): a real
    boundary has hundreds to thousands of vertices and is stored compressed (TOAST), and the stored value itself
    would be decompressed again for every candidate camera (250 vertices: a third of a radius query's time)."""
    return (
        f"registry.sees({agency}, (SELECT ST_SetSRID(a.jurisdiction, 4326) FROM registry.agencies a"  # noqa: S608
        f" WHERE a.id = {agency}), c.visible_to, c.geom)"
    )


class Sql:
    """A query being built: SQL fragments and their positional parameters. Fragments are constants of this module;
    every value a caller gives is a bound parameter (hence the `noqa: S608` on the f-strings that join them)."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self.where: list[str] = []

    def p(self, value: Any, cast: str | None = None) -> str:
        self.params.append(value)
        return f"${len(self.params)}" + (f"::{cast}" if cast else "")

    def boxes(self, boxes: list[tuple[float, float, float, float]]) -> None:
        parts = [
            f"c.geom && ST_MakeEnvelope({self.p(w)}, {self.p(s)}, {self.p(e)}, {self.p(n)}, 4326)"
            for w, s, e, n in boxes
        ]
        self.where.append(parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")")


@dataclass
class Search:
    """One scoped search: where it looks, what it keeps, how it is ordered, and what the audit record says."""

    caller: Caller
    action: str
    filters: Filters
    reference: Reference
    point: QueryPoint | None = None
    area_geojson: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    sql: Sql = field(default_factory=Sql)
    order: Order = "id"
    pt: str | None = None  # SQL of the query point (geometry)
    dist: str | None = None  # SQL of the geodesic distance from the query point
    subject: tuple[str, str] | None = None  # (type, id) when one thing is looked at
    keyset: str | None = None  # the cursor's condition: applies to the page, not to the count
    # Polygons differ so much from one query to the next that a cached generic plan (which PostgreSQL may switch
    # to after five runs of a prepared statement) is often a bad one: plan each polygon query for its own values.
    custom_plan: bool = False
    prelude: str = ""  # a WITH clause the page's statement starts with (the K-nearest bound)

    def __post_init__(self) -> None:
        s = self.sql
        s.where.append(sees(s.p(self.caller.agency.id, "uuid")))
        if self.point is not None:
            self.pt = f"ST_SetSRID(ST_MakePoint({s.p(self.point.lon)}, {s.p(self.point.lat)}), 4326)"
            self.dist = f"ST_Distance(c.geom::geography, {self.pt}::geography)"
        self._filters()

    @property
    def contacts(self) -> bool:
        r = self.reference
        return r.contacts and r.case_number is not None and self.caller.may_see_contacts

    def _filters(self) -> None:
        f, s = self.filters, self.sql
        if f.owner_kind:
            s.where.append(f"c.owner_kind = ANY({s.p(list(f.owner_kind), 'text[]')})")
        if f.placement:
            s.where.append(f"c.placement = ANY({s.p(list(f.placement), 'text[]')})")
        if f.live_mode:
            s.where.append(f"c.live_mode = ANY({s.p(list(f.live_mode), 'text[]')})")
        if f.live is not None:
            s.where.append("c.live_mode <> 'never'" if f.live else "c.live_mode = 'never'")
        self.incident = s.p(f.incident_at, "timestamptz") if f.incident_at is not None else None
        if f.only_available:
            s.where.append(
                f"c.retention_days IS NOT NULL AND {self.incident} + c.retention_days * interval '1 day' > now()"
            )
        if f.facing:
            assert self.pt is not None, "facing needs a query point"
            # The camera's sector: the point is within its range, and the azimuth from the camera to the point
            # is within fov/2 of the direction it faces (a camera at the point itself sees it).
            az = f"degrees(ST_Azimuth(c.geom::geography, {self.pt}::geography))"
            diff = f"abs({az} - c.direction_deg - 360 * floor(({az} - c.direction_deg + 180) / 360))"
            s.where.append(
                "c.direction_deg IS NOT NULL AND c.fov_deg IS NOT NULL AND c.range_m IS NOT NULL"
                f" AND ST_DWithin(c.geom::geography, {self.pt}::geography, c.range_m)"
                f" AND (c.fov_deg >= 360 OR coalesce({diff} <= c.fov_deg / 2.0, true))"
            )

    # --------------------------------------------------------------------------------------- spatial shapes

    def within(self, metres: float) -> None:
        """Cameras within `metres` (geodesic) of the query point: index prefilter, then the exact test."""
        assert self.pt is not None and self.point is not None
        boxes = expand_boxes(self.point.lon, self.point.lat, metres)
        if boxes:
            self.sql.boxes(boxes)
        self.sql.where.append(
            f"ST_DWithin(c.geom::geography, {self.pt}::geography, {self.sql.p(float(metres))})"
        )

    def nearest(self, k: int) -> None:
        """Only the K cameras nearest the query point, exactly, in the page's one statement: the largest geodesic
        distance D among K candidates taken by the index's planar order (`<->`) bounds the true K nearest, so a
        geodesic search out to D (an index prefilter by a box computed from D, as `within` computes its boxes in
        Python, then the exact test), sorted and cut at K, is exact. D and its box are computed once per statement
        (materialised CTEs); no camera within reach means no D and an empty page."""
        assert self.pt is not None and self.point is not None
        s = self.sql
        candidates = (
            f"SELECT c.geom FROM registry.cameras c WHERE {' AND '.join(s.where)}"  # noqa: S608
            f" ORDER BY c.geom <-> {self.pt} LIMIT {s.p(k)}"
        )
        lon, lat = s.p(self.point.lon, "float8"), s.p(self.point.lat, "float8")
        cos_lat = s.p(math.cos(math.radians(self.point.lat)), "float8")
        # expand_boxes in SQL, as one box: r the angle of D (radians, generous); dlon only where the cap is bounded
        # in longitude. Where Python gives two boxes (across the antimeridian) or none (a pole, half the globe),
        # this box is the whole band of latitudes: still a prefilter the index uses in one scan with the
        # jurisdiction's, and the geodesic test decides.
        r = f"k.d / {_MIN_RADIUS_M} * {_MARGIN} + 1e-9"
        south, north = f"greatest({lat} - b.dlat, -90)", f"least({lat} + b.dlat, 90)"
        self.prelude = (
            "WITH k AS MATERIALIZED (SELECT max(ST_Distance(s.geom::geography,"  # noqa: S608
            f" {self.pt}::geography)) + 0.01 AS d FROM ({candidates}) s),"
            f" a AS MATERIALIZED (SELECT k.d, {r} AS r FROM k),"
            " b AS MATERIALIZED (SELECT a.d, degrees(a.r) AS dlat,"
            f" CASE WHEN a.r < pi() / 2 AND {lat} - degrees(a.r) > -90 AND {lat} + degrees(a.r) < 90"
            f" AND sin(a.r) < {cos_lat} THEN degrees(asin(sin(a.r) / {cos_lat})) * {_MARGIN} + 1e-9 END AS dlon"
            " FROM a),"
            " e AS MATERIALIZED (SELECT b.d, CASE"
            f" WHEN b.dlon IS NULL OR {lon} - b.dlon < -180 OR {lon} + b.dlon > 180"
            f" THEN ST_MakeEnvelope(-180, {south}, 180, {north}, 4326)"
            f" ELSE ST_MakeEnvelope({lon} - b.dlon, {south}, {lon} + b.dlon, {north}, 4326) END AS box FROM b) "
        )
        s.where.append("c.geom && (SELECT e.box FROM e)")
        s.where.append(f"ST_DWithin(c.geom::geography, {self.pt}::geography, (SELECT e.d FROM e))")  # noqa: S608

    def in_bbox(self, bbox: BBox) -> None:
        self.sql.boxes(bbox.boxes())

    def in_area(self, geojson: str) -> None:
        self.custom_plan = True
        self.sql.where.append(
            f"ST_Intersects(c.geom, ST_SetSRID(ST_GeomFromGeoJSON({self.sql.p(geojson)}), 4326))"
        )

    # ----------------------------------------------------------------------------------------------- SQL

    def _properties(self) -> str:
        props = [
            "'registration_id', c.registration_id",
            "'label', c.label",
            "'owner_kind', c.owner_kind",
            "'placement', c.placement",
            "'direction_deg', c.direction_deg",
            "'fov_deg', c.fov_deg",
            "'range_m', c.range_m",
            "'covers', c.covers",
            "'retention_days', c.retention_days",
            "'recording', c.recording",
            "'shares_history', c.shares_history",
            "'live_mode', c.live_mode",
            "'schedule', c.schedule",
            """'registered_at', to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""",
        ]
        if self.pt is not None:
            props.append(f"'distance_m', round(({self.dist})::numeric, 2)")
            props.append(
                f"'bearing_deg', round(degrees(ST_Azimuth({self.pt}::geography, c.geom::geography))::numeric, 1)"
            )
        if self.incident is not None:
            until = f"({self.incident} + c.retention_days * interval '1 day')"
            props.append(
                f"""'footage_until', to_char({until} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
            )
            props.append(f"'footage_likely_available', {until} > now()")
        return "json_build_object(" + ", ".join(props) + ")::text"

    def _feature(self) -> str:
        return (
            """'{"type":"Feature","id":"' || c.id::text || '","geometry":' || ST_AsGeoJSON(c.geom, 7)"""
            f""" || ',"properties":' || {self._properties()} || '}}'"""
        )

    def _order_by(self, order: Order) -> str:
        if order == "distance":
            return f"{self.dist}, c.id"
        if order == "id_desc":
            return "c.id DESC"
        return "c.id"

    def rows_sql(self, limit_param: str, order: Order, *, contacts: bool = False) -> str:
        order_by = self._order_by(order)
        where = [*self.sql.where, self.keyset] if self.keyset else self.sql.where
        cols = [f"{self._feature()} AS f", "c.id AS id", f"{self.dist or 'NULL::float8'} AS d"]
        joins = ""
        if contacts:
            cols += [
                "c.registration_id AS rid",
                "r.contact_name_enc",
                "r.contact_email_enc",
                "r.contact_phone_enc",
                "r.preferred_contact_method",
                "r.contact_hours_enc",
                "r.notes_for_investigators_enc",
            ]
            joins = " JOIN registry.registrations r ON r.id = c.registration_id"
        select = (
            f"SELECT {', '.join(cols)} FROM registry.cameras c{joins}"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY {order_by} LIMIT {limit_param}"
        )
        return self.prelude + select

    def audited_rows_sql(self, limit: int, order: Order) -> str:
        """The page and its audit record in one statement (one round trip, one transaction): the page's rows
        (`limit + 1`, as `rows_sql`) are computed first, then `audit.append_event` appends the record with the
        number of Features the page returns, and the rows are returned only once it has been appended; the
        statement commits before the answer can leave. The record's other fields come from `audit_event`
        (every string made storable), so it is the record the group commit would have written."""
        s = self.sql
        page = self.rows_sql(s.p(limit + 1), order).removeprefix(self.prelude)
        event = self.audit_event(0).params()
        a = [s.p(v) for v in event[:-1]]
        details = s.p(event[-1], "jsonb")
        # jsonb keeps one value per key: `||` sets "results", as a record built after the page would hold it.
        results = f"jsonb_build_object('results', (SELECT least(count(*), {s.p(limit)}) FROM p))"  # noqa: S608
        with_ = self.prelude.rstrip() + ", " if self.prelude else "WITH "
        return (
            f"{with_}p AS MATERIALIZED ({page}),"  # noqa: S608
            f" r AS MATERIALIZED (SELECT audit.append_event({', '.join(a)}, {details} || {results}) AS id)"
            # A condition without a column of p is checked once, before p is read: the record is appended even
            # for an empty page, and no row comes back unless it was.
            " SELECT p.f, p.id, p.d FROM p WHERE (SELECT r.id FROM r) IS NOT NULL"
        )

    async def bound_page_before(self, limit: int) -> bool:
        """Make a page read backwards (`after("id_desc", key)`) readable forwards, as a stream reads it: the
        keyset becomes `start <= id < key`, `start` the smallest id of the `limit` rows just before the key.
        Whether any row lies before `start` (a `prev` page exists)."""
        assert self.keyset is not None
        where = " AND ".join([*self.sql.where, self.keyset])
        # The Feature expression only types the parameters the properties use (see count_sql): never computed.
        query = (
            f"SELECT s.id, count(*) OVER () AS n FROM (SELECT c.id, {self._feature()} AS f"  # noqa: S608
            f" FROM registry.cameras c WHERE {where} ORDER BY c.id DESC LIMIT {self.sql.p(limit + 1)}) s"
            " ORDER BY s.id LIMIT 2"
        )
        try:
            async with self.connection() as conn:
                rows = await conn.fetch(query, *self.sql.params)
        finally:
            self.sql.params.pop()
        if not rows:
            return False
        more = rows[0]["n"] > limit  # the smallest row read is the one before the page
        start = rows[1]["id"] if more else rows[0]["id"]
        self.keyset += f" AND c.id >= {self.sql.p(start, 'uuid')}"
        return bool(more)

    def count_sql(self) -> str:
        # The Feature expression is never computed (the subquery is flattened and `f` is unused); it is there so
        # that every parameter, including those only the properties use, is typed in the statement.
        return (
            f"SELECT count(*) FROM (SELECT {self._feature()} AS f FROM registry.cameras c"  # noqa: S608
            f" WHERE {' AND '.join(self.sql.where)}) s"
        )

    def after(self, order: Order, key: tuple[float, uuid.UUID] | uuid.UUID) -> None:
        """Keyset: only rows after (or, for id_desc, before) the cursor's key."""
        if order == "distance":
            assert isinstance(key, tuple)
            self.keyset = f"({self.dist}, c.id) > ({self.sql.p(key[0])}, {self.sql.p(key[1], 'uuid')})"
        elif order == "id_desc":
            self.keyset = f"c.id < {self.sql.p(key, 'uuid')}"
        else:
            self.keyset = f"c.id > {self.sql.p(key, 'uuid')}"

    # ------------------------------------------------------------------------------------------- running

    def audit_event(self, returned: int, extra: dict[str, Any] | None = None) -> AuditEvent:
        p = self.caller.principal
        details: dict[str, Any] = {**self.details, "filters": self.filters.describe(), "results": returned}
        if self.reference.cad_incident:
            details["cad_incident"] = self.reference.cad_incident
        if self.point is not None:
            details["point"] = [self.point.lon, self.point.lat]
            if self.point.crs is not None:
                details["crs"] = f"EPSG:{self.point.crs}"
                details["point_in_crs"] = list(self.point.given or ())
        details.update(extra or {})
        return AuditEvent(
            service=SERVICE,
            actor=p.sub,
            actor_role=self.caller.role,
            agency=self.caller.agency.slug,
            action=self.action,
            subject_type=self.subject[0] if self.subject else None,
            subject_id=self.subject[1] if self.subject else None,
            case_number=self.reference.audit_value,
            area_geojson=self.area_geojson or (self.point.geojson() if self.point else None),
            details=details,
        )

    async def audit(self, returned: int, extra: dict[str, Any] | None = None) -> None:
        await audit_log.append(self.audit_event(returned, extra))

    async def count(self) -> int:
        async with self.connection() as conn:
            return int(await conn.fetchval(self.count_sql(), *self.sql.params))

    def connection(self, pool: Any = None) -> AbstractAsyncContextManager[Any]:
        """A connection of `pool` (the read pool by default); inside a transaction planning for these values when
        custom_plan is set (read-only on the read pool)."""
        pool = pool or db.read
        return self._planned(pool) if self.custom_plan else pooled(pool)

    @asynccontextmanager
    async def _planned(self, pool: Any) -> AsyncIterator[Any]:
        async with pooled(pool) as conn:
            async with conn.transaction(readonly=pool is db.read):
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                yield conn


@dataclass
class Page:
    """One page of Features, already joined into the text of a JSON array's members."""

    body: str
    returned: int
    more: bool  # a row beyond the page exists (in the direction it was read)
    first: tuple[float | None, uuid.UUID] | None
    last: tuple[float | None, uuid.UUID] | None


async def fetch_page(search: Search, limit: int, order: Order) -> Page:
    """A page of at most `limit` Features, each built by PostgreSQL, joined here (or, with contacts, opened here),
    and the search's audit record, committed before this returns (fail closed: a record that cannot be written
    fails this search, and only this one).

    When nothing else is being appended (`audit_log.alone`), the page and its record are one statement on the
    audit pool (`audited_rows_sql`: one round trip, one transaction), where it reaches the read pool's database
    (`db.one_statement`); otherwise (concurrent searches, reads pointed at a replica or a trail in a database of
    its own, or a page that discloses contacts, whose record lists them) the page is read on the read pool and
    the record goes through the group commit (audit_log.py). One row beyond the page is read to know whether another page
    follows. Joining the rows here rather than with `string_agg` in SQL costs this process a little more and the
    database less, and the database is the part that does not scale out (measured both ways:
    docs/bench-results.md)."""
    if search.contacts:
        page = await fetch_with_contacts(search, min(limit, CONTACTS_MAX), order)
        await search.audit(page.returned)
        return page
    sql = search.sql
    n = len(sql.params)
    try:
        with audit_log.alone() as alone:
            if alone and db.one_statement:
                query = search.audited_rows_sql(limit, order)
                async with search.connection(db.audit) as conn:
                    rows = await conn.fetch(query, *sql.params)
                return _page(rows, limit, order)
        query = search.rows_sql(sql.p(limit + 1), order)
        async with search.connection() as conn:
            rows = await conn.fetch(query, *sql.params)
    finally:
        del sql.params[n:]  # a count or a stream of the same search binds its own
    page = _page(rows, limit, order)
    await search.audit(page.returned)
    return page


def _page(rows: list[Any], limit: int, order: Order) -> Page:
    page = rows[:limit]
    if not page:
        return Page("", 0, False, None, None)
    first, last = (page[0]["d"], page[0]["id"]), (page[-1]["d"], page[-1]["id"])
    if order == "id_desc":  # read backwards from a cursor: shown in ascending order
        page.reverse()
        first, last = last, first
    return Page(",".join([r["f"] for r in page]), len(page), len(rows) > limit, first, last)


def _open(ring: Any, sealed: bytes | None, context: str) -> str | None:
    try:
        return ring.open(sealed, context)  # type: ignore[no-any-return]
    except Exception:  # a value sealed under a key this deployment no longer holds
        log.warning("could not open %s", context.rsplit(":", 1)[-1])
        return None


async def fetch_with_contacts(search: Search, limit: int, order: Order) -> Page:
    sql = search.sql
    query = search.rows_sql(sql.p(limit + 1), order, contacts=True)
    async with search.connection() as conn:
        rows = await conn.fetch(query, *sql.params)
    sql.params.pop()
    more = len(rows) > limit
    rows = rows[:limit]
    if order == "id_desc":
        rows.reverse()
    ring = keyring()
    # The owners' own texts are sealed under each registration's data key: the page's keys in one round trip to
    # the key store (a deleted registration's is gone, and so are its texts).
    keys = await keystore("geo_query").keys(
        r["rid"]
        for r in rows
        if r["contact_hours_enc"] is not None or r["notes_for_investigators_enc"] is not None
    )
    parts: list[str] = []
    disclosed: list[str] = []
    for r in rows:
        rid = str(r["rid"])
        key = keys.get(r["rid"])
        contact = {
            "name": _open(ring, r["contact_name_enc"], f"registration:{rid}:name"),
            "email": _open(ring, r["contact_email_enc"], f"registration:{rid}:email"),
            "phone": _open(ring, r["contact_phone_enc"], f"registration:{rid}:phone"),
            "preferred_method": r["preferred_contact_method"],
            "hours": open_with(key, r["contact_hours_enc"], f"registration:{rid}:contact_hours"),
            "notes": open_with(
                key, r["notes_for_investigators_enc"], f"registration:{rid}:notes_for_investigators"
            ),
        }
        disclosed.append(rid)
        f: str = r["f"]
        # The Feature text ends with the properties object and the Feature's closing braces.
        parts.append(f[:-2] + ',"contact":' + orjson.dumps(contact).decode() + "}}")
    search.details["contacts_disclosed"] = sorted(set(disclosed))
    first = (rows[0]["d"], rows[0]["id"]) if rows else None
    last = (rows[-1]["d"], rows[-1]["id"]) if rows else None
    return Page(",".join(parts), len(rows), more, first, last)


async def stream_page(
    search: Search,
    limit: int,
    order: Order,
    head: str,
    tail: Callable[
        [int, tuple[float | None, uuid.UUID] | None, tuple[float | None, uuid.UUID] | None, bool], str
    ],
) -> AsyncIterator[bytes]:
    """A FeatureCollection streamed from a server-side cursor, in `order` as it is read: `head` (ending in
    `"features":[`), the Features in chunks, then `tail(returned, first_key, last_key, more)` (closing the array and
    adding links and counts). The caller has audited the search before the stream starts; a second record, when
    the stream ends, gives the number of Features that were sent."""
    query = search.rows_sql(search.sql.p(limit + 1), order)
    returned = 0
    first: tuple[float | None, uuid.UUID] | None = None
    last: tuple[float | None, uuid.UUID] | None = None
    more = False
    completed = False
    try:
        yield head.encode()
        async with pooled(db.read) as conn, conn.transaction(readonly=True):
            if search.custom_plan:
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            chunk: list[str] = []
            async for r in conn.cursor(query, *search.sql.params, prefetch=STREAM_AT):
                if returned == limit:
                    more = True
                    break
                chunk.append(r["f"])
                returned += 1
                last = (r["d"], r["id"])
                if first is None:
                    first = last
                if len(chunk) >= STREAM_AT:
                    yield (("," if returned > len(chunk) else "") + ",".join(chunk)).encode()
                    chunk = []
            if chunk:
                yield (("," if returned > len(chunk) else "") + ",".join(chunk)).encode()
        yield tail(returned, first, last, more).encode()
        completed = True
    finally:
        try:
            await search.audit(returned, {"streamed": True, "phase": "ended", "completed": completed})
        except Exception:  # the body has gone; the failure must still be seen
            log.exception("could not write the audit record of a streamed answer")


_now: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """Now, to the second (every answer's `timeStamp`): formatted once a second, not once an answer."""
    global _now
    second = int(time.time())
    if second != _now[0]:
        _now = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _now[1]
