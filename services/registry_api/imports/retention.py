"""What an import keeps, and for how long: an ended job's report (its rejected features) for
`CANVASS_IMPORT_REPORT_TTL_S`, credentials awaiting delivery until delivered, their registration deleted, or
`CANVASS_IMPORT_CREDENTIAL_TTL_S` after the job's end, and an upload only while its job runs. Each purge is
asked at each job's end, each report download and each sweep (`runner`), and logs rather than fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.registry_api.imports.settings import import_settings

log = logging.getLogger("canvass.registry.imports")

PURGE_REPORTS = """
DELETE FROM registry.import_rejections x USING registry.import_jobs j
WHERE j.id = x.job_id AND j.finished_at < now() - make_interval(secs => $1)
"""

# Credentials awaiting delivery kept for no one: their registration was deleted (import_credentials has no
# foreign key: the check would cost a bulk import as much as writing the credentials), or their job ended
# more than $1 seconds ago.
PURGE_CREDENTIALS = """
DELETE FROM registry.import_credentials c
WHERE NOT EXISTS (SELECT 1 FROM registry.registrations r WHERE r.id = c.registration_id)
   OR NOT EXISTS (SELECT 1 FROM registry.import_jobs j WHERE j.id = c.job_id
                  AND (j.finished_at IS NULL OR j.finished_at > now() - make_interval(secs => $1)))
"""


async def purge_reports(pool: asyncpg.Pool) -> None:
    """Delete the reports of jobs that ended longer ago than the report's retention."""
    try:
        status = await pool.execute(PURGE_REPORTS, import_settings().report_ttl_s)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not purge old import reports: %s", type(exc).__name__)
        return
    if count(status):
        log.info("purged %d rejected feature(s) of old import reports", count(status))


async def purge_credentials(pool: asyncpg.Pool) -> None:
    """Delete the credentials awaiting delivery whose registration is gone (its owner deleted it) or which
    were not delivered in time (a report never downloaded): personal data kept for no one."""
    try:
        status = await pool.execute(PURGE_CREDENTIALS, import_settings().credential_ttl_s)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not purge undelivered import credentials: %s", type(exc).__name__)
        return
    if count(status):
        log.info("purged %d undelivered import credential(s)", count(status))


async def remove_upload(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """Remove the upload of an ended job (one still running keeps it: another process resumes it). When the
    database cannot say, the job is left to be resumed, or its upload to the sweep."""
    try:
        path = await pool.fetchval(
            "SELECT spool_path FROM registry.import_jobs WHERE id = $1 AND status IN ('succeeded', 'failed')",
            job_id,
        )
        if path:
            await asyncio.to_thread(Path(path).unlink, missing_ok=True)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not remove the upload of import job %s: %s", job_id, type(exc).__name__)


async def sweep_uploads(pool: asyncpg.Pool) -> None:
    """Remove the uploads of ended jobs that are still on disk (the process stopped between the job's end and
    the removal)."""
    try:
        files = await asyncio.to_thread(_uploads, import_settings().import_dir)
        if not files:
            return
        rows = await pool.fetch(
            "SELECT id FROM registry.import_jobs WHERE id = ANY($1::uuid[]) AND status IN ('succeeded', 'failed')",
            list(files),
        )
        for r in rows:
            await asyncio.to_thread(files[r["id"]].unlink, missing_ok=True)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not sweep import uploads: %s", type(exc).__name__)


def _uploads(folder: Path) -> dict[uuid.UUID, Path]:
    out = {}
    if folder.is_dir():
        for path in folder.glob("*.upload"):
            with contextlib.suppress(ValueError):
                out[uuid.UUID(path.stem)] = path
    return out


def count(status: str) -> int:
    """The row count of a command's status ("DELETE 3")."""
    return int(status.rsplit(" ", 1)[-1])


def report_expired(job: Mapping[str, Any]) -> bool:
    """Whether an ended job's report is past its retention (deleted, or about to be)."""
    if job["status"] not in ("succeeded", "failed"):
        return False
    return bool(job["finished_at"] < datetime.now(UTC) - timedelta(seconds=import_settings().report_ttl_s))
