"""The merge: a job's staged rows written into the registry, set-based, by the job's one writing transaction
(`Writer`), which takes the agency's import lock, merges each staged chunk as it comes and commits only with
the job's success: a job that fails, or whose process stops, leaves nothing half-written.

The SQL is here, in named statements over the job's staging tables (`{reg}`, `{cam}`) and a range of their
ordinals (`{range}`); what is staged, and how, is `staging`'s.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

import asyncpg

from services.registry_api.imports.jobs import JobFailed
from services.registry_api.imports.retention import count
from services.registry_api.imports.staging import STAGED_OK, stage_tables
from shared.audit import AuditEvent, append_asyncpg
from shared.concurrency import next_version

log = logging.getLogger("canvass.registry.imports")
SERVICE = "registry_api"

# The merge of staged rows [$4, $5) of job $1 into agency $2's program, by integrator $3. Every statement
# names every parameter (asyncpg binds them all).
RANGE = "s.ordinal >= $4 AND s.ordinal < $5 AND {ok} AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL"

# New registrations: inserted with their shares, cameras (live sharing off: only an owner turns it on) and
# credentials awaiting delivery. The cameras' visibility is the shares (a new registration is active).
MERGE_NEW = (
    """
    INSERT INTO registry.registrations (
        id, agency_id, owner_kind, business_name_enc, location, address_enc, contact_name_enc, contact_email_enc,
        contact_phone_enc, contact_email_index, key_id, preferred_contact_method, contact_hours_enc,
        notes_for_investigators_enc, terms_version, terms_accepted_at, credential_hash, source, registered_by,
        external_id)
    SELECT s.id, $2, s.owner_kind, s.business_name_enc, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326),
           s.address_enc, s.contact_name_enc, s.contact_email_enc, s.contact_phone_enc, s.contact_email_index,
           s.key_id, s.preferred_contact_method, s.contact_hours_enc, s.notes_for_investigators_enc, s.terms_version,
           s.terms_accepted_at, s.credential_hash, 'import', $3, s.external_id
    FROM {reg} s WHERE NOT s.existing AND {range}
    """,
    "INSERT INTO registry.registration_shares (registration_id, agency_id)"
    " SELECT s.id, unnest(s.share_ids) FROM {reg} s WHERE NOT s.existing AND {range}",
    """
    INSERT INTO registry.cameras (
        id, registration_id, geom, owner_kind, visible_to, created_at, label, direction_deg, fov_deg, range_m,
        placement, covers, retention_days, recording, schedule, shares_history, live_mode, live_endpoint_enc,
        import_position)
    SELECT c.id, c.registration_id, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326), s.owner_kind,
           registry.visible_to('active', s.share_ids),
           now() + c.i * interval '1 microsecond', c.label, c.direction_deg, c.fov_deg, c.range_m, c.placement,
           c.covers, c.retention_days, c.recording, c.schedule, coalesce(c.shares_history, true), 'never', NULL,
           c.i
    FROM {cam} c JOIN {reg} s ON s.ordinal = c.ordinal
    WHERE c.ordinal >= $4 AND c.ordinal < $5 AND NOT s.existing AND {range}
    """,
    "INSERT INTO registry.import_credentials (registration_id, job_id, ordinal, external_id, delivery,"
    " credential_enc) SELECT s.id, $1, s.ordinal, s.external_id, s.delivery, s.credential_enc FROM {reg} s"
    " WHERE NOT s.existing AND s.delivery IS NOT NULL AND s.credential_enc IS NOT NULL AND {range}",
)

# Registrations imported before (same agency and external_id): the import updates what the integrator keeps
# (location, owner kind, business name, address, notes, terms, and each camera's physical description) and
# never what the owner controls: status, credential, contact (name, email, phone, hours, preferred method:
# the credential is re-issued to that email, so an integrator able to change it could take the registration
# over), the agencies shared with, and each camera's live mode, live endpoint and willingness to share footage.
# Cameras are matched by their place in the integrator's list: the import's camera i updates the camera an
# import created at place i (`import_position`), and a place no camera holds yet gets a new camera (live sharing
# off, visible as the registration's other cameras are), unless the owner removed the camera an import created
# there (`removed_import_positions`). The cameras the owner added hold no place: an import never changes them.
# None is ever removed: a camera no longer listed is the owner's to remove.
EXPECT_EXISTING = "SELECT count(*) FROM {reg} s WHERE s.existing AND {range}"
# Rows staged as new registrations whose external id agency $1 has now: another import created them while this
# job was stopped between staging and its commit.
STALE_STAGING = """
    SELECT EXISTS (SELECT FROM {reg} s JOIN registry.registrations r ON r.agency_id = $1 AND r.external_id = s.external_id
                   WHERE NOT s.existing)
"""
# The chunk's registrations imported before, locked for this transaction: as many as staged, or one changed.
LOCK_EXISTING = """
    SELECT count(*) FROM (
        SELECT r.id FROM registry.registrations r JOIN {reg} s ON r.id = s.id
        WHERE s.existing AND r.agency_id = $2 AND r.external_id = s.external_id AND {range}
        FOR UPDATE OF r) x
