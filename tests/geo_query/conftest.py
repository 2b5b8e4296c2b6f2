"""A seeded fixture registry for geo_query, inserted directly (as registry_api would write it), and the independent
model of it the tests compare answers with: geodesic distances with pyproj, containment with shapely.

Agency X has an irregular jurisdiction over part of New York City; agency Y overlaps it. Cameras fall inside and
outside X's jurisdiction and are shared with X, with Y, with both, or paused (`visible_to = '{}'`). Agency Z's
jurisdiction straddles the antimeridian (Fiji), with cameras on both sides of it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point as SPoint
from shapely.geometry import shape

from shared.auth import hash_secret
from shared.crypto import keyring
from tests.support import Db, seal_owner_text

GEOD = Geod(ellps="WGS84")
KINDS = ["residential", "residential", "business", "school", "place_of_worship", "nonprofit"]

X_JURISDICTION = {
    "type": "MultiPolygon",
    "coordinates": [
        [
            [
                [-74.02, 40.70],
                [-73.96, 40.69],
                [-73.93, 40.73],
                [-73.95, 40.79],
                [-74.00, 40.78],
                [-74.03, 40.74],
                [-74.02, 40.70],
            ]
        ]
    ],
}
Y_JURISDICTION = {
    "type": "MultiPolygon",
    "coordinates": [[[[-74.00, 40.70], [-73.90, 40.70], [-73.90, 40.80], [-74.00, 40.80], [-74.00, 40.70]]]],
}
Z_JURISDICTION = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[179.0, -17.5], [180.0, -17.5], [180.0, -16.0], [179.0, -16.0], [179.0, -17.5]]],
        [[[-180.0, -17.5], [-179.0, -17.5], [-179.0, -16.0], [-180.0, -16.0], [-180.0, -17.5]]],
    ],
}


@dataclass
class Cam:
    id: uuid.UUID
    registration_id: uuid.UUID
    lon: float
    lat: float
    visible_to: set[uuid.UUID]
    owner_kind: str
    placement: str | None
    live_mode: str
    retention_days: int | None
    direction_deg: int | None = None
    fov_deg: int | None = None
    range_m: float | None = None

    def distance(self, lon: float, lat: float) -> float:
        return float(GEOD.inv(lon, lat, self.lon, self.lat)[2])


@dataclass
class AgencyFixture:
    id: uuid.UUID
    slug: str
    jurisdiction: object  # shapely geometry


@dataclass
class Registry:
    x: AgencyFixture
    y: AgencyFixture
    z: AgencyFixture
    cams: list[Cam] = field(default_factory=list)
    emails: dict[uuid.UUID, str] = field(default_factory=dict)

    def visible(self, agency: AgencyFixture, keep: Callable[[Cam], bool] = lambda c: True) -> list[Cam]:
        """What the agency may see: shared with it, inside its jurisdiction (the independent model)."""
        return [
            c
            for c in self.cams
            if agency.id in c.visible_to
            and shapely.intersects(agency.jurisdiction, SPoint(c.lon, c.lat))
            and keep(c)
        ]


def insert_agency(db: Db, slug: str, jurisdiction: dict, max_radius: float = 2000.0) -> AgencyFixture:
    import orjson

    aid = db.fetchval(
        "INSERT INTO registry.agencies (slug, name, jurisdiction, max_search_radius_m)"
        " VALUES ($1, $2, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($3), 4326)), $4) RETURNING id",
        slug,
        f"Agency {slug}",
        orjson.dumps(jurisdiction).decode(),
        max_radius,
    )
    return AgencyFixture(aid, slug, shape(jurisdiction))


def insert_registration(
    db: Db,
    agency: AgencyFixture,
    lon: float,
    lat: float,
    *,
    status: str = "active",
    kind: str = "residential",
) -> tuple[uuid.UUID, str]:
    ring = keyring()
    rid = uuid.uuid4()
    email = f"owner-{rid.hex[:8]}@example.org"
    db.execute(
        "INSERT INTO registry.registrations (id, agency_id, status, owner_kind, location, contact_name_enc,"
        " contact_email_enc, contact_phone_enc, contact_email_index, key_id, credential_hash,"
        " preferred_contact_method, notes_for_investigators_enc)"
        " VALUES ($1, $2, $3, $4, ST_SetSRID(ST_MakePoint($5, $6), 4326), $7, $8, $9, $10, $11, $12, 'email', $13)",
        rid,
        agency.id,
        status,
        kind,
        lon,
        lat,
        ring.seal(f"Owner {rid.hex[:6]}", f"registration:{rid}:name"),
        ring.seal(email, f"registration:{rid}:email"),
        ring.seal("+1 555 0100", f"registration:{rid}:phone"),
        ring.blind_index(email),
        ring.current,
        hash_secret(uuid.uuid4().hex),
        seal_owner_text(rid, "notes_for_investigators", "Ring the side door"),
    )
    return rid, email


def insert_camera(db: Db, cam: Cam) -> None:
    db.execute(
        "INSERT INTO registry.cameras (id, registration_id, geom, direction_deg, fov_deg, range_m, placement,"
        " retention_days, live_mode, owner_kind, visible_to)"
        " VALUES ($1, $2, ST_SetSRID(ST_MakePoint($3, $4), 4326), $5, $6, $7, $8, $9, $10, $11, $12)",
        cam.id,
        cam.registration_id,
        cam.lon,
        cam.lat,
        cam.direction_deg,
        cam.fov_deg,
        cam.range_m,
        cam.placement,
        cam.retention_days,
        cam.live_mode,
        cam.owner_kind,
        sorted(cam.visible_to),
    )


def _random_cams(
    db: Db,
    reg: Registry,
    rng: random.Random,
    home: AgencyFixture,
    n_regs: int,
    box: tuple[float, float, float, float],
    sharing: Callable[[random.Random], tuple[str, set[uuid.UUID]]],
) -> None:
    w, s, e, n = box
    for _ in range(n_regs):
        status, visible = sharing(rng)
        kind = rng.choice(KINDS)
        lon = rng.uniform(w, e) if w <= e else (rng.uniform(w, e + 360) + 180) % 360 - 180
        lat = rng.uniform(s, n)
        rid, email = insert_registration(db, home, lon, lat, status=status, kind=kind)
        reg.emails[rid] = email
        for _ in range(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9])):
            clon = lon + rng.uniform(-0.01, 0.01)
            clon = (clon + 180) % 360 - 180
            cam = Cam(
                id=uuid.uuid4(),
                registration_id=rid,
                lon=clon,
                lat=lat + rng.uniform(-0.01, 0.01),
                visible_to=set(visible),
                owner_kind=kind,
                placement=rng.choice(["indoor", "outdoor", "outdoor", None]),
                live_mode=rng.choice(["never", "never", "on_alert", "emergency"]),
                retention_days=rng.choice([3, 7, 14, 30, None]),
                direction_deg=rng.choice([None, rng.randrange(360)]),
                fov_deg=rng.choice([60, 90, 360]),
                range_m=rng.choice([20.0, 40.0, None]),
            )
            insert_camera(db, cam)
            reg.cams.append(cam)


@pytest.fixture(scope="session")
def registry_data(db: Db) -> Registry:
    rng = random.Random(4_2026)
    tag = uuid.uuid4().hex[:8]
    x = insert_agency(db, f"gx-{tag}", X_JURISDICTION)
    y = insert_agency(db, f"gy-{tag}", Y_JURISDICTION)
    z = insert_agency(db, f"gz-{tag}", Z_JURISDICTION, max_radius=20_000.0)
    reg = Registry(x, y, z)

    def nyc_sharing(r: random.Random) -> tuple[str, set[uuid.UUID]]:
        roll = r.random()
        if roll < 0.55:
            return "active", {x.id}
        if roll < 0.70:
            return "active", {x.id, y.id}
        if roll < 0.80:
            return "active", {y.id}
        if roll < 0.90:
            return "paused", set()
        return "withdrawn", set()

    _random_cams(db, reg, rng, x, 90, (-74.05, 40.67, -73.90, 40.81), nyc_sharing)
    _random_cams(db, reg, rng, z, 25, (179.2, -17.3, -179.2, -16.2), lambda r: ("active", {z.id}))
    db.execute("ANALYZE registry.cameras")
    return reg
