"""The registry's outbox to owners (`registry.owner_notices`): a message about a change is written in the change's
own transaction, so it is never lost and never sent for a change that rolled back. It is delivered after the
commit (a background task of the request) and by the periodic housekeeping of each instance (housekeeping.py),
which also picks up what a crash left. Notices are claimed with `FOR UPDATE SKIP LOCKED` and leased, so instances
never take the same one; a notice is marked sent right after its mail leaves, and a crash between the two sends
it again under the same Message-ID (derived from the notice's id), recognisably the same mail.

A notice names the registration only: the owner's address is opened from the sealed column when it is sent. An
owner who left no email address cannot be written to: the notice is marked undeliverable.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.registry_api.sealing import reg_context, unseal
from shared.mail import get_mailer, message_id

log = logging.getLogger("canvass.registry.notices")
LEASE_S = 120
MAX_ATTEMPTS = 10
BATCH = 50

CLAIM_SQL = """
UPDATE registry.owner_notices n SET attempts = n.attempts + 1,
    next_attempt_at = now() + make_interval(secs => :lease)
WHERE n.id IN (
    SELECT id FROM registry.owner_notices WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
RETURNING n.id, n.registration_id, n.subject, n.body, n.attempts,
    (SELECT r.contact_email_enc FROM registry.registrations r WHERE r.id = n.registration_id) AS email_enc
"""


async def enqueue(session: AsyncSession, rid: uuid.UUID, kind: str, subject: str, body: str) -> None:
    """Write a notice in the caller's transaction (it commits with the change it announces)."""
    await session.execute(
        text(
            "INSERT INTO registry.owner_notices (registration_id, kind, subject, body)"
            " VALUES (:rid, :kind, :subject, :body)"
        ),
        {"rid": rid, "kind": kind, "subject": subject, "body": body},
    )


async def deliver_due(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Claim and send the notices due, each settled as soon as it is sent; the number claimed."""
    async with sessions() as s:
        claimed = (await s.execute(text(CLAIM_SQL), {"lease": LEASE_S, "n": BATCH})).mappings().all()
        await s.commit()
    for n in claimed:
        email = unseal(n["email_enc"], reg_context(n["registration_id"], "email"))
        status, retry_in = "sent", None
        if email is None:
            status = "undeliverable"
        else:
            try:
                await get_mailer().send(
                    email, n["subject"], n["body"], message_id=message_id("notice", n["id"])
                )
            except Exception as exc:
                log.warning("owner notice %s not sent: %s", n["id"], type(exc).__name__)
                status = "undeliverable" if n["attempts"] >= MAX_ATTEMPTS else "pending"
                retry_in = min(30 * 2 ** n["attempts"], 3600)
        async with sessions() as s:
            await s.execute(
                text(
                    "UPDATE registry.owner_notices SET status = :st,"
                    " sent_at = CASE WHEN :st = 'sent' THEN now() END,"
                    " next_attempt_at = now() + make_interval(secs => coalesce(CAST(:retry AS float8), 0))"
                    " WHERE id = :id"
                ),
                {"id": n["id"], "st": status, "retry": retry_in},
            )
            await s.commit()
    return len(claimed)


async def deliver_quietly(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After a commit (a background task): a failure waits for the sweep."""
    try:
        await deliver_due(sessions)
    except Exception as exc:
        log.warning("owner notices not delivered now: %s", type(exc).__name__)


async def send_quietly(to: str, subject: str, body: str) -> None:
    """Send after the answer (a background task): a mail failure leaves the committed change standing, and the
    owner can always have the credential re-issued."""
    try:
        await get_mailer().send(to, subject, body)
    except Exception as exc:
        log.warning("could not send mail: %s", type(exc).__name__)
