"""Import jobs: read the spooled upload in chunks, validate, COPY into the job's staging tables, check the
jurisdiction and duplicates set-based against staging, then write everything in one set-based merge.

Crash safety. Each chunk is staged in one transaction together with the job's counters, so a job resumes after
the last staged chunk. The merge is one transaction that also marks the job succeeded and drops its staging
tables: a process killed before its commit leaves no registration of the job behind. A job whose process died
(its heartbeat older than the lease) is taken over by the next process that starts or is asked about it: it
resumes from the upload, or fails cleanly when the upload is gone. Every process looks for such jobs every
quarter lease (`_reclaim`), so a job is taken over within about a lease of its process's death, whether or not
anyone asks about it. A process renews the lease of every job it holds, the queued ones too, so a job waiting
behind a long one is never taken for abandoned; and it runs a job only while the lease is still its own.

Concurrency. A process runs one job at a time (memory stays bounded); merges of one agency's imports are
serialised by an advisory lock, taken before the job stages anything: which external ids exist is read under
it, so two imports of the same new external id make one registration (the second updates it). A resumed job
whose rows staged as new were created meanwhile by another import stages again from the start; a merge that
finds a registration changed since its chunk was staged (deleted by its owner) is refused rather than
overwriting it.

Retention. Every end of a job removes its upload (personal data in clear); a sweep removes any left behind by
a process that stopped in between. Credentials awaiting delivery are deleted once delivered, and purged when
their registration is deleted or they wait too long (see `PURGE_CREDENTIALS`): at each job's end, each report
download and each sweep.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import asyncpg

from services.registry_api.import_parsing import (
    CSV,
    GEOJSON,
    GEOJSON_SEQ,
    FeatureCollectionReader,
    ImportInputError,
    RawFeature,
    Reprojection,
    parse_crs,
    read_csv,
    read_sequence,
)
from services.registry_api.import_rows import (
    CSV_COLUMNS,
    STAGE_CAMERA_COLUMNS,
    STAGE_COLUMNS,
    Program,
    Rejection,
    Valid,
    credential_context,
    needs_data_key,
    stage_rows,
    validate_chunk,
)
from services.registry_api.service import external_id_indexes
from shared.audit import AuditEvent, append_asyncpg
from shared.crypto import keyring
from shared.db import asyncpg_dsn, pooler_arguments, server_settings
from shared.keystore import keystore
from shared.mail import get_mailer
from shared.settings import get_settings

log = logging.getLogger("canvass.registry.imports")
SERVICE = "registry_api"


def import_dir() -> Path:
    return Path(os.environ.get("CANVASS_IMPORT_DIR", ".local/imports"))


def lease_seconds() -> float:
    return float(os.environ.get("CANVASS_IMPORT_LEASE_S", "30"))


def chunk_size() -> int:
    return int(os.environ.get("CANVASS_IMPORT_CHUNK", "5000"))


def credential_ttl_seconds() -> float:
    """How long a credential awaits delivery after its job ended (a report not downloaded) before deletion."""
    return float(os.environ.get("CANVASS_IMPORT_CREDENTIAL_TTL_S", str(7 * 24 * 3600)))


def report_ttl_seconds() -> float:
    """How long an ended job's report (its rejected features, whose reasons quote places and values of the upload)
    is kept before deletion; the job itself, with its counts, stays."""
    return float(os.environ.get("CANVASS_IMPORT_REPORT_TTL_S", str(30 * 24 * 3600)))


def sweep_seconds() -> float:
    return float(os.environ.get("CANVASS_IMPORT_SWEEP_S", "600"))


def stage_tables(job_id: uuid.UUID) -> tuple[str, str]:
    return f"registry_import.stage_{job_id.hex}", f"registry_import.stage_cam_{job_id.hex}"


class JobFailed(Exception):
    """Ends the job as failed with this message (nothing written)."""


JOB_COLUMNS = """
    j.id, j.agency_id, a.slug AS agency, a.name AS agency_name, j.principal, j.media_type, j.crs, j.mode,
    j.dry_run, j.credentials, j.spool_path, j.bytes_received, j.status, j.phase, j.read, j.valid, j.rejected,
    j.created, j.updated, j.attempts, j.error, j.created_at, j.started_at, j.finished_at,
    j.report_downloaded_at, j.heartbeat_at
