"""The import job's row (`registry.import_jobs`): reading it, and creating it for an upload. The job's life once
created (leases, states, counts) is the runner's."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from shared.db import pooled


class JobFailed(Exception):
    """Ends the job as failed with this message (nothing written)."""


JOB_COLUMNS = """
    j.id, j.agency_id, a.slug AS agency, a.name AS agency_name, j.principal, j.media_type, j.crs, j.mode,
    j.dry_run, j.credentials, j.spool_path, j.bytes_received, j.status, j.phase, j.read, j.valid, j.rejected,
    j.created, j.updated, j.attempts, j.error, j.created_at, j.started_at, j.finished_at,
    j.report_downloaded_at, j.heartbeat_at
"""
JOB_SQL = f"SELECT {JOB_COLUMNS} FROM registry.import_jobs j JOIN registry.agencies a ON a.id = j.agency_id WHERE j.id = $1"  # noqa: S608 - constant

INSERT_JOB = """
INSERT INTO registry.import_jobs (id, agency_id, principal, media_type, crs, mode, dry_run, credentials,
    idempotency_key, request_hash, spool_path, bytes_received, status, phase, lease_owner, heartbeat_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued', 'staging', $13, now())
ON CONFLICT (principal, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id
"""


async def read_job(pool: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record | None:
    async with pooled(pool) as conn:
        return await conn.fetchrow(JOB_SQL, job_id)


async def agency_id(pool: asyncpg.Pool, slug: str | None) -> uuid.UUID | None:
    async with pooled(pool) as conn:
        return await conn.fetchval("SELECT id FROM registry.agencies WHERE slug = $1", slug)


async def insert_job(pool: asyncpg.Pool, *values: Any) -> uuid.UUID | None:
    """The new job's id; None when the principal's Idempotency-Key named a job already (nothing inserted).
    `values` in INSERT_JOB's order."""
    async with pooled(pool) as conn:
        return await conn.fetchval(INSERT_JOB, *values)


async def job_for_key(pool: asyncpg.Pool, principal: str, key: str) -> asyncpg.Record | None:
    """The job a principal's Idempotency-Key created: its id and the hash of its request."""
    async with pooled(pool) as conn:
        return await conn.fetchrow(
            "SELECT id, request_hash FROM registry.import_jobs WHERE principal = $1 AND idempotency_key = $2",
            principal,
            key,
        )
