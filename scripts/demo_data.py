"""Load the demo data set: the agency `demo` with a jurisdiction polygon and a few hundred registered cameras
around it (seeded, so every machine gets the same). Idempotent: does nothing when the demo agency has cameras.

Rows are written the way registry_api writes them: contact details sealed, credentials stored as hashes,
the program's agency among the shares and in each camera's `visible_to`.
"""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from shared.auth import hash_secret
from shared.crypto import keyring
from shared.db import asyncpg_dsn
from shared.keystore import close_keystore, keystore
from shared.settings import get_settings

SLUG = "demo"
# A downtown-sized program area (a Milwaukee-like grid), counter-clockwise.
JURISDICTION = (
    "MULTIPOLYGON(((-87.960 43.000, -87.880 43.000, -87.875 43.040, -87.890 43.080,"
    " -87.960 43.080, -87.965 43.040, -87.960 43.000)))"
)
# What the portal shows a resident beside the program's name when they ask "am I covered?".
PRIVACY_NOTICE = (
    "Demo City Police Department keeps your name, contact details and camera locations only to ask you for "
    "footage after a crime nearby. Officers never see your cameras live unless you open a live window, and "
    "your details are never sold or shared outside the department except as the law requires.\n\n"
    "You can pause, withdraw or delete your registration at any time; deleting it erases your details."
)
KINDS = ["residential"] * 6 + ["business"] * 3 + ["school", "place_of_worship", "nonprofit"]
COVERS = ["street", "sidewalk", "driveway", "parking", "entrance", "alley", "yard"]


async def main(n_registrations: int = 250) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(get_settings().database_url))
    try:
        agency_id = await conn.fetchval("SELECT id FROM registry.agencies WHERE slug = $1", SLUG)
        # A demo agency loaded before programs had privacy notices gets one.
        await conn.execute(
            "UPDATE registry.agencies SET privacy_notice = $2, version = version + 1, updated_at = now()"
            " WHERE slug = $1 AND privacy_notice IS NULL AND privacy_notice_url IS NULL",
            SLUG,
            PRIVACY_NOTICE,
        )
        if agency_id and await conn.fetchval(
            "SELECT count(*) FROM registry.cameras WHERE $1 = ANY(visible_to)", agency_id
        ):
            print("demo data: already loaded")
            return
        async with conn.transaction():
            if agency_id is None:
                agency_id = await conn.fetchval(
                    "INSERT INTO registry.agencies (slug, name, jurisdiction, requires_approval, privacy_notice)"
                    " VALUES ($1, $2, ST_GeomFromText($3, 4326), true, $4) RETURNING id",
                    SLUG,
                    "Demo City Police Department",
                    JURISDICTION,
                    PRIVACY_NOTICE,
                )
            cameras = await _load(conn, agency_id, n_registrations)
        print(f"demo data: agency '{SLUG}', {n_registrations} registrations, {cameras} cameras")
    finally:
        await conn.close()
        await close_keystore()


async def _load(conn: asyncpg.Connection, agency_id: uuid.UUID, n: int) -> int:
    rng = random.Random(20261121)
    ring = keyring()
    cameras = 0
    for i in range(n):
        rid = uuid.UUID(int=rng.getrandbits(128), version=4)
        lon, lat = rng.uniform(-87.955, -87.885), rng.uniform(43.005, 43.075)
        kind = rng.choice(KINDS)
        email = f"owner{i}@example.org"
        # A business name is the owner's own text: sealed under the registration's data key (shared/keystore.py).
        business = None
        if kind == "business":
            key = (await keystore("demo").ensure([rid]))[rid]
            business = key.seal(f"Demo business {i}", f"registration:{rid}:business_name")
        await conn.execute(
            "INSERT INTO registry.registrations (id, agency_id, owner_kind, business_name_enc, location,"
            " contact_email_enc, contact_email_index, key_id, credential_hash, terms_version, terms_accepted_at)"
            " VALUES ($1, $2, $3, $4, ST_SetSRID(ST_MakePoint($5, $6), 4326), $7, $8, $9, $10, '2026-01', now())",
            rid,
            agency_id,
            kind,
            business,
            lon,
            lat,
            ring.seal(email, f"registration:{rid}:email"),
            ring.blind_index(email),
            ring.current,
            hash_secret(uuid.uuid4().hex),  # demo owners hold no credential
        )
        await conn.execute(
            "INSERT INTO registry.registration_shares (registration_id, agency_id) VALUES ($1, $2)",
            rid,
            agency_id,
        )
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            await conn.execute(
                "INSERT INTO registry.cameras (registration_id, geom, direction_deg, fov_deg, range_m, placement,"
                " covers, retention_days, recording, live_mode, owner_kind, visible_to)"
                " VALUES ($1, ST_SetSRID(ST_MakePoint($2, $3), 4326), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                rid,
                lon + rng.uniform(-0.0002, 0.0002),
                lat + rng.uniform(-0.0002, 0.0002),
                rng.randrange(360),
                rng.choice([60, 90, 110, 180, 360]),
                rng.choice([15.0, 25.0, 40.0]),
                rng.choice(["outdoor", "outdoor", "indoor"]),
                rng.sample(COVERS, 2),
                rng.choice([3, 7, 14, 30]),
                rng.choice(["continuous", "motion"]),
                rng.choice(["never", "never", "on_alert", "emergency"]),
                kind,
                [agency_id],
            )
            cameras += 1
    return cameras


if __name__ == "__main__":
    asyncio.run(main())