"""
JOB_SQL = f"SELECT {JOB_COLUMNS} FROM registry.import_jobs j JOIN registry.agencies a ON a.id = j.agency_id WHERE j.id = $1"  # noqa: S608 - constant


@dataclass
class _Chunk:
    valid: list[Valid]
    rejected: list[Rejection]
    read: int


class ImportRunner:
    """The jobs this process runs, one at a time, in the background of the registry_api process."""

    def __init__(self) -> None:
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pool: asyncpg.Pool | None = None
        self.queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.current: uuid.UUID | None = None
        self.held: set[uuid.UUID] = set()  # the jobs whose lease this process holds: queued here or running

    async def start(self) -> None:
        settings = get_settings()
        # Imports are long statements by nature: no statement timeout on these connections.
        self.pool = await asyncpg.create_pool(
            asyncpg_dsn(settings.database_url_for("registry_api")),
            min_size=1,
            max_size=4,
            server_settings=server_settings(settings, SERVICE, statement_timeout_ms=0),
            timeout=5,
            **pooler_arguments(settings, session={"statement_timeout": "0"}),
        )
        self._spawn(self._worker())
        self._spawn(self._heartbeat())
        self._spawn(self._recover())
        self._spawn(self._reclaim())
        self._spawn(self._sweep())

    async def stop(self) -> None:
        held = list(self.held)  # before the worker, cancelled, lets go of its job
        for t in list(self.tasks):
            t.cancel()
        for t in list(self.tasks):
            with contextlib.suppress(BaseException):
                await t
        if self.pool is not None:
            if held:
                # Leaving in order: let the next process take the jobs over at once instead of after the lease.
                with contextlib.suppress(Exception):
                    await self.pool.execute(
                        "UPDATE registry.import_jobs SET heartbeat_at = NULL, lease_owner = NULL"
                        " WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status IN ('queued', 'running')",
                        held,
                        self.instance,
                    )
            await self.pool.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "the import runner is not started"
        return self.pool

    # --- leases ------------------------------------------------------------------------------------------

    def submit(self, job_id: uuid.UUID) -> None:
        """Queue a job whose lease this process holds (it created or claimed it)."""
        self.held.add(job_id)
        self.queue.put_nowait(job_id)

    async def claim_if_abandoned(self, job_id: uuid.UUID) -> bool:
        """Take over an unfinished job whose process stopped renewing its lease; it then runs here."""
        got = await self.db.fetchval(
            "UPDATE registry.import_jobs SET lease_owner = $2, heartbeat_at = now()"
            " WHERE id = $1 AND status IN ('queued', 'running')"
            " AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $3))"
            " RETURNING id",
            job_id,
            self.instance,
            lease_seconds(),
        )
        if got is not None:
            log.warning("import job %s was abandoned by its process; resuming it here", job_id)
            self.submit(job_id)
            return True
        return False

    async def reclaim_abandoned(self) -> None:
        """Take over every unfinished job whose lease expired (its process died, or stopped in order)."""
        rows = await self.db.fetch(
            "SELECT id FROM registry.import_jobs WHERE status IN ('queued', 'running')"
            " AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $1)) ORDER BY created_at",
            lease_seconds(),
        )
        for r in rows:
            await self.claim_if_abandoned(r["id"])

    async def _reclaim(self) -> None:
        """Every quarter lease: a dead process's job is resumed here within about a lease, with no one asking."""
        while True:
            await asyncio.sleep(max(lease_seconds() / 4, 0.1))
            try:
                await self.reclaim_abandoned()
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("could not look for abandoned import jobs: %s", type(exc).__name__)

    async def _recover(self) -> None:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            await self.reclaim_abandoned()
            pending = await self.db.fetch(
                "SELECT DISTINCT job_id FROM registry.import_credentials WHERE delivery = 'email'"
            )
            for r in pending:
                self._spawn(self.deliver_mail(r["job_id"]))

    async def _heartbeat(self) -> None:
        """Renew the lease of every job this process holds, the running one and those queued behind it."""
        interval = max(lease_seconds() / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            if not self.held:
                continue
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await self.db.execute(
                    "UPDATE registry.import_jobs SET heartbeat_at = now()"
                    " WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND status IN ('queued', 'running')",
                    list(self.held),
                    self.instance,
                )

    async def _worker(self) -> None:
        while True:
            job_id = await self.queue.get()
            self.current = job_id
            try:
                await self.run(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("import job %s stopped unexpectedly", job_id)
            finally:
                self.current = None
                self.held.discard(job_id)

    # --- a job -------------------------------------------------------------------------------------------

    async def run(self, job_id: uuid.UUID) -> None:
        job = await self.db.fetchrow(JOB_SQL, job_id)
        if job is None or job["status"] not in ("queued", "running"):
            return
        # Only while the lease is still this process's: a job that waited here past its lease (the heartbeat
        # could not reach the database) may have been taken over by another process meanwhile.
        mine = await self.db.fetchval(
            "UPDATE registry.import_jobs SET status = 'running', attempts = attempts + 1,"
            " heartbeat_at = now(), started_at = coalesce(started_at, now())"
            " WHERE id = $1 AND lease_owner = $2 AND status IN ('queued', 'running') RETURNING id",
            job_id,
            self.instance,
        )
        if mine is None:
            log.warning("import job %s was taken over by another process; leaving it to that one", job_id)
            return
        interrupted = False
        try:
            try:
                spool = Path(job["spool_path"])
                if not await asyncio.to_thread(spool.exists):
                    raise JobFailed(
                        "the process running this import stopped and its upload is no longer on the server; "
                        "nothing was written: submit the file again"
                    )
                await self._load(job, spool)
            except JobFailed as exc:
                await self._fail(job_id, str(exc))
            except ImportInputError as exc:
                await self._fail(job_id, f"the upload cannot be read: {exc}; nothing was written")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("import job %s failed", job_id)
                await self._fail(
                    job_id, "the import failed unexpectedly (it has been logged); nothing was written"
                )
        except asyncio.CancelledError:
            interrupted = True  # the process stops: the upload stays for the process that resumes the job
            raise
        finally:
            if not interrupted:
                # The upload is personal data in clear: every end of the job removes it.
                await self._cleanup_files(job_id)
        final = await self.db.fetchrow(
            "SELECT status, dry_run FROM registry.import_jobs WHERE id = $1", job_id
        )
        if final and final["status"] == "succeeded" and not final["dry_run"]:
            # Owners with an email are mailed their credential whatever `credentials=` says.
            self._spawn(self.deliver_mail(job_id))
        await self.purge_credentials()

    async def _program(self, job: asyncpg.Record, crs: str | None) -> Program:
        rows = await self.db.fetch("SELECT slug, id FROM registry.agencies")
        return Program(
            agency_id=job["agency_id"],
            slug=job["agency"],
            agencies={r["slug"]: r["id"] for r in rows},
            csv=job["media_type"] == CSV,
            reprojection=Reprojection(_crs(crs)),
        )

    async def _prepare_staging(self, job: asyncpg.Record, *, afresh: bool = False) -> int:
        """The job's staging tables, ready for its next feature: how many features were read (and staged or
        reported) before, 0 when it starts from the beginning (always when `afresh`)."""
        job_id = job["id"]
        reg, cam = stage_tables(job_id)
        async with self.db.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass($1)", reg) is not None
            if exists and job["phase"] in ("staging", "merging") and not afresh:
                # An UNLOGGED table is emptied when PostgreSQL itself restarts: then start again.
                staged = await conn.fetchval(
                    f"SELECT count(*) FROM {reg} s WHERE {STAGED_OK}",  # noqa: S608 - our own table name
                    job_id,
                )
                if staged == job["valid"]:
                    return int(job["read"])
            # Start from the beginning: no staged row, no report row, no count survives.
            async with conn.transaction():
                await conn.execute(f"DROP TABLE IF EXISTS {reg}, {cam}")
                await conn.execute(
                    f"CREATE UNLOGGED TABLE {reg} (LIKE registry.import_staging INCLUDING DEFAULTS"
                    " INCLUDING INDEXES)"
                )
                # The duplicate check looks up earlier rows by external_id.
                await conn.execute(f"CREATE INDEX ON {reg} (external_id, ordinal)")
                await conn.execute(
                    f"CREATE UNLOGGED TABLE {cam} (LIKE registry.import_staging_cameras INCLUDING DEFAULTS"
                    " INCLUDING INDEXES)"
                )
                await conn.execute("DELETE FROM registry.import_rejections WHERE job_id = $1", job_id)
                await conn.execute(
                    "UPDATE registry.import_jobs SET phase = 'staging', read = 0, valid = 0, rejected = 0,"
                    " created = 0, updated = 0 WHERE id = $1",
                    job_id,
                )
            return 0

    async def _load(self, job: asyncpg.Record, spool: Path) -> None:
        """Read, validate and stage the upload chunk by chunk; unless this is a dry run, each staged chunk is
        merged at once by the job's writer, whose one transaction commits only at the end (so the next
        chunk's parsing overlaps this chunk's writing, and a failure or a killed process writes nothing)."""
        job_id = job["id"]
        skip = await self._prepare_staging(job)
        job = await self.db.fetchrow(JOB_SQL, job_id)
        assert job is not None
        rejected = int(job["rejected"])
        writer = None if job["dry_run"] else _Writer(self.db, job)
        try:
            if writer is not None and not await writer.start(
                skip, merge=not (job["mode"] == "all" and rejected)
            ):
                # Resuming, and another import created registrations of external ids this job had staged as
                # new while it was stopped: stage again from the start (the writer keeps the agency's lock, so
                # this time each row is read as new or existing as it really is).
                skip = await self._prepare_staging(job, afresh=True)
                job = await self.db.fetchrow(JOB_SQL, job_id)
                assert job is not None
                rejected = 0
                writer.merging = True
                await self.db.execute(
                    "UPDATE registry.import_jobs SET phase = 'merging' WHERE id = $1", job_id
                )
            read = await self._stage(job, spool, skip, rejected, writer)
            if read == 0:
                raise JobFailed("the upload holds no features; nothing was written")
            job = await self.db.fetchrow(JOB_SQL, job_id)
            assert job is not None
            if job["mode"] == "all" and job["rejected"]:
                raise JobFailed(
                    f"{job['rejected']:,} feature(s) were rejected and this import is all-or-nothing: nothing "
                    "was written. The report lists each one; fix them, or import with ?mode=valid to write "
                    "the valid ones."
                )
            if writer is not None:
                await writer.drain()
                await writer.finish()
            else:
                await self._finish_dry_run(job)
        finally:
            if writer is not None:
                await writer.close()

    async def _stage(
        self, job: asyncpg.Record, spool: Path, skip: int, rejected: int, writer: _Writer | None
    ) -> int:
        job_id = job["id"]
        reg, cam = stage_tables(job_id)
        check = _Checks(job)
        with spool.open("rb") as f:
            reader = _reader(job, f)
            crs_name = job["crs"]
            program = await self._program(job, crs_name)
            features: Iterator[RawFeature] = iter(reader)
            if skip:
                # Resuming: the first `skip` features are staged (or reported) already.
                features = islice(features, skip, None)
            read = skip
            size = chunk_size()
            pending: asyncio.Task[int] | None = None
            async with self.db.acquire() as lookup:
                try:
                    while True:
                        t0 = time.monotonic()
                        chunk = await asyncio.to_thread(
                            _next_chunk, features, program, size, reader, crs_name
                        )
                        t1 = time.monotonic()
                        if chunk is None:
                            break
                        existing, stored = await _existing(lookup, job["agency_id"], chunk.valid)
                        keys = await keystore("registry_api").ensure(_keyed(chunk.valid, existing, stored))
                        regs, cams, new_keys = await asyncio.to_thread(
                            stage_rows, chunk.valid, existing, job["credentials"], stored, keys
                        )
                        # The chunk's new data keys, in one round trip, before any row sealed under them is
                        # merged (a job that fails after this leaves keys that protect nothing).
                        await keystore("registry_api").store(new_keys)
                        lo, read = read, read + chunk.read
                        t2 = time.monotonic()
                        if pending is not None:
                            rejected += await pending
                        log.debug(
                            "import %s: chunk validated in %.2f s, staged rows in %.2f s, waited %.2f s for the"
                            " database",
                            job_id,
                            t1 - t0,
                            t2 - t1,
                            time.monotonic() - t2,
                        )
                        pending = asyncio.get_running_loop().create_task(
                            self._write_chunk(
                                job, check, reg, cam, regs, cams, chunk, lo, read, bool(existing), writer
                            )
                        )
                    if pending is not None:
                        rejected += await pending
                        pending = None
                finally:
                    if pending is not None:
                        pending.cancel()
                        with contextlib.suppress(BaseException):
                            await pending
        return read

    async def _write_chunk(
        self,
        job: asyncpg.Record,
        check: _Checks,
        reg: str,
        cam: str,
        regs: list[tuple[Any, ...]],
        cams: list[tuple[Any, ...]],
        chunk: _Chunk,
        lo: int,
        hi: int,
        any_existing: bool,
        writer: _Writer | None,
    ) -> int:
        """Stage one chunk and check it (one transaction with the job's counters, so a job resumes after the
        last staged chunk), then have the writer merge it. The number of features it rejected."""
        job_id = job["id"]
        schema, reg_table = reg.split(".")
        _, cam_table = cam.split(".")
        async with self.db.acquire() as conn, conn.transaction():
            if regs:
                await conn.copy_records_to_table(
                    reg_table, schema_name=schema, columns=STAGE_COLUMNS, records=regs
                )
            if cams:
                await conn.copy_records_to_table(
                    cam_table, schema_name=schema, columns=STAGE_CAMERA_COLUMNS, records=cams
                )
            later = await check.run(conn, reg, regs, cams) if regs else []
            if chunk.rejected or later:
                await _record_rejections(conn, job_id, [*chunk.rejected, *later])
            bad = len({r.ordinal for r in later})
            rejected = len({r.ordinal for r in chunk.rejected}) + bad
            await conn.execute(
                "UPDATE registry.import_jobs SET read = $2, valid = valid + $3, rejected = rejected + $4,"
                " heartbeat_at = now() WHERE id = $1",
                job_id,
                hi,
                len(regs) - bad,
                rejected,
            )
        if writer is not None and regs:
            # Merged on the writer's connection while the next chunk is read and staged on another.
            await writer.enqueue(lo, hi, any_existing, rejected)
        return rejected

    async def _finish_dry_run(self, job: asyncpg.Record) -> None:
        job_id = job["id"]
        reg, cam = stage_tables(job_id)
        async with self.db.acquire() as conn, conn.transaction():
            counts = await conn.fetchrow(
                f"SELECT count(*) FILTER (WHERE NOT existing) AS created,"  # noqa: S608 - our own table name
                f" count(*) FILTER (WHERE existing) AS updated FROM {reg} s WHERE {STAGED_OK}",
                job_id,
            )
            await conn.execute(
                "UPDATE registry.import_jobs SET status = 'succeeded', phase = 'done', created = $2,"
                " updated = $3, finished_at = clock_timestamp() WHERE id = $1",
                job_id,
                counts["created"],
                counts["updated"],
            )
            await conn.execute(f"DROP TABLE IF EXISTS {reg}, {cam}")

    async def _fail(self, job_id: uuid.UUID, message: str) -> None:
        reg, cam = stage_tables(job_id)
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(f"DROP TABLE IF EXISTS {reg}, {cam}")
            await conn.execute(
                "UPDATE registry.import_jobs SET status = 'failed', error = $2, finished_at = clock_timestamp()"
                " WHERE id = $1 AND status IN ('queued', 'running')",
                job_id,
                message,
            )

    async def _cleanup_files(self, job_id: uuid.UUID) -> None:
        """Remove the upload of an ended job (one still running keeps it: another process resumes it). When
        the database cannot say, the job is left to be resumed, or its upload to the sweep."""
        try:
            path = await self.db.fetchval(
                "SELECT spool_path FROM registry.import_jobs WHERE id = $1 AND status IN ('succeeded', 'failed')",
                job_id,
            )
            if path:
                await asyncio.to_thread(Path(path).unlink, missing_ok=True)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not remove the upload of import job %s: %s", job_id, type(exc).__name__)

    # --- retention ---------------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await self.purge_credentials()
            await self.purge_reports()
            await self._sweep_uploads()
            await asyncio.sleep(sweep_seconds())

    async def purge_reports(self) -> None:
        """Delete the reports of jobs that ended longer ago than the report's retention."""
        try:
            status = await self.db.execute(PURGE_REPORTS, report_ttl_seconds())
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not purge old import reports: %s", type(exc).__name__)
            return
        if _count(status):
            log.info("purged %d rejected feature(s) of old import reports", _count(status))

    async def purge_credentials(self) -> None:
        """Delete the credentials awaiting delivery whose registration is gone (its owner deleted it) or which
        were not delivered in time (a report never downloaded): personal data kept for no one."""
        try:
            status = await self.db.execute(PURGE_CREDENTIALS, credential_ttl_seconds())
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not purge undelivered import credentials: %s", type(exc).__name__)
            return
        if _count(status):
            log.info("purged %d undelivered import credential(s)", _count(status))

    async def _sweep_uploads(self) -> None:
        """Remove the uploads of ended jobs that are still on disk (the process stopped between the job's end
        and the removal)."""
        try:
            files = await asyncio.to_thread(_uploads, import_dir())
            if not files:
                return
            rows = await self.db.fetch(
                "SELECT id FROM registry.import_jobs WHERE id = ANY($1::uuid[]) AND status IN ('succeeded', 'failed')",
                list(files),
            )
            for r in rows:
                await asyncio.to_thread(files[r["id"]].unlink, missing_ok=True)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("could not sweep import uploads: %s", type(exc).__name__)

    # --- credentials by mail -----------------------------------------------------------------------------

    async def deliver_mail(self, job_id: uuid.UUID) -> None:
        """Mail each new owner their credential, after the commit and in the background; each one sent is
        deleted, so a restart goes on where it stopped and nothing is sent twice."""
        ring = keyring()
        mailer = get_mailer()
        while True:
            rows = await self.db.fetch(
                "SELECT c.registration_id, c.credential_enc, r.contact_email_enc, a.name"
                " FROM registry.import_credentials c LEFT JOIN registry.registrations r ON r.id = c.registration_id"
                " LEFT JOIN registry.agencies a ON a.id = r.agency_id"
                " WHERE c.job_id = $1 AND c.delivery = 'email' LIMIT 200",
                job_id,
            )
            if not rows:
                return
            for r in rows:
                rid = r["registration_id"]
                try:
                    email = ring.open(r["contact_email_enc"], f"registration:{rid}:email")
                    credential = ring.open(r["credential_enc"], credential_context(rid))
                    if email and credential:  # the owner may have deleted the registration meanwhile
                        await mailer.send(
                            email,
                            f"Your camera registration with {r['name']}",
                            _mail(r["name"], rid, credential),
                        )
                except Exception as exc:
                    log.warning("could not mail an imported owner's credential: %s", type(exc).__name__)
            await self.db.execute(
                "DELETE FROM registry.import_credentials WHERE registration_id = ANY($1::uuid[])",
                [r["registration_id"] for r in rows],
            )


runner = ImportRunner()

# Credentials awaiting delivery kept for no one: their registration was deleted (import_credentials has no
# foreign key: the check would cost a bulk import as much as writing the credentials), or their job ended
# more than $1 seconds ago.
PURGE_REPORTS = """
DELETE FROM registry.import_rejections x USING registry.import_jobs j
WHERE j.id = x.job_id AND j.finished_at < now() - make_interval(secs => $1)
"""

PURGE_CREDENTIALS = """
DELETE FROM registry.import_credentials c
WHERE NOT EXISTS (SELECT 1 FROM registry.registrations r WHERE r.id = c.registration_id)
   OR NOT EXISTS (SELECT 1 FROM registry.import_jobs j WHERE j.id = c.job_id
                  AND (j.finished_at IS NULL OR j.finished_at > now() - make_interval(secs => $1)))
"""


def _uploads(folder: Path) -> dict[uuid.UUID, Path]:
    out = {}
    if folder.is_dir():
        for path in folder.glob("*.upload"):
            with contextlib.suppress(ValueError):
                out[uuid.UUID(path.stem)] = path
    return out


# A staged row is merged when no check refused it (a refused row stays staged, so that a later duplicate of it
# is still named as one, with the line of the first).
STAGED_OK = (
    "NOT EXISTS (SELECT 1 FROM registry.import_rejections x WHERE x.job_id = $1 AND x.ordinal = s.ordinal)"
)

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


class _Checks:
    """The checks a chunk meets once staged, set-based: every point in the agency's jurisdiction, and each
    external_id once per upload."""

    def __init__(self, job: asyncpg.Record) -> None:
        self.job = job
        self.csv = job["media_type"] == CSV

    async def run(
        self, conn: asyncpg.Connection, reg: str, regs: list[tuple[Any, ...]], cams: list[tuple[Any, ...]]
    ) -> list[Rejection]:
        job = self.job
        by_ordinal = {r[0]: r for r in regs}
        ords: list[int] = []
        idx: list[int | None] = []
        lons: list[float] = []
        lats: list[float] = []
        for r in regs:
            ords.append(r[0])
            idx.append(None)
            lons.append(r[7])
            lats.append(r[8])
        for c in cams:
            home = by_ordinal[c[0]]
            if (c[4], c[5]) != (home[7], home[8]):
                ords.append(c[0])
                idx.append(c[1])
                lons.append(c[4])
                lats.append(c[5])
        outside = await conn.fetch(OUTSIDE_SQL, job["agency_id"], ords, idx, lons, lats)
        dupes = await conn.fetch(DUPES_SQL.format(reg=reg), [r[2] for r in regs], [r[0] for r in regs])
        out = []
        for o in sorted(outside, key=lambda o: (o["ordinal"], -1 if o["i"] is None else o["i"])):
            r = by_ordinal[o["ordinal"]]
            if o["i"] is None:
                pointer, lon, lat = ("/lon" if self.csv else "/geometry"), r[7], r[8]
            else:
                pointer = f"/properties/cameras/{o['i']}/location"
                lon, lat = next((c[4], c[5]) for c in cams if c[0] == r[0] and c[1] == o["i"])
            out.append(
                Rejection(
                    r[0],
                    r[1],
                    r[2],
                    pointer,
                    f"[{lon}, {lat}] lies outside the jurisdiction of {job['agency_name']} ({job['agency']}); "
                    "its program accepts only cameras inside its jurisdiction",
                )
            )
        for d in dupes:
            r = by_ordinal[d["ordinal"]]
            out.append(
                Rejection(
                    r[0],
                    r[1],
                    r[2],
                    "/external_id" if self.csv else "/properties/external_id",
                    f"external_id '{r[2]}' appears more than once in this upload (first on line {d['first']})",
                )
            )
        out.extend(await self._deleted_by_owner(conn, regs))
        out.sort(key=lambda x: x.ordinal)
        return out

    async def _deleted_by_owner(
        self, conn: asyncpg.Connection, regs: list[tuple[Any, ...]]
    ) -> list[Rejection]:
        """Rows whose registration its owner deleted after an earlier import: never registered again. Asked for
        each chunk (an owner may delete while the upload is read); the hashes are computed only when the agency
        has tombstones at all, under each key of the ring (a rotation does not forget them)."""
        agency_id = self.job["agency_id"]
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT FROM registry.import_tombstones WHERE agency_id = $1)", agency_id
        ):
            return []
        rows_of: dict[bytes, list[tuple[Any, ...]]] = {}
        for r in regs:  # an id listed twice is two rows with one hash: both are rejected
            for ix in external_id_indexes(agency_id, r[2]):
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
                r[0],
                r[1],
                r[2],
                "/external_id" if self.csv else "/properties/external_id",
                f"the owner of the registration imported as external_id '{r[2]}' deleted it; Canvass does not"
                " register them again: remove it from your list",
            )
            for r in sorted(hit.values(), key=lambda r: r[0])
        ]


