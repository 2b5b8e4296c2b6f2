"""The runner: an import job's life in the registry_api process — claimed, its lease renewed (the heartbeat),
run one at a time (read, validate and stage the upload chunk by chunk, have `merge` write it), finished or
failed, taken over when its process died, and the periodic sweep of what imports leave behind (`retention`).

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
their registration is deleted or they wait too long (see `retention.PURGE_CREDENTIALS`): at each job's end,
each report download and each sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import asyncpg

from services.registry_api.imports import delivery, retention, staging
from services.registry_api.imports.features import CSV_COLUMNS, Chunk, Program, next_chunk
from services.registry_api.imports.formats import (
    CSV,
    ImportInputError,
    RawFeature,
    Reprojection,
    parse_job_crs,
    reader_for,
)
from services.registry_api.imports.jobs import JOB_SQL, JobFailed
from services.registry_api.imports.merge import Writer
from services.registry_api.imports.settings import import_settings
from services.registry_api.imports.staging import (
    STAGED_OK,
    Checks,
    StagedCamera,
    StagedRegistration,
    stage_tables,
)
from shared.db import asyncpg_dsn, pooler_arguments, server_settings
from shared.keystore import keystore
from shared.settings import get_settings

log = logging.getLogger("canvass.registry.imports")
SERVICE = "registry_api"

# A lease (claim) is a job's lease_owner and its heartbeat_at within the lease.
CLAIM_SQL = """
UPDATE registry.import_jobs SET lease_owner = $2, heartbeat_at = now()
WHERE id = $1 AND status IN ('queued', 'running')
  AND (heartbeat_at IS NULL OR heartbeat_at < now() - make_interval(secs => $3))
