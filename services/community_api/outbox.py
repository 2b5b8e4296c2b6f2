"""The alerts' outbox: each queued delivery sent once, per channel, at the channel's pace.

An alert's recipients arrive as batches of subscription ids (alerts.py's fan-out); when a pass finds fewer due
deliveries of its channel than it could take, it turns the channel's oldest batch into one queued delivery per
recipient, deleting the batch in the same statement, so a batch becomes its deliveries exactly once.

A pass claims due deliveries of one channel with SKIP LOCKED and a lease, so several processes never take the
same one. For each: a subscription that ended (it was deleted: STOP, the link, the portal), is no longer confirmed
or no longer takes the alert's category, or an alert past its expiry, cancels the delivery, so an unsubscribe or a
change of categories takes effect even for an alert already queued.
Otherwise the message is sent, and the delivery marked sent; a failure after which nothing was sent is tried again
with exponential backoff, up to `outbox_max_attempts`; a message that cannot even be made (its contact cannot be
opened) fails at once, rather than come back each time its lease runs out.

Never twice: a delivery is marked in the same statement that checks it is still queued. A delivery whose lease ran
out without an outcome (the process died mid-send) may have been sent: an SMS is then marked failed rather than
sent again; an email is sent again with the same Message-ID (`alert.<alert>.<subscription>`: one delivery each,
and no sequence number, which would tell a recipient how many messages the service sent between two of theirs),
which mail software recognises as the same message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.community_api import sms
from services.community_api.alerts import alert_texts, one_click_unsubscribe, open_contact
from services.community_api.config import config
from services.community_api.database import db
from shared.db import pooled
from shared.mail import get_mailer, message_id

log = logging.getLogger("canvass.community.outbox")

EXPAND_SQL = """
WITH batch AS (
    DELETE FROM community.delivery_batches
    WHERE id = (SELECT id FROM community.delivery_batches WHERE channel = $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING alert_id, channel, subscription_ids
)
INSERT INTO community.deliveries (alert_id, subscription_id, channel)
SELECT alert_id, unnest(subscription_ids), channel FROM batch
"""
CLAIM_SQL = """
UPDATE community.deliveries d
SET lease_until = now() + make_interval(secs => $3::float8), attempts = d.attempts + 1
FROM (SELECT id, lease_until IS NOT NULL AS interrupted FROM community.deliveries
      WHERE status = 'queued' AND channel = $1 AND next_attempt_at <= now()
        AND (lease_until IS NULL OR lease_until < now())
      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) due
WHERE d.id = due.id
RETURNING d.id, d.alert_id, d.subscription_id, d.attempts, due.interrupted
"""
DETAILS_SQL = """
SELECT d.id, a.id AS alert_id, a.agency, a.title, a.message, a.expires_at, s.id AS subscription_id, s.contact,
       s.language, s.status AS subscription_status, a.category = ANY (s.categories) AS wanted
FROM community.deliveries d
JOIN community.alerts a ON a.id = d.alert_id
LEFT JOIN community.subscriptions s ON s.id = d.subscription_id
WHERE d.id = ANY($1::bigint[])
"""
FINISH_SQL = """
UPDATE community.deliveries SET status = $2, lease_until = NULL,
    sent_at = CASE WHEN $2 = 'sent' THEN now() END
WHERE id = $1 AND status = 'queued'
"""
RETRY_SQL = """
UPDATE community.deliveries SET lease_until = NULL, next_attempt_at = now() + make_interval(secs => $2::float8)
WHERE id = $1 AND status = 'queued'
"""


class Pace:
    """At most `per_s` sends a second on one channel."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s if per_s > 0 else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next > now:
            await asyncio.sleep(self.next - now)
        self.next = max(now, self.next) + self.interval


_paces: dict[str, Pace] = {}


def pace(channel: str) -> Pace:
    if channel not in _paces:
        _paces[channel] = Pace(config().email_per_s if channel == "email" else config().sms_per_s)
    return _paces[channel]


async def _send(channel: str, row: Any) -> sms.SendOutcome:
    contact = open_contact(row["contact"], row["subscription_id"])
    if contact is None:
        # Sealed under a key no longer in the ring: it would fail the same way every time its lease ran out.
        log.error(
            "alert delivery to subscription %s failed: its contact cannot be opened", row["subscription_id"]
        )
        return sms.SendOutcome.FINAL
    subject, body, short = alert_texts(
        {"id": row["alert_id"], "agency": row["agency"], "title": row["title"], "message": row["message"],
         "expires_at": row["expires_at"]},
        row["subscription_id"],
        row["language"],
    )  # fmt: skip
    await pace(channel).wait()
    if channel == "sms":
        return await sms.send(contact, short)
    try:
        await get_mailer().send(
            contact,
            subject,
            body,
            message_id=message_id("alert", f"{row['alert_id']}.{row['subscription_id']}"),
            headers=one_click_unsubscribe(row["subscription_id"]),
        )
    except Exception as exc:  # the relay refused or was unreachable: nothing was accepted, so try again
        # Only the kind of failure: a relay's refusal quotes the address, which is not for the logs.
        log.warning("alert mail not sent; will retry: %s", type(exc).__name__)
        return sms.SendOutcome.RETRY
    return sms.SendOutcome.SENT


async def _finish(pool: asyncpg.Pool, delivery_id: int, status: str) -> None:
    await pool.execute(FINISH_SQL, delivery_id, status)


async def _deliver(pool: asyncpg.Pool, channel: str, claim: Any, row: Any, now: datetime) -> None:
    c = config()
    if row is None:  # no such alert (none is ever deleted): nothing to send
        await _finish(pool, claim["id"], "cancelled")
    elif row["subscription_status"] != "confirmed" or not row["wanted"] or row["expires_at"] <= now:
        await _finish(pool, claim["id"], "cancelled")
    elif claim["interrupted"] and channel == "sms":
        await _finish(pool, claim["id"], "failed")
    else:
        try:
            outcome = await _send(channel, row)
        except Exception as exc:
            # Not an answer of the relay or the provider (those are outcomes) but a message that could not be
            # made: a contact sealed under a key no longer in the ring, say. It would fail the same way every
            # time its lease ran out — for ever, for an email — so it fails now, once.
            log.error("alert delivery %s could not be made: %s", claim["id"], type(exc).__name__)
            outcome = sms.SendOutcome.FINAL
        if outcome is sms.SendOutcome.SENT:
            await _finish(pool, claim["id"], "sent")
        elif outcome is sms.SendOutcome.RETRY and claim["attempts"] < c.outbox_max_attempts:
            await pool.execute(RETRY_SQL, claim["id"], c.outbox_backoff_s * 2 ** (claim["attempts"] - 1))
        else:
            await _finish(pool, claim["id"], "failed")


async def deliver_once(channel: str) -> int:
    """One pass over the due deliveries of `channel`: how many were claimed. Up to `outbox_concurrency` are sent
    at once (each its own delivery: one connection to the relay or provider each), within the channel's pace."""
    c = config()
    pool = await db.pool()
    async with pooled(pool) as conn:
        claimed = await conn.fetch(CLAIM_SQL, channel, c.outbox_batch, c.outbox_lease_s)
        while len(claimed) < c.outbox_batch and (await conn.execute(EXPAND_SQL, channel)) != "INSERT 0 0":
            claimed += await conn.fetch(CLAIM_SQL, channel, c.outbox_batch - len(claimed), c.outbox_lease_s)
        if not claimed:
            return 0
        details = {r["id"]: r for r in await conn.fetch(DETAILS_SQL, [r["id"] for r in claimed])}
    now = datetime.now(UTC)
    slots = asyncio.Semaphore(c.outbox_concurrency)

    async def one(claim: Any) -> None:
        async with slots:
            await _deliver(pool, channel, claim, details.get(claim["id"]), now)

    await asyncio.gather(*(one(claim) for claim in claimed))
    return len(claimed)


async def drain(channel: str) -> None:
    """Passes until a pass finds less than a full batch."""
    while await deliver_once(channel) >= config().outbox_batch:
        pass