class _Writer:
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
        rng = _RANGE.format(ok=STAGED_OK)
        sql = {"reg": self.reg, "cam": self.cam, "range": rng}
        sql["old"] = _OLD_CAMERAS.format(**sql)
        conn = self.conn
        self.created += _count(await conn.execute(MERGE_NEW[0].format(**sql), *args))
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


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# The merge of staged rows [$4, $5) of job $1 into agency $2's program, by integrator $3. Every statement
# names every parameter (asyncpg binds them all).
_RANGE = "s.ordinal >= $4 AND s.ordinal < $5 AND {ok} AND $2::uuid IS NOT NULL AND $3::text IS NOT NULL"

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
    SELECT c.id, c.registration_id, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326), s.owner_kind, s.share_ids,
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
_OLD_CAMERAS = """
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
        registered_by = $3, version = r.version + 1, updated_at = now()
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


# --- helpers ---------------------------------------------------------------------------------------------


def _crs(name: str | None) -> Any:
    if name is None:
        return None
    try:
        return parse_crs(name)
    except ValueError as exc:
        raise JobFailed(f"{exc}; nothing was written") from exc


def _crs_key(name: str) -> Any:
    crs = _crs(name)
    return crs.to_wkt() if crs is not None else "WGS84"


def _reader(job: asyncpg.Record, f: IO[bytes]) -> Any:
    kind = job["media_type"]
    if kind == GEOJSON:
        return _TrackingCollection(f)
    if kind == GEOJSON_SEQ:
        return _Iterable(read_sequence(f))
    if kind == CSV:
        projected = job["crs"] is not None and _crs(job["crs"]) is not None
        return _Iterable(read_csv(f, CSV_COLUMNS, projected=projected))
    raise JobFailed(f"unsupported media type {kind}")


class _Iterable:
    def __init__(self, it: Iterator[RawFeature]) -> None:
        self.it = it

    def __iter__(self) -> Iterator[RawFeature]:
        return self.it


class _TrackingCollection(FeatureCollectionReader):
    """A FeatureCollection reader that remembers whether its crs member came before the first feature."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__(f)
        self.member_first: bool | None = None
        self.member_applied = False

    def __iter__(self) -> Iterator[RawFeature]:
        for raw in super().__iter__():
            if self.member_first is None:
                self.member_first = self.crs_member is not None
            yield raw
        if self.member_first is None:  # no features at all
            self.member_first = True


