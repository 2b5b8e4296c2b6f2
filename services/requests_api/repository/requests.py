"""Footage requests: the agency's list, the legal hold, the requests that reached an owner, and the answers kept
for a create's `Idempotency-Key`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from shared import idempotency
from shared.concurrency import NEXT_VERSION

IDEMPOTENCY_KEYS = idempotency.Keys("requests.idempotency_keys", "request_id")
LIST_COLUMNS = "r.id, r.case_number, r.category, r.state, r.due_at, r.created_by, r.created_at, r.sent_at"


async def page(
    session: AsyncSession,
    agency: str | None,
    state: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    n: int,
) -> list[RowMapping]:
    """Up to `n` of the agency's requests, newest first, in `state` if given, after the keyset `after`
    ((created_at, id) of the last one of the previous page)."""
    params: dict[str, Any] = {"agency": agency, "n": n}
    where = ["r.agency = :agency"]
    if state is not None:
        where.append("r.state = :state")
        params["state"] = state
    if after is not None:
        params["at"], params["id"] = after
        where.append("(r.created_at, r.id) < (:at, :id)")
    sql = (
        f"SELECT {LIST_COLUMNS} FROM requests.requests r WHERE {' AND '.join(where)}"  # noqa: S608 - composed from constants; values are bound
        " ORDER BY r.created_at DESC, r.id DESC LIMIT :n"
    )
    return list((await session.execute(text(sql), params)).mappings().all())


async def set_legal_hold(
    session: AsyncSession,
    request_id: uuid.UUID,
    hold: bool,
    *,
    actor: str,
    role: str,
    state: str,
    note: str | None,
) -> None:
    """Set or lift the hold (a new version of the request) and record it in the request's history."""
    await session.execute(
        text(f"UPDATE requests.requests SET legal_hold = :hold, {NEXT_VERSION} WHERE id = :id"),  # noqa: S608 - composed from constants; values are bound
        {"hold": hold, "id": request_id},
    )
    await session.execute(
        text(
            "INSERT INTO requests.events (request_id, actor, actor_role, action, from_state, to_state, note)"
            " VALUES (:rid, :actor, :role, :action, :state, :state, :note)"
        ),
        {
            "rid": request_id,
            "actor": actor,
            "role": role,
            "action": "legal_hold" if hold else "legal_hold_lifted",
            "state": state,
            "note": note,
        },
    )


async def state_of(session: AsyncSession, request_id: uuid.UUID) -> str:
    return (  # type: ignore[no-any-return]
        await session.execute(text("SELECT state FROM requests.requests WHERE id = :id"), {"id": request_id})
    ).scalar_one()


async def reaching_owner(session: AsyncSession, registration_id: uuid.UUID, n: int) -> list[uuid.UUID]:
    """The requests that reached the registration (its owner was notified), open ones first, the most urgent
    first."""
    rows = await session.execute(
        text(
            "SELECT t.request_id FROM requests.targets t JOIN requests.requests r ON r.id = t.request_id"
            " WHERE t.registration_id = :reg AND t.notified_at IS NOT NULL"
            " ORDER BY (r.state = 'sent') DESC, t.footage_until NULLS LAST, r.due_at, r.id LIMIT :n"
        ),
        {"reg": registration_id, "n": n},
    )
    return list(rows.scalars().all())


async def stored_answer(session: AsyncSession, key: str, scope: str) -> RowMapping | None:
    """The answer kept for the caller's `Idempotency-Key` within the replay window, if any."""
    params = {"key": key, "principal": scope, "window_s": float(idempotency.replay_window_s())}
    return (await session.execute(text(IDEMPOTENCY_KEYS.lookup_sql), params)).mappings().first()


async def keep_answer(
    session: AsyncSession,
    key: str,
    scope: str,
    digest: bytes,
    sealed: bytes,
    headers: Any,
    request_id: uuid.UUID,
) -> None:
    """Keep a create's answer for its `Idempotency-Key` with the request (a replay answers 200); raises
    IntegrityError when a concurrent create by the same caller with the same key kept one first."""
    params = {
        "key": key,
        "principal": scope,
        "digest": digest,
        "status": 200,
        "body": sealed,
        "headers": headers,
        "owner": request_id,
        "window_s": float(idempotency.replay_window_s()),
        "sweep": IDEMPOTENCY_KEYS.sweep_due(),
    }
    await session.execute(text(f"WITH {IDEMPOTENCY_KEYS.store_ctes.strip()} SELECT 1"), params)
