"""Staging: valid features sealed into the job's staging rows (named row types, COPYed as they are), the job's
staging tables, and the checks a chunk meets once staged (set-based, against the database): every point in the
agency's jurisdiction, each external_id once per upload, and never an owner's deleted registration again.

What the rows become is `merge`'s business; reading and validating the upload is `formats`' and `features'`.
"""

from __future__ import annotations

import gc
import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import asyncpg
from cryptography.exceptions import InvalidTag

from services.registry_api.imports.features import Rejection, Valid
from services.registry_api.imports.formats import CSV
from services.registry_api.sealing import external_id_indexes
from shared.auth import OWNER_PREFIX, hash_secret
from shared.crypto import KeyRing, keyring
from shared.keystore import DataKey


class StagedRegistration(NamedTuple):
    """A row of the job's registration staging table (`registry.import_staging`), in its COPY column order."""

    ordinal: int
    line: int | None
    external_id: str
    id: str
    existing: bool
    owner_kind: str
    business_name_enc: bytes | None
    lon: float
    lat: float
    address_enc: bytes | None
    contact_name_enc: bytes | None
    contact_email_enc: bytes | None
    contact_phone_enc: bytes | None
    contact_email_index: bytes | None
    key_id: str
    preferred_contact_method: str | None
    contact_hours_enc: bytes | None
    notes_for_investigators_enc: bytes | None
    terms_version: str | None
    terms_accepted_at: datetime | None
    credential_hash: bytes
    credential_enc: bytes | None
    delivery: str | None
    share_ids: list[uuid.UUID]


class StagedCamera(NamedTuple):
    """A row of the job's camera staging table (`registry.import_staging_cameras`): camera `i` of the
    registration staged at `ordinal`."""

    ordinal: int
    i: int
    id: str
    registration_id: str
    lon: float
    lat: float
    label: str | None
    direction_deg: int | None
    fov_deg: int | None
    range_m: float | None
    placement: str | None
    covers: list[str]
    retention_days: int | None
    recording: str | None
    schedule: str | None
    shares_history: bool | None


STAGE_COLUMNS = StagedRegistration._fields
STAGE_CAMERA_COLUMNS = StagedCamera._fields


def stage_tables(job_id: uuid.UUID) -> tuple[str, str]:
    """The job's own staging tables (registrations, cameras), UNLOGGED, dropped when the job ends."""
    return f"registry_import.stage_{job_id.hex}", f"registry_import.stage_cam_{job_id.hex}"


# A staged row is merged when no check refused it (a refused row stays staged, so that a later duplicate of it
# is still named as one, with the line of the first). $1 is the job.
STAGED_OK = (
    "NOT EXISTS (SELECT 1 FROM registry.import_rejections x WHERE x.job_id = $1 AND x.ordinal = s.ordinal)"
)


def credential_context(rid: uuid.UUID | str) -> str:
    return f"import-credential:{rid}"


# --- sealing ---------------------------------------------------------------------------------------------


