"""The requests worker (`python -m services.requests_api.worker`): delivers the outbox and runs the periodic jobs.

Delivery: due messages are claimed with `FOR UPDATE SKIP LOCKED` (so several workers never take the same one)
and leased (their next attempt pushed past the lease), then delivered outside any transaction: owners' mail
through registry_api, the agency's mail through the mailer, its webhook by a signed POST; each is settled as soon
as it is made. Each message id travels with it (`notification_id`, `Idempotency-Key`, `X-Canvass-Delivery`, the
mail's Message-ID), so a repeat after a crash is harmless and recognisable. A
failure is retried with exponential backoff up to a limit; a message that can never arrive (the owner deleted the
registration, the webhook was removed) is marked undeliverable, never retried forever.

Jobs, every CANVASS_WORKER_JOBS_S: requests past their due date expire (with their open targets); owners are
reminded before the due date and before their footage is overwritten (once each); evidence past the agency's
retention is deleted unless its request is under legal hold; what owners wrote, and which of their cameras each
request asked about, is erased once they deleted their registration (registry_api's feed of deletions, read from
where the last run stopped); and, every
CANVASS_EVIDENCE_JANITOR_S, the evidence store's janitor removes abandoned parts and objects no item uses.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from typing import Any, cast

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import CursorResult, Result, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.requests_api import outbox, registry_client, service
from services.requests_api.config import config
from services.requests_api.evidence import EvidenceStore, append_custody, delete_if_unreferenced, store
from services.requests_api.states import REQUEST_OPEN, SYSTEM_ACTOR, TARGET_OPEN, sql_list
from services.requests_api.upstream import client, close_client
from services.requests_api.webhook_urls import WebhookRefused, pin_webhook, post_pinned
from services.requests_api.webhooks import secret_context, sign
from shared import idempotency
from shared.crypto import keyring
from shared.db import make_engine, session_factory
from shared.keystore import KeyStoreUnavailable, keystore
from shared.logging import configure_logging
from shared.mail import get_mailer, message_id
from shared.settings import get_settings

log = logging.getLogger("canvass.requests.worker")
BATCH = 20

CLAIM_SQL = """
UPDATE requests.outbox o SET attempts = o.attempts + 1,
    next_attempt_at = now() + make_interval(secs => :lease)
