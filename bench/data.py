"""The bench data set: seeded cameras in two layouts, loaded into the real registry tables of a dedicated database.

- `metro`: one dense metro, a 40 × 40 km box around a centre, denser downtown — far denser than any real
  registry (about 1,100 cameras within 500 m of a typical camera), the layout the reference figures in docs/performance.md were
  measured on.
- `regions`: many metro areas of different sizes with realistic density (tens to a few hundred cameras within
  500 m of a typical incident), what a CAD query meets in practice.

Each layout belongs to one agency whose jurisdiction covers it; every camera has a registration (contact sealed,
credential stored as a hash), a share with the agency and `visible_to` = [the agency], as registry_api writes them.
A QUICK data set has a tenth of the cameras in a box a tenth of the area (and a tenth of the metros), so a query
meets the same density and returns as many cameras as in the full set.

Rows are generated with numpy from one seed, sorted in spatial (Z-order) order and loaded with asyncpg's binary
COPY with the secondary indexes and foreign keys dropped and rebuilt after; then VACUUM ANALYZE. A marker table
records what was loaded, so a re-run with the same seed and size reuses the data (migrated to the head
first when migrations were added since).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import numpy as np

from bench.settings import ROOT, SEED, Bench, say

GEN_VERSION = 4
KM_PER_DEG_LAT = 111.32
OWNER_KINDS = ["residential", "business", "school", "place_of_worship", "nonprofit", "government"]
OWNER_WEIGHTS = [0.55, 0.33, 0.04, 0.03, 0.03, 0.02]
COVERS = [
    ["street", "sidewalk"],
    ["driveway"],
    ["street"],
    ["entrance", "parking"],
    ["alley", "yard"],
    ["sidewalk", "entrance"],
    ["parking"],
    ["yard"],
]
PER_REGISTRATION = np.array([1, 1, 1, 2, 2, 3])


@dataclass(frozen=True)
class Layout:
    key: str
    slug: str
    agency_name: str
    title: str


METRO = Layout("metro", "bench-metro", "Bench Metro Police Department", "dense metro")
REGIONS = Layout("regions", "bench-regions", "Bench Regional Alliance", "many metros")
LAYOUTS = (METRO, REGIONS)


@dataclass
class Generated:
    """One layout's cameras and registrations, in spatial order, and its agency's jurisdiction."""

    layout: Layout
    cam_lon: np.ndarray
    cam_lat: np.ndarray
    cam_reg: np.ndarray  # index of each camera's registration
    reg_lon: np.ndarray
    reg_lat: np.ndarray
    jurisdiction: list[tuple[float, float, float, float]]  # boxes (w, s, e, n)


# ------------------------------------------------------------------------------------------------- generation


def _km_to_deg(lat: float) -> tuple[float, float]:
    """Degrees of longitude and latitude per kilometre at `lat`."""
    return 1 / (KM_PER_DEG_LAT * math.cos(math.radians(lat))), 1 / KM_PER_DEG_LAT


def _cluster(
    rng: np.random.Generator, n: int, lon0: float, lat0: float, half_km: float, sigma_km: float, core: float
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """`n` points in a square of half-side `half_km`: a share `core` Gaussian around the centre (downtown), the
    rest uniform over the square."""
    dlon, dlat = _km_to_deg(lat0)
    x = np.empty(n)
    y = np.empty(n)
    in_core = rng.random(n) < core
    k = int(in_core.sum())
    u = n - k
    x[~in_core] = rng.uniform(-half_km, half_km, u)
    y[~in_core] = rng.uniform(-half_km, half_km, u)
    cx = rng.normal(0, sigma_km, k)
    cy = rng.normal(0, sigma_km, k)
    outside = (np.abs(cx) > half_km) | (np.abs(cy) > half_km)
    while outside.any():  # redraw the downtown points that fell outside the square
        m = int(outside.sum())
        cx[outside] = rng.normal(0, sigma_km, m)
        cy[outside] = rng.normal(0, sigma_km, m)
        outside = (np.abs(cx) > half_km) | (np.abs(cy) > half_km)
    x[in_core] = cx
    y[in_core] = cy
    pad = 0.5  # km: the jurisdiction reaches a little past the outermost camera
    box = (
        lon0 - (half_km + pad) * dlon,
        lat0 - (half_km + pad) * dlat,
        lon0 + (half_km + pad) * dlon,
        lat0 + (half_km + pad) * dlat,
    )
    return lon0 + x * dlon, lat0 + y * dlat, box


def _metro_centres(rng: np.random.Generator, m: int, avoid: tuple[float, float]) -> list[tuple[float, float]]:
    """`m` metro centres over a continent-sized area, at least 150 km from each other and from the dense metro."""
    centres: list[tuple[float, float]] = []
    while len(centres) < m:
        lon, lat = float(rng.uniform(-122.0, -71.0)), float(rng.uniform(29.0, 47.0))
        ok = True
        for clon, clat in [avoid, *centres]:
            dx = (lon - clon) * KM_PER_DEG_LAT * math.cos(math.radians(lat))
            dy = (lat - clat) * KM_PER_DEG_LAT
            if dx * dx + dy * dy < 150.0**2:
                ok = False
                break
        if ok:
            centres.append((lon, lat))
    return centres


METRO_CENTRE = (-87.7500, 41.8500)


def _registrations(layout: Layout, n_cameras: int, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """How many registrations hold `n_cameras` cameras (1-3 each) and each one's camera count."""
    counts = rng.choice(PER_REGISTRATION, size=int(n_cameras / 1.6) + 1000)
    total = np.cumsum(counts)
    n_regs = int(np.searchsorted(total, n_cameras) + 1)
    counts = counts[:n_regs].copy()
    counts[-1] -= int(total[n_regs - 1] - n_cameras)
    return n_regs, counts