RETURNING id
"""


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
        import_settings()  # a malformed setting refuses start-up here, not in the middle of a job
        settings = get_settings()
        # The runner's own pool, the one pool of the service without a statement timeout: staging and merging a
        # large upload are long statements by nature, and they run in the background, never for an HTTP
        # request (the import's handlers use the service's request pool, `database.db.pool()`, and its timeout).
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

    async def claim_if_abandoned(self, job_id: uuid.UUID, pool: asyncpg.Pool | None = None) -> bool:
        """Take over an unfinished job whose process stopped renewing its lease; it then runs here. `pool`: the
        one to claim on (an HTTP handler gives the request pool), else the runner's."""
        got = await (pool or self.db).fetchval(CLAIM_SQL, job_id, self.instance, import_settings().lease_s)
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
            import_settings().lease_s,
        )
        for r in rows:
            await self.claim_if_abandoned(r["id"])

    async def _reclaim(self) -> None:
        """Every quarter lease: a dead process's job is resumed here within about a lease, with no one asking."""
        while True:
            await asyncio.sleep(max(import_settings().lease_s / 4, 0.1))
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
                self._spawn(delivery.deliver_mail(self.db, r["job_id"]))

    async def _heartbeat(self) -> None:
        """Renew the lease of every job this process holds, the running one and those queued behind it."""
        interval = max(import_settings().lease_s / 3, 0.1)
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

    async def _sweep(self) -> None:
        while True:
            await retention.purge_credentials(self.db)
            await retention.purge_reports(self.db)
            await retention.sweep_uploads(self.db)
            await asyncio.sleep(import_settings().sweep_s)

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
            await self._run_or_fail(job)
        except asyncio.CancelledError:
            interrupted = True  # the process stops: the upload stays for the process that resumes the job
            raise
        finally:
            if not interrupted:
                # The upload is personal data in clear: every end of the job removes it.
                await retention.remove_upload(self.db, job_id)
        final = await self.db.fetchrow(
            "SELECT status, dry_run FROM registry.import_jobs WHERE id = $1", job_id
        )
        if final and final["status"] == "succeeded" and not final["dry_run"]:
            # Owners with an email are mailed their credential whatever `credentials=` says.
            self._spawn(delivery.deliver_mail(self.db, job_id))
        await retention.purge_credentials(self.db)

    async def _run_or_fail(self, job: asyncpg.Record) -> None:
        """Run the job; any way it fails ends it as failed, with a message for the integrator."""
        job_id = job["id"]
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

    async def _program(self, job: asyncpg.Record, crs: str | None) -> Program:
        rows = await self.db.fetch("SELECT slug, id FROM registry.agencies")
        return Program(
            agency_id=job["agency_id"],
            slug=job["agency"],
            agencies={r["slug"]: r["id"] for r in rows},
            csv=job["media_type"] == CSV,
            reprojection=Reprojection(parse_job_crs(crs)),
        )

    async def _prepare_staging(self, job: asyncpg.Record, *, afresh: bool = False) -> int:
        """The job's staging tables, ready for its next feature: how many features were read (and staged or
        reported) before, 0 when it starts from the beginning (always when `afresh`)."""
        job_id = job["id"]
        async with self.db.acquire() as conn:
            if job["phase"] in ("staging", "merging") and not afresh:
                # An UNLOGGED table is emptied when PostgreSQL itself restarts: then start again.
                if await staging.staged_count(conn, job_id) == job["valid"]:
                    return int(job["read"])
            # Start from the beginning: no staged row, no report row, no count survives.
            async with conn.transaction():
                await staging.create_tables(conn, job_id)
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
        job = await self._job(job_id)
        rejected = int(job["rejected"])
        writer = None if job["dry_run"] else Writer(self.db, job)
        try:
            if writer is not None and not await writer.start(
                skip, merge=not (job["mode"] == "all" and rejected)
            ):
                # Resuming, and another import created registrations of external ids this job had staged as
                # new while it was stopped: stage again from the start (the writer keeps the agency's lock, so
                # this time each row is read as new or existing as it really is).
                skip = await self._prepare_staging(job, afresh=True)
                job = await self._job(job_id)
                rejected = 0
                writer.merging = True
                await self.db.execute(
                    "UPDATE registry.import_jobs SET phase = 'merging' WHERE id = $1", job_id
                )
            read = await self._stage(job, spool, skip, rejected, writer)
            if read == 0:
                raise JobFailed("the upload holds no features; nothing was written")
            job = await self._job(job_id)
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

    async def _job(self, job_id: uuid.UUID) -> asyncpg.Record:
        job = await self.db.fetchrow(JOB_SQL, job_id)
        assert job is not None
        return job

    async def _stage(
        self, job: asyncpg.Record, spool: Path, skip: int, rejected: int, writer: Writer | None
    ) -> int:
        """Stage the upload from feature `skip` on, a chunk at a time: the next chunk is read and sealed while the
        one before is written. How many features the upload holds."""
        job_id = job["id"]
        check = Checks(job)
        with spool.open("rb") as f:
            crs_name = job["crs"]
            reader = reader_for(job["media_type"], crs_name, f, CSV_COLUMNS)
            program = await self._program(job, crs_name)
            features: Iterator[RawFeature] = iter(reader)
            if skip:
                # Resuming: the first `skip` features are staged (or reported) already.
                features = islice(features, skip, None)
            read = skip
            size = import_settings().chunk
            pending: asyncio.Task[int] | None = None
            async with self.db.acquire() as lookup:
                try:
                    while True:
                        t0 = time.monotonic()
                        chunk = await asyncio.to_thread(next_chunk, features, program, size, reader, crs_name)
                        if chunk is None:
                            break
                        regs, cams, any_existing = await self._seal(lookup, job, chunk)
                        lo, read = read, read + chunk.read
                        t1 = time.monotonic()
                        if pending is not None:
                            rejected += await pending
                        log.debug(
                            "import %s: chunk read and sealed in %.2f s, waited %.2f s for the database",
                            job_id,
                            t1 - t0,
                            time.monotonic() - t1,
                        )
                        pending = asyncio.get_running_loop().create_task(
                            self._write_chunk(job, check, regs, cams, chunk, lo, read, any_existing, writer)
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

    async def _seal(
        self, lookup: asyncpg.Connection, job: asyncpg.Record, chunk: Chunk
    ) -> tuple[list[StagedRegistration], list[StagedCamera], bool]:
        """The chunk's staging rows, sealed under the keys they need; and whether any updates a registration."""
        existing, stored = await staging.existing_registrations(lookup, job["agency_id"], chunk.valid)
        keys = await keystore("registry_api").ensure(staging.keyed(chunk.valid, existing, stored))
        regs, cams, new_keys = await asyncio.to_thread(
            staging.stage_rows, chunk.valid, existing, job["credentials"], stored, keys
        )
        # The chunk's new data keys, in one round trip, before any row sealed under them is merged (a job that
        # fails after this leaves keys that protect nothing).
        await keystore("registry_api").store(new_keys)
        return regs, cams, bool(existing)

    async def _write_chunk(
        self,
        job: asyncpg.Record,
        check: Checks,
        regs: list[StagedRegistration],
        cams: list[StagedCamera],
        chunk: Chunk,
        lo: int,
        hi: int,
        any_existing: bool,
        writer: Writer | None,
    ) -> int:
        """Stage one chunk and check it (one transaction with the job's counters, so a job resumes after the
        last staged chunk), then have the writer merge it. The number of features it rejected."""
        job_id = job["id"]
        async with self.db.acquire() as conn, conn.transaction():
            await staging.copy_rows(conn, job_id, regs, cams)
            later = await check.run(conn, regs, cams) if regs else []
            if chunk.rejected or later:
                await staging.record_rejections(conn, job_id, [*chunk.rejected, *later])
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
        reg, _ = stage_tables(job_id)
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
            await staging.drop_tables(conn, job_id)

    async def _fail(self, job_id: uuid.UUID, message: str) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await staging.drop_tables(conn, job_id)
            await conn.execute(
                "UPDATE registry.import_jobs SET status = 'failed', error = $2, finished_at = clock_timestamp()"
                " WHERE id = $1 AND status IN ('queued', 'running')",
                job_id,
                message,
            )


runner = ImportRunner()
