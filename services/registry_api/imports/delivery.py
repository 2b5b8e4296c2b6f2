"""Delivering what an import owes: its report (`GET /v1/imports/{job_id}/report`, streamed: the rejected
features in upload order, then, once, the credentials of new owners without an email) and, after the commit,
each other new owner's credential by mail. A credential is deleted once delivered."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from services.registry_api.imports.staging import credential_context
from shared.crypto import keyring
from shared.db import pooled
from shared.mail import get_mailer

log = logging.getLogger("canvass.registry.imports")


async def stream_report_rows(
    pool: asyncpg.Pool, job_id: uuid.UUID, batch: int = 5000
) -> AsyncIterator[list[asyncpg.Record]]:
    """The job's rejections in upload order, a batch at a time (keyset, so memory stays flat)."""
    last = (-1, -1)
    while True:
        async with pooled(pool) as conn:
            rows = await conn.fetch(
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


async def report_body(
    pool: asyncpg.Pool, job_id: uuid.UUID, head: bytes, finished: bool
) -> AsyncIterator[bytes]:
    """The report's JSON, a batch of rows at a time; `head` is the job, as JSON. An ended job's report carries
    the credentials delivered in it, in its first complete download only."""
    yield b'{"job":' + head + b',"rejected":['
    first = True
    async for rows in stream_report_rows(pool, job_id):
        parts = [
            orjson.dumps(
                {
                    "index": r["ordinal"],
                    "line": r["line"],
                    "external_id": r["external_id"],
                    "pointer": r["pointer"],
                    "reason": r["reason"],
                }
            )
            for r in rows
        ]
        yield (b"" if first else b",") + b",".join(parts)
        first = False
    yield b'],"credentials":['
    if finished:
        async for chunk in _credentials_once(pool, job_id):
            yield chunk
    yield b"]}"


async def _credentials_once(pool: asyncpg.Pool, job_id: uuid.UUID) -> AsyncIterator[bytes]:
    """The report's credentials, then deleted in the same transaction: a download that does not complete
    rolls back and leaves them for the next one."""
    ring = keyring()
    async with pooled(pool) as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            first = True
            async for batch in _credential_batches(conn, job_id):
                parts = []
                for r in batch:
                    rid = r["registration_id"]
                    credential = ring.open(r["credential_enc"], credential_context(rid))
                    parts.append(
                        orjson.dumps(
                            {
                                "external_id": r["external_id"],
                                "registration_id": str(rid),
                                "credential": credential,
                            }
                        )
                    )
                yield (b"" if first else b",") + b",".join(parts)
                first = False
            await conn.execute(
                "DELETE FROM registry.import_credentials WHERE job_id = $1 AND delivery = 'report'", job_id
            )
            await conn.execute(
                "UPDATE registry.import_jobs SET report_downloaded_at = now() WHERE id = $1", job_id
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise
        else:
            await tx.commit()


async def _credential_batches(conn: asyncpg.Connection, job_id: uuid.UUID) -> AsyncIterator[list[Any]]:
    last = -1
    while True:
        rows = await conn.fetch(
            "SELECT c.ordinal, c.external_id, c.registration_id, c.credential_enc FROM registry.import_credentials c"
            " WHERE c.job_id = $1 AND c.delivery = 'report' AND c.ordinal > $2"
            " AND EXISTS (SELECT 1 FROM registry.registrations r WHERE r.id = c.registration_id)"
            " ORDER BY c.ordinal LIMIT 2000 FOR UPDATE OF c",
            job_id,
            last,
        )
        if not rows:
            return
        yield rows
        last = rows[-1]["ordinal"]


# --- by mail ---------------------------------------------------------------------------------------------


async def deliver_mail(pool: asyncpg.Pool, job_id: uuid.UUID) -> None:
    """Mail each new owner their credential, after the commit and in the background; each one sent is
    deleted, so a restart goes on where it stopped and nothing is sent twice."""
    ring = keyring()
    mailer = get_mailer()
    while True:
        rows = await pool.fetch(
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
                        email, f"Your camera registration with {r['name']}", _mail(r["name"], rid, credential)
                    )
            except Exception as exc:
                log.warning("could not mail an imported owner's credential: %s", type(exc).__name__)
        await pool.execute(
            "DELETE FROM registry.import_credentials WHERE registration_id = ANY($1::uuid[])",
            [r["registration_id"] for r in rows],
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