def generate(layout: Layout, n_cameras: int, seed: int = SEED) -> Generated:
    rng = np.random.default_rng([seed, LAYOUTS.index(layout)])
    n_regs, per_reg = _registrations(layout, n_cameras, rng)
    scale = math.sqrt(n_cameras / 1_000_000)
    if layout is METRO:
        # Half the cameras downtown (sigma 4.4 km), half spread over the box: about 1,100 within 500 m of a
        # typical camera, as in docs/performance.md. The QUICK set shrinks the box so the density stays the same.
        lon, lat, box = _cluster(rng, n_regs, *METRO_CENTRE, 20.0 * scale, 4.4 * scale, 0.5)
        boxes = [box]
    else:
        # Metro areas of Zipf-like sizes; bigger ones spread wider, so density grows only with their square root.
        m = 5 if n_cameras <= 100_000 else 50
        weights = 1.0 / np.arange(1, m + 1) ** 0.8
        sizes = np.floor(weights / weights.sum() * n_regs).astype(int)
        sizes[0] += n_regs - int(sizes.sum())
        centres = _metro_centres(rng, m, METRO_CENTRE)
        lons, lats, boxes = [], [], []
        for (clon, clat), size in zip(centres, sizes, strict=True):
            f = (size * 1.6 / 20_000) ** 0.25
            lo, la, box = _cluster(rng, int(size), clon, clat, 15.0 * f, 3.0 * f, 0.6)
            lons.append(lo)
            lats.append(la)
            boxes.append(box)
        lon, lat = np.concatenate(lons), np.concatenate(lats)
    order = np.argsort(_zorder(lon, lat), kind="stable")
    reg_lon, reg_lat, per_reg = lon[order], lat[order], per_reg[order]
    cam_reg = np.repeat(np.arange(n_regs), per_reg)
    # A registration's cameras stand within about 20 m of its address.
    cam_lon = reg_lon[cam_reg] + rng.uniform(-0.0002, 0.0002, n_cameras)
    cam_lat = reg_lat[cam_reg] + rng.uniform(-0.00015, 0.00015, n_cameras)
    cam_order = np.argsort(_zorder(cam_lon, cam_lat), kind="stable")
    return Generated(
        layout, cam_lon[cam_order], cam_lat[cam_order], cam_reg[cam_order], reg_lon, reg_lat, boxes
    )