def _new_ids(n: int) -> list[str]:
    """n random (version 4) UUIDs at once, as text (asyncpg's COPY reads it in C): uuid.uuid4() per row costs
    more than sealing a value."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def needs_data_key(v: Valid) -> bool:
    """Whether the upload gives this registration a text sealed under its data key (shared/keystore.py)."""
    b = v.body
    return b.business_name is not None or b.hours is not None or b.notes is not None


class _Sealer:
    """What sealing a chunk's rows needs once per chunk: the key ring, the time, the data keys."""

    def __init__(self, credentials: str, keys: Mapping[uuid.UUID, DataKey] | None) -> None:
        self.credentials = credentials
        self.ring: KeyRing = keyring()
        self.now = datetime.now(UTC)
        self.keys = keys or {}
        self.new_keys: dict[uuid.UUID, DataKey] = {}

    def registration(
        self, v: Valid, rid: str, known: uuid.UUID | None, before: Mapping[str, Any]
    ) -> StagedRegistration:
        b = v.body
        seal = self.ring.seal
        ctx = f"registration:{rid}:"  # reg_context(rid, column), built once per row
        secret = secrets.token_urlsafe(32)
        delivery = None
        credential_enc = None
        # The credential belongs to the owner: whoever has an email gets it by mail, whatever the integrator
        # asked for; only an owner the registry cannot reach has it in the report.
        if known is None and (b.email or self.credentials != "none"):
            delivery = "email" if b.email else "report"
            credential_enc = seal(f"{OWNER_PREFIX}{rid.replace('-', '')}_{secret}", credential_context(rid))
        # A registration's contact belongs to its owner once it exists (the credential is re-issued to it): a
        # re-import never changes it, so it is not even staged.
        contact = known is None
        email = b.email if contact else None
        name = b.name if contact else None
        phone = b.phone if contact else None
        data_key: DataKey | None = None
        if known is not None:
            data_key = self.keys.get(known)
        elif needs_data_key(v):
            data_key = self.new_keys[uuid.UUID(rid)] = DataKey.generate()
        if data_key is None and needs_data_key(v):
            raise RuntimeError(f"no data key for registration {rid}")
        return StagedRegistration(
            ordinal=v.ordinal,
            line=v.line,
            external_id=v.external_id,
            id=rid,
            existing=known is not None,
            owner_kind=b.owner_kind,
            business_name_enc=_sealed_text(
                data_key, b.business_name, ctx + "business_name", before.get("business_name_enc")
            ),
            lon=b.lon,
            lat=b.lat,
            address_enc=_sealed_address(self.ring, b.address, ctx + "address", before.get("address_enc"))
            if known is not None
            else (seal(b.address, ctx + "address") if b.address is not None else None),
            contact_name_enc=seal(name, ctx + "name") if name is not None else None,
            contact_email_enc=seal(email, ctx + "email") if email is not None else None,
            contact_phone_enc=seal(phone, ctx + "phone") if phone is not None else None,
            contact_email_index=self.ring.blind_index(email) if email else None,
            key_id=self.ring.current,
            preferred_contact_method=b.preferred_method if contact else None,
            contact_hours_enc=_sealed_text(data_key, b.hours, ctx + "contact_hours", None)
            if contact
            else None,
            notes_for_investigators_enc=_sealed_text(
                data_key, b.notes, ctx + "notes_for_investigators", before.get("notes_for_investigators_enc")
            ),
            terms_version=b.terms_version,
            terms_accepted_at=(b.terms_accepted_at or self.now) if b.terms_version is not None else None,
            credential_hash=hash_secret(secret),
            credential_enc=credential_enc,
            delivery=delivery,
            share_ids=v.share_ids,
        )


def stage_rows(
    valid: Sequence[Valid],
    existing: dict[str, uuid.UUID],
    credentials: str,
    stored: Mapping[str, Mapping[str, Any]] | None = None,
    keys: Mapping[uuid.UUID, DataKey] | None = None,
) -> tuple[list[StagedRegistration], list[StagedCamera], dict[uuid.UUID, DataKey]]:
    """The chunk's staging rows, and the data keys made for new registrations, which the caller puts in the
    key store (one round trip a chunk) before the rows are merged.

    `stored` holds the sealed address, business name and notes of each existing registration, and `keys` the
    data keys of those registrations: a value the upload gives unchanged is staged as that very ciphertext
    (sealing anew would give other bytes), so the merge sees that nothing changed and leaves the registration
    as it was. The owner's free texts are sealed under the registration's data key, the address under the
    service's key ring (as a single registration's are).

    An import never sets live sharing: the live mode and endpoint of its cameras are validated (as a single
    registration's would be) but not stored, since only the owner may turn live sharing on (new cameras start
    at 'never'; an updated registration's cameras keep the owner's setting, see MERGE_* in `merge`)."""
    regs: list[StagedRegistration] = []
    cams: list[StagedCamera] = []
    sealer = _Sealer(credentials, keys)
    n_cams = sum(len(v.body.cameras) for v in valid)
    next_id = iter(_new_ids(len(valid) + n_cams)).__next__
    no_row: Mapping[str, Any] = {}
    gc.disable()  # see features.validate_chunk
    try:
        for v in valid:
            known = existing.get(v.external_id)
            rid = next_id() if known is None else str(known)
            before = (stored or {}).get(v.external_id, no_row)
            regs.append(sealer.registration(v, rid, known, before))
            for i, c in enumerate(v.body.cameras):
                cams.append(
                    StagedCamera(
                        v.ordinal,
                        i,
                        next_id(),
                        rid,
                        c.lon,
                        c.lat,
                        c.label,
                        c.direction_deg,
                        c.fov_deg,
                        c.range_m,
                        c.placement,
                        c.covers or [],
                        c.retention_days,
                        c.recording,
                        c.schedule,
                        c.shares_history,
                    )
                )
    finally:
        gc.enable()
    return regs, cams, sealer.new_keys