def _next_chunk(
    features: Iterator[RawFeature], program: Program, size: int, reader: Any, job_crs: str | None
) -> _Chunk | None:
    gc.disable()  # see validate_chunk
    try:
        raws = list(islice(features, size))
    finally:
        gc.enable()
    member = getattr(reader, "crs_member", None)
    if member is not None and not getattr(reader, "member_applied", False):
        # A legacy GeoJSON crs member is honoured when it comes before the features and agrees with ?crs=.
        if job_crs is not None and _crs_key(job_crs) != _crs_key(member):
            raise JobFailed(
                f"the FeatureCollection says its CRS is {member} but the import was asked for ?crs={job_crs}; "
                "nothing was written"
            )
        if not reader.member_first and job_crs is None:
            raise JobFailed(
                f"the FeatureCollection's crs member ({member}) comes after its features: put it first, or pass "
                "?crs=, and submit again; nothing was written"
            )
        program.reprojection = Reprojection(_crs(member))
        reader.member_applied = True
    if not raws:
        return None
    valid, rejected = validate_chunk(raws, program)
    return _Chunk(valid, rejected, len(raws))


async def _existing(
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


def _keyed(
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


async def _record_rejections(
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


def _mail(agency_name: str, rid: uuid.UUID, credential: str) -> str:
    return (
        f"{agency_name} added your security camera(s) to its community camera registry from the records it "
        "keeps with you.\n\n"
        "Registration gives nobody access to your cameras. You can see, change, pause or delete your "
        "registration at any time with this management credential (keep it private; it is shown only once):\n\n"
        f"    {credential}\n\n"
        f"Registration: {rid}\n"
        "If you do not want to be registered, delete the registration with the credential above.\n"
    )


async def stream_report_rows(
    pool: asyncpg.Pool, job_id: uuid.UUID, batch: int = 5000
) -> AsyncIterator[list[asyncpg.Record]]:
    """The job's rejections in upload order, a batch at a time (keyset, so memory stays flat)."""
    last = (-1, -1)
    while True:
        rows = await pool.fetch(
            "SELECT ordinal, seq, line, external_id, pointer, reason FROM registry.import_rejections"
            " WHERE job_id = $1 AND (ordinal, seq) > ($2, $3) ORDER BY ordinal, seq LIMIT $4",
            job_id,
            last[0],
            last[1],
            batch,
        )
        if not rows:
            return
        yield rows
        last = (rows[-1]["ordinal"], rows[-1]["seq"])