"""
OLD_CAMERAS = """
    WITH old AS (
        SELECT c.id, s.ordinal, c.import_position AS i
        FROM registry.cameras c JOIN {reg} s ON c.registration_id = s.id
        WHERE s.existing AND c.import_position IS NOT NULL AND {range})
"""
# One statement: the cameras whose description changed, the cameras added, and the registrations either
# touches or whose own values changed (their version moves, so their ETag does). A feature that changes nothing
# writes nothing: the registration keeps its version, its time of change and its sealed address, and the owner's
# consent (`terms_accepted_at`) is kept unless the terms version changes. The new cameras take their owner kind
# and visibility from `registry.sync_cameras`, run next (`SYNC_EXISTING`).
MERGE_EXISTING = """{old},
    changed_cameras AS (
        UPDATE registry.cameras c SET
            geom = ST_SetSRID(ST_MakePoint(n.lon, n.lat), 4326), label = n.label, direction_deg = n.direction_deg,
            fov_deg = n.fov_deg, range_m = n.range_m, placement = n.placement, covers = n.covers,
            retention_days = n.retention_days, recording = n.recording, schedule = n.schedule, updated_at = now()
        FROM old o JOIN {cam} n ON n.ordinal = o.ordinal AND n.i = o.i
        WHERE c.id = o.id
          AND (ST_AsEWKB(c.geom), c.label, c.direction_deg, c.fov_deg, c.range_m, c.placement, c.covers,
               c.retention_days, c.recording, c.schedule)
              IS DISTINCT FROM
              (ST_AsEWKB(ST_SetSRID(ST_MakePoint(n.lon, n.lat), 4326)), n.label, n.direction_deg, n.fov_deg,
               n.range_m, n.placement, n.covers, n.retention_days, n.recording, n.schedule)
        RETURNING c.registration_id),
    added_cameras AS (
        INSERT INTO registry.cameras (
            id, registration_id, geom, owner_kind, visible_to, created_at, label, direction_deg, fov_deg, range_m,
            placement, covers, retention_days, recording, schedule, shares_history, live_mode, live_endpoint_enc,
            import_position)
        SELECT c.id, r.id, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326), r.owner_kind, '{{}}',
               now() + c.i * interval '1 microsecond', c.label, c.direction_deg, c.fov_deg, c.range_m, c.placement,
               c.covers, c.retention_days, c.recording, c.schedule, coalesce(c.shares_history, true), 'never',
               NULL, c.i
        FROM {cam} c JOIN {reg} s ON s.ordinal = c.ordinal JOIN registry.registrations r ON r.id = s.id
        WHERE c.ordinal >= $4 AND c.ordinal < $5 AND s.existing
          AND NOT EXISTS (SELECT FROM registry.cameras y WHERE y.registration_id = r.id AND y.import_position = c.i)
          AND NOT c.i = ANY(r.removed_import_positions)
          AND {range}
        RETURNING registration_id)
    UPDATE registry.registrations r SET
        owner_kind = s.owner_kind, business_name_enc = s.business_name_enc,
        location = ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), address_enc = s.address_enc,
        key_id = CASE WHEN s.address_enc IS DISTINCT FROM r.address_enc THEN s.key_id ELSE r.key_id END,
        notes_for_investigators_enc = s.notes_for_investigators_enc, terms_version = s.terms_version,
        terms_accepted_at = CASE WHEN s.terms_version IS NOT DISTINCT FROM r.terms_version
                                 THEN r.terms_accepted_at ELSE s.terms_accepted_at END,
        registered_by = $3, {next_version}
    FROM {reg} s
    WHERE s.existing AND r.id = s.id AND r.agency_id = $2 AND r.external_id = s.external_id AND {range}
      AND ((r.owner_kind, r.business_name_enc, ST_AsEWKB(r.location), r.address_enc,
            r.notes_for_investigators_enc, r.terms_version)
           IS DISTINCT FROM
           (s.owner_kind, s.business_name_enc, ST_AsEWKB(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)),
            s.address_enc, s.notes_for_investigators_enc, s.terms_version)
           OR r.id IN (SELECT registration_id FROM changed_cameras)
           OR r.id IN (SELECT registration_id FROM added_cameras))