def _spread(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.uint64)
    v = (v | (v << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x3333333333333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x5555555555555555)


def _zorder(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Morton (Z-order) key of each point on a 2^24 grid: rows sorted by it are stored in spatial order."""
    q = float(1 << 24) - 1
    x = np.floor((lon + 180.0) / 360.0 * q)
    y = np.floor((lat + 90.0) / 180.0 * q)
    return _spread(x) | (_spread(y) << np.uint64(1))


def query_points(gen: Generated, count: int, seed: int = SEED) -> list[tuple[float, float]]:
    """Incident points drawn from the data (cameras are where people are), jittered by up to about 30 m."""
    rng = np.random.default_rng([seed, 7, LAYOUTS.index(gen.layout)])
    idx = rng.choice(len(gen.cam_lon), size=count, replace=False)
    lon = gen.cam_lon[idx] + rng.uniform(-0.0003, 0.0003, count)
    lat = gen.cam_lat[idx] + rng.uniform(-0.00025, 0.00025, count)
    return [(round(float(a), 6), round(float(b), 6)) for a, b in zip(lon, lat, strict=True)]


# --------------------------------------------------------------------------------------------------- database


def dataset_key(bench: Bench) -> dict[str, object]:
    """What the loaded data set must match to be reused. The migrations' head is part of it: a migration that
    rewrites camera rows (as 0007 numbers imported cameras) would leave the table bloated and out of its spatial
    order, which is not the table the figures are about; so a new migration means a fresh load."""
    from shared.app import migration_head

    return {
        "generator": GEN_VERSION,
        "seed": SEED,
        "cameras_per_layout": bench.cameras_per_layout,
        "migrations": migration_head(),
    }


async def _migrate(bench: Bench, name: str, revision: str = "head") -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "-x",
        f"url={bench.owner(name)}",
        "upgrade",
        revision,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"migrating {name} failed:\n{out.decode()[-3000:]}")


async def _admin(bench: Bench) -> asyncpg.Connection:
    return await asyncpg.connect(bench.admin_url)


async def create_migrated(bench: Bench, name: str, revision: str = "head") -> None:
    """A fresh database `name` at the migrations' head, or at `revision` (dropped first if it exists)."""
    conn = await _admin(bench)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await _migrate(bench, name, revision)


async def drop_database(bench: Bench, name: str) -> None:
    conn = await _admin(bench)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def loaded_key(bench: Bench) -> dict[str, object] | None:
    """What the bench database holds, from its marker table; None when it is missing or was never finished."""
    conn = await _admin(bench)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", bench.db_name)
    finally:
        await conn.close()
    if not exists:
        return None
    conn = await asyncpg.connect(bench.owner())
    try:
        if not await conn.fetchval("SELECT to_regclass('bench.dataset') IS NOT NULL"):
            return None
        raw = await conn.fetchval("SELECT key FROM bench.dataset WHERE complete")
        return json.loads(raw) if raw else None
    finally:
        await conn.close()


async def ensure_loaded(bench: Bench) -> dict[str, Generated]:
    """The generated layouts, loaded into the bench database unless it already holds exactly this data set."""
    t0 = time.monotonic()
    gens = {lay.key: generate(lay, bench.cameras_per_layout) for lay in LAYOUTS}
    key = dataset_key(bench)
    if await loaded_key(bench) == key:
        say(f"data: reusing {bench.db_name} ({2 * bench.cameras_per_layout:,} cameras, seed {SEED})")
        return gens
    say(
        f"data: building {bench.db_name}: {bench.cameras_per_layout:,} cameras in each of 2 layouts (first load)"
    )
    await load(bench, list(gens.values()), key, started=t0)
    return gens


@dataclass
class LoadTimes:
    """How long a load took, by step (seconds), and the rows it wrote."""

    rows: int
    copy_s: float
    index_s: float
    vacuum_s: float
    total_s: float  # from creating the database to the marker (migrations included)


async def load(
    bench: Bench, gens: list[Generated], key: dict[str, object], started: float | None = None
) -> LoadTimes:
    """Create bench.db_name afresh at the migrations' head and load `gens` into it: the fastest honest path,
    binary COPY into the registry's own tables with the secondary indexes and foreign keys dropped and rebuilt
    after exactly as the migrations made them, then VACUUM (FREEZE, ANALYZE). The total counts from `started`
    (the generation of the rows included) when given."""
    t0 = time.monotonic() if started is None else started
    await create_migrated(bench, bench.db_name)
    conn = await asyncpg.connect(bench.owner())
    try:
        await conn.set_type_codec("geometry", schema="public", encoder=bytes, decoder=bytes, format="binary")
        await conn.execute("CREATE SCHEMA bench")
        await conn.execute(
            "CREATE TABLE bench.dataset (key text NOT NULL, complete boolean NOT NULL, at timestamptz,"
            " load_seconds float8)"
        )
        rebuild = await _drop_secondary(conn)
        rows = 0
        t_copy = time.monotonic()
        for gen in gens:
            rows += await _load_layout(conn, gen)
        copy_s = time.monotonic() - t_copy
        t_idx = time.monotonic()
        for statement in rebuild:
            await conn.execute(statement)
        idx_s = time.monotonic() - t_idx
        t_vac = time.monotonic()
        await conn.execute("VACUUM (FREEZE, ANALYZE) registry.registrations, registry.registration_shares")
        await conn.execute("VACUUM (FREEZE, ANALYZE) registry.cameras, registry.agencies")
        vac_s = time.monotonic() - t_vac
        await conn.execute(
            "INSERT INTO bench.dataset VALUES ($1, true, now(), $2)",
            json.dumps(key, sort_keys=True),
            time.monotonic() - t0,
        )
    finally:
        await conn.close()
    times = LoadTimes(rows, copy_s, idx_s, vac_s, time.monotonic() - t0)
    say(
        f"data: loaded {rows:,} rows in {times.total_s:.0f} s (COPY {copy_s:.0f} s, "
        f"{rows / copy_s:,.0f} rows/s; indexes and keys {idx_s:.0f} s; VACUUM ANALYZE {vac_s:.0f} s)"
    )
    return times


async def _drop_secondary(conn: asyncpg.Connection) -> list[str]:
    """Drop the foreign keys and secondary indexes of the tables about to be loaded; return the statements that
    rebuild them exactly as the migrations made them (faster than maintaining them row by row)."""
    tables = ["registry.cameras", "registry.registrations", "registry.registration_shares"]
    fks = await conn.fetch(
        "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = ANY($1::regclass[])",
        tables,
    )
    idx = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
        " WHERE i.indrelid = ANY($1::regclass[]) AND NOT i.indisprimary"
        " AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        tables,
    )
    for r in fks:
        await conn.execute(f'ALTER TABLE {r["t"]} DROP CONSTRAINT "{r["conname"]}"')
    for r in idx:
        await conn.execute(f"DROP INDEX {r['name']}")
    return [r["def"] for r in idx] + [
        f'ALTER TABLE {r["t"]} ADD CONSTRAINT "{r["conname"]}" {r["def"]}' for r in fks
    ]


def _ewkb(lon: np.ndarray, lat: np.ndarray) -> list[bytes]:
    """Little-endian EWKB points with SRID 4326: what PostGIS's binary input reads."""
    arr = np.empty(
        len(lon), dtype=np.dtype([("o", "u1"), ("t", "<u4"), ("s", "<u4"), ("x", "<f8"), ("y", "<f8")])
    )
    arr["o"] = 1
    arr["t"] = 0x20000001
    arr["s"] = 4326
    arr["x"] = lon
    arr["y"] = lat
    buf = arr.tobytes()
    return [buf[i : i + 25] for i in range(0, len(buf), 25)]


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    buf = raw.tobytes()
    return [buf[i : i + 16].hex() for i in range(0, len(buf), 16)]


async def _load_layout(conn: asyncpg.Connection, gen: Generated) -> int:
    from shared.crypto import keyring

    lay = gen.layout
    polys = ",".join(f"(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))" for w, s, e, n in gen.jurisdiction)
    agency_id = await conn.fetchval(
        "INSERT INTO registry.agencies (slug, name, jurisdiction, requires_approval)"
        " VALUES ($1, $2, ST_GeomFromText($3, 4326), true) RETURNING id::text",
        lay.slug,
        lay.agency_name,
        f"MULTIPOLYGON({polys})",
    )
    rng = np.random.default_rng([SEED, 99, LAYOUTS.index(lay)])
    n_regs = len(gen.reg_lon)
    reg_ids = _uuids(rng, n_regs)
    kinds_i = rng.choice(len(OWNER_KINDS), size=n_regs, p=OWNER_WEIGHTS)
    ring = keyring()
    key_id = ring.current
    accepted = datetime(2026, 1, 15, tzinfo=UTC)
    cred = rng.integers(0, 256, size=(n_regs, 32), dtype=np.uint8)
    reg_geom = _ewkb(gen.reg_lon, gen.reg_lat)

    def registrations() -> Iterator[tuple[object, ...]]:
        for i in range(n_regs):
            rid = reg_ids[i]
            kind = OWNER_KINDS[kinds_i[i]]
            email = f"owner{i}@{lay.key}.example.org"
            yield (
                rid,
                agency_id,
                kind,
                reg_geom[i],
                ring.seal(email, f"registration:{rid}:email"),
                ring.blind_index(email),
                key_id,
                cred[i].tobytes(),
                "import",
                "2026-01",
                accepted,
            )

    await conn.copy_records_to_table(
        "registrations",
        schema_name="registry",
        columns=[
            "id",
            "agency_id",
            "owner_kind",
            "location",
            "contact_email_enc",
            "contact_email_index",
            "key_id",
            "credential_hash",
            "source",
            "terms_version",
            "terms_accepted_at",
        ],
        records=registrations(),
    )
    await conn.copy_records_to_table(
        "registration_shares",
        schema_name="registry",
        columns=["registration_id", "agency_id"],
        records=((rid, agency_id) for rid in reg_ids),
    )
    n = len(gen.cam_lon)
    cam_ids = _uuids(rng, n)
    geom = _ewkb(gen.cam_lon, gen.cam_lat)
    direction = rng.integers(0, 360, n).tolist()
    fov = rng.choice([60, 90, 110, 180, 360], n).tolist()
    rng_m = rng.choice([15.0, 25.0, 40.0, 60.0], n).tolist()
    placement = rng.choice(["outdoor", "outdoor", "outdoor", "indoor"], n).tolist()
    covers = rng.integers(0, len(COVERS), n).tolist()
    retention = rng.choice([3, 7, 14, 30, 60], n).tolist()
    recording = rng.choice(["continuous", "motion", "motion"], n).tolist()
    live = rng.choice(["never", "never", "never", "on_alert", "emergency"], n).tolist()
    cam_reg = gen.cam_reg.tolist()
    visible = [agency_id]

    def cameras() -> Iterator[tuple[object, ...]]:
        for i in range(n):
            r = cam_reg[i]
            yield (
                cam_ids[i],
                reg_ids[r],
                geom[i],
                direction[i],
                fov[i],
                rng_m[i],
                placement[i],
                COVERS[covers[i]],
                retention[i],
                recording[i],
                live[i],
                OWNER_KINDS[kinds_i[r]],
                visible,
            )

    await conn.copy_records_to_table(
        "cameras",
        schema_name="registry",
        columns=[
            "id",
            "registration_id",
            "geom",
            "direction_deg",
            "fov_deg",
            "range_m",
            "placement",
            "covers",
            "retention_days",
            "recording",
            "live_mode",
            "owner_kind",
            "visible_to",
        ],
        records=cameras(),
    )
    return 2 * n_regs + n


async def describe(bench: Bench) -> dict[str, object]:
    """Table and index sizes of the loaded data set (for the results file)."""
    conn = await asyncpg.connect(bench.owner())
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM registry.cameras) AS cameras,"
            " (SELECT count(*) FROM registry.registrations) AS registrations,"
            " pg_size_pretty(pg_table_size('registry.cameras')) AS cameras_size,"
            " pg_size_pretty(pg_relation_size('registry.ix_cameras_geom')) AS geom_index_size,"
            " (SELECT load_seconds FROM bench.dataset WHERE complete) AS load_seconds"
        )
        assert row is not None
        return dict(row)
    finally:
        await conn.close()