def _sealed_text(key: DataKey | None, value: str | None, context: str, stored: bytes | None) -> bytes | None:
    """An owner's text as the registration will hold it, under its data key: the stored ciphertext when it
    opens to the same text."""
    if value is None:
        return None
    assert key is not None
    if stored is not None and key.open(stored, context) == value:
        return bytes(stored)
    return key.seal(value, context)


def _sealed_address(ring: KeyRing, address: str | None, context: str, stored: bytes | None) -> bytes | None:
    """The address as the registration will hold it: the stored ciphertext when it opens to the same text."""
    if address is None:
        return None
    if stored is not None:
        try:
            if ring.open(stored, context) == address:
                return bytes(stored)
        except (KeyError, InvalidTag):  # sealed under a key no longer in the ring: seal anew
            pass
    return ring.seal(address, context)


# --- the staging tables ----------------------------------------------------------------------------------


async def existing_registrations(
    conn: asyncpg.Connection, agency_id: uuid.UUID, valid: list[Valid]
) -> tuple[dict[str, uuid.UUID], dict[str, asyncpg.Record]]:
    """The registrations of the chunk's external ids imported before: their ids, and their sealed values (the
    address, business name and notes a re-import may give unchanged)."""
    if not valid:
        return {}, {}
    rows = await conn.fetch(
        "SELECT external_id, id, address_enc, business_name_enc, notes_for_investigators_enc"
        " FROM registry.registrations WHERE agency_id = $1 AND external_id = ANY($2::text[])",
        agency_id,
        [v.external_id for v in valid],
    )
    return {r["external_id"]: r["id"] for r in rows}, {r["external_id"]: r for r in rows}


def keyed(
    valid: list[Valid], existing: dict[str, uuid.UUID], stored: dict[str, asyncpg.Record]
) -> list[uuid.UUID]:
    """The existing registrations of the chunk whose data key staging needs: those given a text, or holding one."""
    out = []
    for v in valid:
        rid = existing.get(v.external_id)
        if rid is None:
            continue
        before = stored[v.external_id]
        if (
            needs_data_key(v)
            or before["business_name_enc"] is not None
            or before["notes_for_investigators_enc"]
        ):
            out.append(rid)
    return out


async def staged_count(conn: asyncpg.Connection, job_id: uuid.UUID) -> int | None:
    """How many rows the job has staged and no check refused; None when its staging tables are gone."""
    reg, _ = stage_tables(job_id)
    if await conn.fetchval("SELECT to_regclass($1)", reg) is None:
        return None
    return int(await conn.fetchval(f"SELECT count(*) FROM {reg} s WHERE {STAGED_OK}", job_id))  # noqa: S608 - our own table name