"""
# Every camera of the chunk's updated registrations (listed in the upload or not, imported or the owner's)
# mirrors its registration's owner kind and visibility: the one place that keeps them in step.
SYNC_EXISTING = "SELECT registry.sync_cameras(array_agg(s.id)) FROM {reg} s WHERE s.existing AND {range}"


class Writer:
    """The job's one writing transaction: it takes the agency's import lock, merges each staged chunk as it
    comes (set-based statements over the chunk's ordinals) and commits only with the job's success."""

    def __init__(self, pool: asyncpg.Pool, job: asyncpg.Record) -> None:
        self.pool = pool
        self.job = job
        self.reg, self.cam = stage_tables(job["id"])
        self.conn: Any = None
        self.tx: Any = None
        self.created = 0
        self.updated = 0
        self.merging = True
        self.subject = job["principal"].partition(":")[2]  # the scope is "agency:subject"
        self.pending: collections.deque[asyncio.Task[None]] = collections.deque()

    async def start(self, staged: int, *, merge: bool) -> bool:
        """Begin the job's transaction under the agency's import lock, and merge again what a stopped process
        had staged; False (nothing merged) when that staging is stale: the caller stages afresh."""
        job = self.job
        self.conn = await self.pool.acquire()
        self.tx = self.conn.transaction()
        await self.tx.start()
        await self.conn.execute("SET LOCAL work_mem = '64MB'")
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('canvass-import:' || $1::uuid::text, 0))",
            job["agency_id"],
        )
        await self.pool.execute(
            "UPDATE registry.import_jobs SET phase = 'merging' WHERE id = $1 AND phase = 'staging'", job["id"]
        )
        self.merging = merge
        if staged:
            # Asked on another connection: this transaction must hold no lock on the staging tables, which a
            # fresh start drops. The agency's lock, held, keeps the answer true until the commit.
            if await self.pool.fetchval(STALE_STAGING.format(reg=self.reg), job["agency_id"]):
                return False
            if merge:
                # Resuming after the process stopped: what was staged before is merged again, in this transaction.
                await self.merge(0, staged, True, 0)
        return True

    async def enqueue(self, lo: int, hi: int, any_existing: bool, rejected: int) -> None:
        """Merge staged rows [lo, hi) after the chunks enqueued before, in the background; at most
        `MERGES_AHEAD` merges wait, and a merge's failure is raised here or by `drain`."""
        previous = self.pending[-1] if self.pending else None

        async def after_previous() -> None:
            if previous is not None:
                await previous
            await self.merge(lo, hi, any_existing, rejected)

        self.pending.append(asyncio.get_running_loop().create_task(after_previous()))
        while len(self.pending) > MERGES_AHEAD or (self.pending and self.pending[0].done()):
            await self.pending.popleft()

    async def drain(self) -> None:
        while self.pending:
            await self.pending.popleft()

    async def merge(self, lo: int, hi: int, any_existing: bool, rejected: int) -> None:
        job = self.job
        if rejected and job["mode"] == "all":
            self.merging = False  # this transaction will be rolled back: stop writing
        if not self.merging:
            return
        t0 = time.monotonic()
        args = (job["id"], job["agency_id"], self.subject, lo, hi)
        rng = RANGE.format(ok=STAGED_OK)
        sql = {"reg": self.reg, "cam": self.cam, "range": rng, "next_version": next_version("r")}
        sql["old"] = OLD_CAMERAS.format(**sql)
        conn = self.conn
        self.created += count(await conn.execute(MERGE_NEW[0].format(**sql), *args))
        for statement in MERGE_NEW[1:]:
            await conn.execute(statement.format(**sql), *args)
        if any_existing:
            expect = await conn.fetchval(EXPECT_EXISTING.format(**sql), *args)
            got = await conn.fetchval(LOCK_EXISTING.format(**sql), *args)
            if got != expect:
                raise JobFailed(
                    "registrations with these external ids changed while the import ran (an owner deleted "
                    "one, or another import wrote one); nothing was written: submit the file again"
                )
            self.updated += got
            await conn.execute(MERGE_EXISTING.format(**sql), *args)
            await conn.execute(SYNC_EXISTING.format(**sql), *args)
        log.debug("import %s: merged [%d, %d) in %.2f s", job["id"], lo, hi, time.monotonic() - t0)

    async def finish(self) -> None:
        job = self.job
        conn = self.conn
        await append_asyncpg(
            conn,
            AuditEvent(
                service=SERVICE,
                actor=self.subject,
                actor_role="integrator",
                action="registration.import",
                agency=job["agency"],
                subject_type="import",
                subject_id=str(job["id"]),
                details={
                    "created": self.created,
                    "updated": self.updated,
                    "rejected": await conn.fetchval(
                        "SELECT rejected FROM registry.import_jobs WHERE id = $1", job["id"]
                    ),
                },
            ),
        )
        # The job ends now, not when its writing transaction began (now() would be that start).
        await conn.execute(
            "UPDATE registry.import_jobs SET status = 'succeeded', phase = 'done', created = $2, updated = $3,"
            " finished_at = clock_timestamp() WHERE id = $1",
            job["id"],
            self.created,
            self.updated,
        )
        await conn.execute(f"DROP TABLE {self.reg}, {self.cam}")
        t0 = time.monotonic()
        await self.tx.commit()
        self.tx = None
        log.info("import %s: committed in %.2f s", job["id"], time.monotonic() - t0)

    async def close(self) -> None:
        for task in self.pending:
            task.cancel()
        for task in self.pending:
            with contextlib.suppress(BaseException):
                await task
        self.pending.clear()
        if self.conn is None:
            return
        try:
            if self.tx is not None:
                with contextlib.suppress(Exception):
                    await self.tx.rollback()
        finally:
            await self.pool.release(self.conn)
            self.conn = None


# How many chunks may wait for the writer while later ones are staged (each is in the database already).
MERGES_AHEAD = 2