WHERE o.id IN (
    SELECT id FROM requests.outbox WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.channel, o.kind, o.request_id, o.target_id, o.registration_id, o.agency, o.payload,
    o.attempts, o.created_at
"""


def backoff_s(attempts: int) -> float:
    cfg = config()
    delay = min(cfg.outbox_backoff_s * 2 ** max(attempts - 1, 0), cfg.outbox_backoff_max_s)
    return delay * random.uniform(0.9, 1.1)


def _payload(msg: RowMapping) -> dict[str, Any]:
    value = msg["payload"]
    return value if isinstance(value, dict) else orjson.loads(value)


async def deliver_due(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Claim and deliver one batch; the number claimed. Each message is settled as soon as it is delivered, in its
    own transaction, never held back by a slower one of the batch: a crash re-sends only what was in flight."""
    cfg = config()
    async with sessions() as s:
        claimed = (
            (await s.execute(text(CLAIM_SQL), {"lease": cfg.outbox_lease_s, "n": BATCH})).mappings().all()
        )
        await s.commit()
    if not claimed:
        return 0
    await asyncio.gather(*(_deliver_and_settle(sessions, m) for m in claimed))
    return len(claimed)


async def _deliver_and_settle(sessions: async_sessionmaker[AsyncSession], msg: RowMapping) -> None:
    try:
        outcome = await _deliver(sessions, msg)
    except Exception as exc:
        log.warning("delivery of %s failed: %s", msg["id"], type(exc).__name__)
        outcome = ("retry", type(exc).__name__)
    try:
        async with sessions() as s:
            await _settle(s, msg, *outcome)
            await s.commit()
    except Exception as exc:  # the lease runs out and the message is tried again (under the same id)
        log.warning("settling %s failed: %s", msg["id"], type(exc).__name__)


async def _settle(s: AsyncSession, msg: RowMapping, status: str, error: str | None) -> None:
    if status == "retry" and msg["attempts"] >= config().outbox_max_attempts:
        status = "failed"
    if status == "retry":
        await s.execute(
            text(
                "UPDATE requests.outbox SET next_attempt_at = now() + make_interval(secs => :d), last_error = :e"
                " WHERE id = :id AND status = 'pending'"
            ),
            {"id": msg["id"], "d": backoff_s(msg["attempts"]), "e": (error or "")[:500]},
        )
        return
    # A message that can never reach its owner (the registration deleted or withdrawn) keeps nothing of what it
    # said: it named their cameras.
    await s.execute(
        text(
            "UPDATE requests.outbox SET status = :st, last_error = :e,"
            " delivered_at = CASE WHEN :st = 'delivered' THEN now() END,"
            " payload = CASE WHEN :st = 'undeliverable' AND channel = 'owner_email' THEN '{}' ELSE payload END"
            " WHERE id = :id AND status = 'pending'"
        ),
        {"id": msg["id"], "st": status, "e": (error or None) and error[:500]},
    )
    if status in ("failed", "undeliverable"):
        log.warning("message %s (%s, %s) %s: %s", msg["id"], msg["channel"], msg["kind"], status, error)


async def _deliver(sessions: async_sessionmaker[AsyncSession], msg: RowMapping) -> tuple[str, str | None]:
    payload = _payload(msg)
    if msg["channel"] == "owner_email":
        async with sessions() as s:
            if not await _still_wanted(s, msg):
                return "cancelled", "no longer relevant"
        return await registry_client.notify_owner(
            msg["registration_id"],
            msg["id"],
            msg["kind"],
            payload["subject"],
            payload["body"],
            agency=msg["agency"],
        )
    if msg["channel"] == "agency_email":
        async with sessions() as s:
            sealed = (
                await s.execute(
                    text("SELECT creator_email_enc FROM requests.requests WHERE id = :id"),
                    {"id": msg["request_id"]},
                )
            ).scalar()
        to = keyring().open(sealed, f"request:{msg['request_id']}:creator_email") if sealed else None
        if not to:
            return "undeliverable", "no address"
        await get_mailer().send(
            to, payload["subject"], payload["body"], message_id=message_id("outbox", msg["id"])
        )
        return "delivered", None
    return await _webhook(sessions, msg, payload)


async def _still_wanted(s: AsyncSession, msg: RowMapping) -> bool:
    """A request notice or reminder for a target that is no longer open is not sent; nor a cancellation to an
    owner who never received the request."""
    row = (
        await s.execute(
            text(
                "SELECT t.state, r.state FROM requests.targets t JOIN requests.requests r ON r.id = t.request_id"
                " WHERE t.id = :tid"
            ),
            {"tid": msg["target_id"]},
        )
    ).first()
    if row is None:
        return False
    if msg["kind"] == "request_cancelled":
        sent = (
            await s.execute(
                text(
                    "SELECT 1 FROM requests.outbox WHERE target_id = :tid AND kind = 'request'"
                    " AND status = 'delivered'"
                ),
                {"tid": msg["target_id"]},
            )
        ).first()
        return sent is not None
    return row[1] == "sent" and row[0] in TARGET_OPEN


async def _webhook(
    sessions: async_sessionmaker[AsyncSession], msg: RowMapping, payload: dict[str, Any]
) -> tuple[str, str | None]:
    async with sessions() as s:
        hook = (
            (
                await s.execute(
                    text("SELECT url, secret_enc, active FROM requests.agency_webhooks WHERE agency = :a"),
                    {"a": msg["agency"]},
                )
            )
            .mappings()
            .first()
        )
    if hook is None or not hook["active"]:
        return "undeliverable", "the agency has no active webhook"
    secret = keyring().open(hook["secret_enc"], secret_context(msg["agency"]))
    assert secret is not None
    body = orjson.dumps(
        {
            "id": str(msg["id"]),
            "event": msg["kind"],
            "created_at": msg["created_at"],
            "data": payload,
        },
        option=orjson.OPT_UTC_Z,
    )
    # The destination is checked where it is used: the name resolved now, every address it gives checked, and
    # the connection made to the address checked (see webhook_urls), never to an inside one.
    try:
        target = await pin_webhook(hook["url"], get_settings().env)
    except WebhookRefused as exc:
        return "undeliverable", f"webhook destination refused: {exc}"
    except OSError as exc:  # the name does not resolve (now): retried like any other failure to connect
        return "retry", f"resolving the webhook's host: {type(exc).__name__}"
    ts = int(time.time())
    try:
        r = await post_pinned(
            client(),
            target,
            content=body,
            headers={
                "Host": target.host_header,
                "Content-Type": "application/json",
                "X-Canvass-Event": msg["kind"],
                "X-Canvass-Delivery": str(msg["id"]),
                "Idempotency-Key": str(msg["id"]),
                "X-Canvass-Signature": sign(secret, ts, body),
                "User-Agent": "canvass-webhooks/1",
            },
            timeout=config().delivery_timeout_s,
            follow_redirects=False,  # a redirect could lead inside; a 3xx is a failed delivery
        )
    except httpx.HTTPError as exc:
        return "retry", type(exc).__name__
    if 200 <= r.status_code < 300:
        return "delivered", None
    if r.status_code == 410:
        return "undeliverable", "410 Gone"
    return "retry", f"HTTP {r.status_code}"


# --- jobs ------------------------------------------------------------------------------------------------


async def expire_due(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Requests past their due date expire, one transaction each (their open targets with them)."""
    done = 0
    while True:
        async with sessions() as s:
            rid = (
                await s.execute(
                    text(
                        f"SELECT id FROM requests.requests WHERE state IN {sql_list(REQUEST_OPEN)}"  # noqa: S608 - composed from constants
                        " AND due_at < now() ORDER BY due_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED"
                    )
                )
            ).scalar()
            if rid is None:
                return done
            row = await service.request_row(s, rid, None)
            await service.expire(s, row, SYSTEM_ACTOR)
            await service.audit(
                s,
                "request.expire",
                SYSTEM_ACTOR,
                agency=row["agency"],
                subject_type="request",
                subject_id=rid,
                case_number=row["case_number"],
                details={"from": row["state"]},
            )
            await s.commit()
            done += 1


# Reminders are due by the clock alone: every owner the request reached enters the window at the same moment
# whatever they answered, and each gets a reminder row; the delivery then sends only those whose owner has not
# finished answering (`_still_wanted`). So what is recorded per request (how many entered the window) is the same
# whether an owner declined or did not answer.
REMINDER_SQL = """
SELECT t.id FROM requests.targets t JOIN requests.requests r ON r.id = t.request_id
WHERE r.state = 'sent' AND t.notified_at IS NOT NULL
  AND {at} > now() AND {at} - make_interval(secs => :before) <= now()
  AND t.notified_at < {at} - make_interval(secs => :before)
  AND NOT EXISTS (SELECT 1 FROM requests.outbox o WHERE o.dedupe_key = :prefix || t.id::text)
ORDER BY t.request_id, t.id
LIMIT 500
"""


async def remind(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Owners who have not finished answering are reminded once before the due date and once before their
    footage is overwritten — when the original notice went out before that reminder window opened. The audit
    trail records each request's batch as a count of the owners whose window opened, never who (see
    REMINDER_SQL)."""
    cfg = config()
    queued = 0
    for kind, at, hours in (
        ("reminder_due", "r.due_at", cfg.reminder_before_due_h),
        ("reminder_footage", "t.footage_until", cfg.reminder_before_overwrite_h),
    ):
        prefix = f"{kind}:"
        async with sessions() as s:
            ids = (
                (
                    await s.execute(
                        text(REMINDER_SQL.format(at=at)), {"before": hours * 3600, "prefix": prefix}
                    )
                )
                .scalars()
                .all()
            )
            batches: dict[Any, int] = {}
            for tid in ids:
                target = (
                    (
                        await s.execute(
                            text(f"SELECT {service.TARGET_COLUMNS} FROM requests.targets t WHERE t.id = :id"),  # noqa: S608 - composed from constants; values are bound
                            {"id": tid},
                        )
                    )
                    .mappings()
                    .one()
                )
                req = await service.request_row(s, target["request_id"], None)
                await outbox.enqueue_owner(s, req, target, kind, dedupe_key=f"{prefix}{tid}")
                batches[req["id"]] = batches.get(req["id"], 0) + 1
                queued += 1
            for rid, owners in batches.items():
                req = await service.request_row(s, rid, None)
                await service.audit(
                    s,
                    "request.remind",
                    SYSTEM_ACTOR,
                    agency=req["agency"],
                    subject_type="request",
                    subject_id=rid,
                    case_number=req["case_number"],
                    details={"kind": kind, "owners_in_window": owners},
                )
            await s.commit()
    return queued


RETENTION_SQL = """
SELECT e.id, e.storage_key, e.sha256, r.agency, r.case_number, r.evidence_retention_days
FROM requests.evidence e JOIN requests.requests r ON r.id = e.request_id
WHERE e.deleted_at IS NULL AND NOT r.legal_hold
  AND e.uploaded_at + make_interval(days => r.evidence_retention_days) < now()
ORDER BY e.uploaded_at LIMIT 1
FOR UPDATE OF e SKIP LOCKED FOR SHARE OF r SKIP LOCKED
"""


async def apply_retention(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Evidence older than its request's retention is deleted, unless the request is under legal hold. The row
    stays (with its custody chain); the file goes once no live item shares its content.

    The request's row is held (shared) while its item is marked deleted, and setting a legal hold updates that
    row: a hold being set meanwhile makes this run pass the item (its row is skipped while held), and a hold set
    after waits for this transaction. So an item is deleted only if its request was not held when it was. The
    file is then deleted under its content lock, only if no live row uses it (see `evidence`)."""
    removed = 0
    while True:
        async with sessions() as s:
            row = (await s.execute(text(RETENTION_SQL))).mappings().first()
            if row is None:
                return removed
            reason = f"retention: {row['evidence_retention_days']} days"
            await s.execute(
                text("UPDATE requests.evidence SET deleted_at = now(), deleted_reason = :r WHERE id = :id"),
                {"id": row["id"], "r": reason},
            )
            actor = type(SYSTEM_ACTOR)(SYSTEM_ACTOR.sub, "system", row["agency"])
            await append_custody(s, row["id"], actor, "delete", "ok", row["sha256"], {"reason": reason})
            await service.audit(
                s,
                "evidence.delete",
                actor,
                agency=row["agency"],
                subject_type="evidence",
                subject_id=row["id"],
                case_number=row["case_number"],
                details={"reason": reason},
            )
            await s.commit()
        async with sessions() as s:
            await delete_if_unreferenced(s, row["storage_key"])
        removed += 1


ORPHANS_SQL = """
SELECT k FROM unnest(CAST(:keys AS text[])) AS k
WHERE NOT EXISTS (SELECT 1 FROM requests.evidence e WHERE e.storage_key = k AND e.deleted_at IS NULL)
"""


async def sweep_store(
    sessions: async_sessionmaker[AsyncSession],
    evidence_store: EvidenceStore | None = None,
    *,
    part_max_age_s: float | None = None,
    orphan_grace_s: float | None = None,
) -> int:
    """The store's janitor: staged parts no upload has written to for CANVASS_EVIDENCE_PART_MAX_AGE_S (their
    upload died mid-stream) are removed, and published objects older than CANVASS_EVIDENCE_ORPHAN_GRACE_S that
    no live row uses (their upload failed between publishing and committing, e.g. the database went away; or a
    deletion was interrupted) are deleted under their content lock, as retention does. The number removed."""
    cfg = config()
    st = evidence_store or store()
    removed = await st.remove_stale_parts(
        cfg.evidence_part_max_age_s if part_max_age_s is None else part_max_age_s
    )
    keys = await st.keys_older_than(cfg.evidence_orphan_grace_s if orphan_grace_s is None else orphan_grace_s)
    for i in range(0, len(keys), 1000):
        async with sessions() as s:
            candidates = (await s.execute(text(ORPHANS_SQL), {"keys": keys[i : i + 1000]})).scalars().all()
            await s.rollback()
        for key in candidates:
            async with sessions() as s:
                if await delete_if_unreferenced(s, key, st):
                    log.warning("evidence object %s was used by no evidence item: deleted", key)
                    removed += 1
    return removed


DELETIONS_FEED = "registry.deletions"
FEED_PAGE = 500

# Their owner's targets, found by registration id; the history and evidence rows through each target's request,
# whose index leads to them.
# Every target of these owners, and those of them this transaction could lock (the others an answer holds).
LOCK_TARGETS_SQL = """
WITH locked AS (SELECT id FROM requests.targets WHERE registration_id = ANY(:ids) FOR UPDATE SKIP LOCKED)
SELECT (SELECT count(*) FROM requests.targets WHERE registration_id = ANY(:ids)) AS total,
       (SELECT count(*) FROM locked) AS locked
"""
ERASE_NOTES_SQL = """
UPDATE requests.events e SET note = NULL, note_enc = NULL FROM requests.targets t
WHERE t.registration_id = ANY(:ids) AND e.request_id = t.request_id AND e.target_id = t.id
  AND e.actor_role = 'owner' AND (e.note IS NOT NULL OR e.note_enc IS NOT NULL)
"""
# What the owner said of their footage: its description and names, and which of their cameras it came from (an id
# that would link the owner across requests). The footage, its hash and its chain of custody stay as they are.
ERASE_EVIDENCE_TEXT_SQL = """
UPDATE requests.evidence v
SET description_enc = NULL, filename_enc = NULL, original_filename_enc = NULL, camera_id = NULL
FROM requests.targets t
WHERE t.registration_id = ANY(:ids) AND v.request_id = t.request_id AND v.target_id = t.id
  AND (v.description_enc IS NOT NULL OR v.filename_enc IS NOT NULL OR v.original_filename_enc IS NOT NULL
       OR v.camera_id IS NOT NULL)
"""
# Which cameras the owner was asked about, how far each stood from the incident (with the request's incident point,
# a ring the camera stood on), when each recorder overwrites (a camera's retention, linking requests) and along a
# route when the path passed them: all go. The target keeps its state and times, and how many cameras it asked
# about, so that every count the agency and the transparency report read stays what it was: whether the owner had
# declined, ignored or answered stays as silent as before. The footage an owner uploaded stays the agency's
# evidence, its record (the camera it came from among it) and chain of custody unchanged.
ERASE_TARGET_CAMERAS_SQL = """
UPDATE requests.targets SET cameras_erased = cameras_erased + jsonb_array_length(cameras), cameras = '[]',
       distance_m = NULL, footage_until = NULL, window_start = NULL, window_end = NULL
WHERE registration_id = ANY(:ids)
  AND (cameras <> '[]' OR distance_m IS NOT NULL OR footage_until IS NOT NULL OR window_start IS NOT NULL)
"""
# The messages written to the owner name their cameras: those settled are emptied here; one still pending is tried
# once more, registry_api answers that the registration is gone, and it is emptied as it is settled (`_settle`).
ERASE_OWNER_MESSAGES_SQL = """
UPDATE requests.outbox SET payload = '{}'
WHERE registration_id = ANY(:ids) AND channel = 'owner_email' AND status <> 'pending' AND payload <> '{}'
"""
# A create's answer kept for its Idempotency-Key (replayed to a retry for the replay window) lists every target as it
# was drafted: each is opened, its deleted owners' targets erased as the request now shows them, and sealed again.
KEPT_ANSWERS_SQL = """
SELECT k.key, k.principal, k.body FROM requests.idempotency_keys k
WHERE k.request_id IN (SELECT t.request_id FROM requests.targets t WHERE t.registration_id = ANY(:ids))
FOR UPDATE OF k
"""
ERASED_TARGET: dict[str, Any] = {"cameras": [], "distance_m": None, "footage_until": None, "window": None}


async def _erase_kept_answers(s: AsyncSession, ids: list[Any]) -> int:
    """Rewrite the kept answers naming these owners' targets (see KEPT_ANSWERS_SQL); how many were rewritten."""
    gone = {str(i) for i in ids}
    rows = (await s.execute(text(KEPT_ANSWERS_SQL), {"ids": ids})).mappings().all()
    for row in rows:
        where = idempotency.context(row["principal"], row["key"])
        opened = keyring().open(bytes(row["body"]), where)
        if opened is None:
            continue
        answer = orjson.loads(opened)
        for target in answer.get("targets") or []:
            if target.get("registration_id") in gone:
                target.update(ERASED_TARGET)
        await s.execute(
            text(
                "UPDATE requests.idempotency_keys SET body = :body WHERE key = :key AND principal = :principal"
            ),
            {
                "body": keyring().seal(orjson.dumps(answer).decode(), where),
                "key": row["key"],
                "principal": row["principal"],
            },
        )
    return len(rows)


ADVANCE_FEED_SQL = """
INSERT INTO requests.feeds AS f (name, position) VALUES (:feed, :to)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now() WHERE f.position = :from
RETURNING 1
"""


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


async def _feed_position(sessions: async_sessionmaker[AsyncSession], feed: str) -> int:
    async with sessions() as s:
        position = (
            await s.execute(text("SELECT position FROM requests.feeds WHERE name = :feed"), {"feed": feed})
        ).scalar()
        await s.rollback()
    return int(position or 0)


async def erase_deleted_owners(
    sessions: async_sessionmaker[AsyncSession], *, feed: str = DELETIONS_FEED, page: int = FEED_PAGE
) -> int:
    """What owners wrote is erased once they deleted their registration: the notes they gave with their answers
    (in the request's history, `requests.events`) and the description and file name of the footage they
    uploaded (the footage itself is the agency's evidence, kept under its retention); with them, which of their
    cameras each request asked about and where they stood (ERASE_TARGET_CAMERAS_SQL), in the answers kept for a
    create's Idempotency-Key too, and the messages written to them; and their data keys are destroyed (see owner_texts), so no copy of those texts elsewhere opens either. The deletions come from
    registry_api's feed, read from the position kept in `requests.feeds`, page after page until it is
    exhausted; each page's erasure and the position after it commit together, so a crash repeats a page (the
    erasure is harmless twice) and never skips one. When registry_api cannot give a page, the run stops where
    it is and the next run asks again. The number of deletions read.

    An owner's free text is kept only in a transaction that holds their target's row and has just asked
    registry_api whether the credential still opens the registration (owner_requests). Here the targets are
    locked, skipping those a transaction holds: then either such a transaction commits first, and its text is
    erased here, or it waits for this one and then finds the registration gone. A page on which a target was
    held is not passed: the next run reads it again."""
    done = 0
    position = await _feed_position(sessions, feed)
    while True:
        try:
            got = await registry_client.deleted_registrations(position, page)
        except registry_client.FeedUnavailable as exc:
            log.warning("%s: no page after %d (%s); asking again on the next run", feed, position, exc)
            return done
        if got.next_after == position:
            return done
        async with sessions() as s:
            ids = got.registration_ids
            if ids:
                held = (await s.execute(text(LOCK_TARGETS_SQL), {"ids": ids})).mappings().one()
                if held["locked"] < held["total"]:
                    await s.rollback()
                    log.info(
                        "%s: a deleted owner's target is busy; page after %d read again later", feed, position
                    )
                    return done
                notes = _rowcount(await s.execute(text(ERASE_NOTES_SQL), {"ids": ids}))
                texts = _rowcount(await s.execute(text(ERASE_EVIDENCE_TEXT_SQL), {"ids": ids}))
                targets = _rowcount(await s.execute(text(ERASE_TARGET_CAMERAS_SQL), {"ids": ids}))
                messages = _rowcount(await s.execute(text(ERASE_OWNER_MESSAGES_SQL), {"ids": ids}))
                await _erase_kept_answers(s, ids)
                if notes or texts or targets or messages:
                    log.info(
                        "%s: erased %d owner notes, %d evidence records, the cameras of %d targets and %d"
                        " messages to owners",
                        feed,
                        notes,
                        texts,
                        targets,
                        messages,
                    )
                # registry_api destroyed their data keys when it deleted them; a key created since (an answer
                # racing the deletion) goes now, before the feed moves on. Out of reach: the page waits.
                try:
                    await keystore("requests_api").destroy(ids)
                except KeyStoreUnavailable:
                    await s.rollback()
                    log.warning(
                        "%s: the key store is unavailable; page after %d read again later", feed, position
                    )
                    return done
            moved = (
                await s.execute(
                    text(ADVANCE_FEED_SQL), {"feed": feed, "from": position, "to": got.next_after}
                )
            ).first()
            if moved is None:  # another worker moved the feed meanwhile: go on from where it is
                await s.rollback()
                position = await _feed_position(sessions, feed)
                continue
            await s.commit()
        done += len(got.registration_ids)
        position = got.next_after
        if len(got.registration_ids) < page:
            return done


_last_sweep = -float("inf")


async def _sweep_when_due(sessions: async_sessionmaker[AsyncSession]) -> int:
    """The janitor walks the whole store: every CANVASS_EVIDENCE_JANITOR_S, not on every run of the jobs."""
    global _last_sweep
    if time.monotonic() - _last_sweep < config().evidence_janitor_s:
        return 0
    _last_sweep = time.monotonic()
    return await sweep_store(sessions)


async def run_jobs(sessions: async_sessionmaker[AsyncSession]) -> None:
    for job in (expire_due, remind, apply_retention, erase_deleted_owners, _sweep_when_due):
        try:
            n = await job(sessions)
            if n:
                log.info("%s: %d", job.__name__, n)
        except Exception:
            log.exception("job %s failed", job.__name__)


async def run(stop: asyncio.Event) -> None:
    settings = get_settings()
    cfg = config()
    engine = make_engine(settings.database_url_for("requests_api"), settings, "requests_worker")
    sessions = session_factory(engine)
    last_jobs = 0.0
    log.info("requests worker started (poll %.1fs, jobs every %.1fs)", cfg.worker_poll_s, cfg.worker_jobs_s)
    try:
        while not stop.is_set():
            claimed = 0
            try:
                claimed = await deliver_due(sessions)
                if time.monotonic() - last_jobs >= cfg.worker_jobs_s:
                    await run_jobs(sessions)
                    last_jobs = time.monotonic()
            except Exception:
                log.exception("worker iteration failed")
            if claimed < BATCH:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=cfg.worker_poll_s)
                except TimeoutError:
                    pass
    finally:
        await close_client()
        await engine.dispose()


def main() -> None:
    settings = get_settings()
    config()  # a malformed setting stops the worker here, naming the variable
    configure_logging("requests_worker", settings.log_level)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