async def create_tables(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    """The job's staging tables, empty (any earlier ones dropped); in the caller's transaction."""
    reg, cam = stage_tables(job_id)
    await conn.execute(f"DROP TABLE IF EXISTS {reg}, {cam}")
    await conn.execute(
        f"CREATE UNLOGGED TABLE {reg} (LIKE registry.import_staging INCLUDING DEFAULTS INCLUDING INDEXES)"
    )
    # The duplicate check looks up earlier rows by external_id.
    await conn.execute(f"CREATE INDEX ON {reg} (external_id, ordinal)")
    await conn.execute(
        f"CREATE UNLOGGED TABLE {cam} (LIKE registry.import_staging_cameras INCLUDING DEFAULTS INCLUDING INDEXES)"
    )


async def drop_tables(conn: asyncpg.Connection, job_id: uuid.UUID) -> None:
    reg, cam = stage_tables(job_id)
    await conn.execute(f"DROP TABLE IF EXISTS {reg}, {cam}")


async def copy_rows(
    conn: asyncpg.Connection, job_id: uuid.UUID, regs: list[StagedRegistration], cams: list[StagedCamera]
) -> None:
    reg, cam = stage_tables(job_id)
    schema, reg_table = reg.split(".")
    _, cam_table = cam.split(".")
    if regs:
        await conn.copy_records_to_table(reg_table, schema_name=schema, columns=STAGE_COLUMNS, records=regs)
    if cams:
        await conn.copy_records_to_table(
            cam_table, schema_name=schema, columns=STAGE_CAMERA_COLUMNS, records=cams
        )


async def record_rejections(
    conn: asyncpg.Connection, job_id: uuid.UUID, rejections: list[Rejection], offset: int = 0
) -> None:
    seq: dict[int, int] = {}
    records = []
    for r in rejections:
        n = seq.get(r.ordinal, offset)
        seq[r.ordinal] = n + 1
        records.append((job_id, r.ordinal, n, r.line, r.external_id, r.pointer, r.reason[:2000]))
    await conn.copy_records_to_table(
        "import_rejections",
        schema_name="registry",
        columns=("job_id", "ordinal", "seq", "line", "external_id", "pointer", "reason"),
        records=records,
    )


# --- the checks of a staged chunk ------------------------------------------------------------------------

# Points of the chunk outside the agency's jurisdiction (boundary included, as for a single registration):
# $2..$5 the chunk's staged positions, $6 whether each is a camera's. The jurisdiction is read once, as a copy
# (ST_SetSRID copies): the stored value of a real boundary is compressed and would be decompressed per point.
OUTSIDE_SQL = """
SELECT p.ordinal, p.i FROM unnest($2::bigint[], $3::smallint[], $4::float8[], $5::float8[])
    AS p(ordinal, i, lon, lat)
WHERE NOT ST_Covers((SELECT ST_SetSRID(j.jurisdiction, 4326) FROM registry.agencies j WHERE j.id = $1),
                    ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
"""
# Each of the chunk's rows whose external_id was staged before in this upload, with the line of the first.
DUPES_SQL = """
SELECT u.ordinal, f.line AS first FROM unnest($1::text[], $2::bigint[]) AS u(external_id, ordinal)
CROSS JOIN LATERAL (
    SELECT t.line FROM {reg} t WHERE t.external_id = u.external_id AND t.ordinal < u.ordinal
    ORDER BY t.ordinal LIMIT 1) f
"""


class Checks:
    """The checks a chunk meets once staged, set-based: every point in the agency's jurisdiction, each
    external_id once per upload, and no registration its owner deleted."""

    def __init__(self, job: asyncpg.Record) -> None:
        self.job = job
        self.csv = job["media_type"] == CSV
        self.id_pointer = "/external_id" if self.csv else "/properties/external_id"

    async def run(
        self, conn: asyncpg.Connection, regs: list[StagedRegistration], cams: list[StagedCamera]
    ) -> list[Rejection]:
        out = await self._outside(conn, regs, cams)
        out.extend(await self._duplicates(conn, regs))
        out.extend(await self._deleted_by_owner(conn, regs))
        out.sort(key=lambda x: x.ordinal)
        return out

    async def _outside(
        self, conn: asyncpg.Connection, regs: list[StagedRegistration], cams: list[StagedCamera]
    ) -> list[Rejection]:
        job = self.job
        by_ordinal = {r.ordinal: r for r in regs}
        ords: list[int] = []
        idx: list[int | None] = []
        lons: list[float] = []
        lats: list[float] = []
        for r in regs:
            ords.append(r.ordinal)
            idx.append(None)
            lons.append(r.lon)
            lats.append(r.lat)
        for c in cams:  # a camera elsewhere than its registration is checked on its own
            home = by_ordinal[c.ordinal]
            if (c.lon, c.lat) != (home.lon, home.lat):
                ords.append(c.ordinal)
                idx.append(c.i)
                lons.append(c.lon)
                lats.append(c.lat)
        outside = await conn.fetch(OUTSIDE_SQL, job["agency_id"], ords, idx, lons, lats)
        out = []
        for o in sorted(outside, key=lambda o: (o["ordinal"], -1 if o["i"] is None else o["i"])):
            r = by_ordinal[o["ordinal"]]
            if o["i"] is None:
                pointer, lon, lat = ("/lon" if self.csv else "/geometry"), r.lon, r.lat
            else:
                pointer = f"/properties/cameras/{o['i']}/location"
                lon, lat = next((c.lon, c.lat) for c in cams if c.ordinal == r.ordinal and c.i == o["i"])
            out.append(
                Rejection(
                    r.ordinal,
                    r.line,
                    r.external_id,
                    pointer,
                    f"[{lon}, {lat}] lies outside the jurisdiction of {job['agency_name']} ({job['agency']}); "
                    "its program accepts only cameras inside its jurisdiction",
                )
            )
        return out

    async def _duplicates(self, conn: asyncpg.Connection, regs: list[StagedRegistration]) -> list[Rejection]:
        reg, _ = stage_tables(self.job["id"])
        by_ordinal = {r.ordinal: r for r in regs}
        dupes = await conn.fetch(
            DUPES_SQL.format(reg=reg), [r.external_id for r in regs], [r.ordinal for r in regs]
        )
        return [
            Rejection(
                r.ordinal,
                r.line,
                r.external_id,
                self.id_pointer,
                f"external_id '{r.external_id}' appears more than once in this upload (first on line {d['first']})",
            )
            for d in dupes
            for r in (by_ordinal[d["ordinal"]],)
        ]

    async def _deleted_by_owner(
        self, conn: asyncpg.Connection, regs: list[StagedRegistration]
    ) -> list[Rejection]:
        """Rows whose registration its owner deleted after an earlier import: never registered again. Asked for
        each chunk (an owner may delete while the upload is read); the hashes are computed only when the agency
        has tombstones at all, under each key of the ring (a rotation does not forget them)."""
        agency_id = self.job["agency_id"]
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM registry.import_tombstones WHERE agency_id = $1)", agency_id
        ):
            return []
        rows_of: dict[bytes, list[StagedRegistration]] = {}
        for r in regs:  # an id listed twice is two rows with one hash: both are rejected
            for ix in external_id_indexes(agency_id, r.external_id):
                rows_of.setdefault(ix, []).append(r)
        found = await conn.fetch(
            "SELECT external_id_index FROM registry.import_tombstones"
            " WHERE agency_id = $1 AND external_id_index = ANY($2::bytea[])",
            agency_id,
            list(rows_of),
        )
        hit = {id(r): r for t in found for r in rows_of[t["external_id_index"]]}
        return [
            Rejection(
                r.ordinal,
                r.line,
                r.external_id,
                self.id_pointer,
                f"the owner of the registration imported as external_id '{r.external_id}' deleted it; Canvass"
                " does not register them again: remove it from your list",
            )
            for r in sorted(hit.values(), key=lambda r: r.ordinal)
        ]
