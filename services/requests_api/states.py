"""The lifecycle of a request and of each of its targets, as one table each: (state, action) → the state it
leads to and who may take it. Anything not in the table is a 409.

A transition is one conditional UPDATE (`... WHERE state = :from`): of two concurrent transitions of the same
object exactly one matches the row, the other finds the state changed and gets a 409 (an agency's transition
naming the request's ETag in If-Match checks it first, on the row it holds: service.request_for_update, so the
later of two naming the same ETag is a 412). Each writes its event (who, when, from, to, note) in the caller's
transaction, so a change and its history commit or roll back together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api.models import REQUEST_STATES
from shared.concurrency import NEXT_VERSION
from shared.errors import Problem

AGENCY = frozenset({"investigator", "supervisor"})
SUPERVISOR = frozenset({"supervisor"})
OWNER = frozenset({"owner"})
SYSTEM = frozenset({"system"})


@dataclass(frozen=True)
class Rule:
    to: str
    roles: frozenset[str]


REQUEST_TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("draft", "submit"): Rule("pending_approval", AGENCY),
    ("draft", "send"): Rule("sent", AGENCY),  # only where the agency's policy needs no approval
    ("pending_approval", "approve"): Rule("approved", SUPERVISOR),
    ("pending_approval", "reject"): Rule("rejected", SUPERVISOR),
    ("approved", "send"): Rule("sent", AGENCY | SYSTEM),
    ("draft", "cancel"): Rule("cancelled", AGENCY),
    ("pending_approval", "cancel"): Rule("cancelled", AGENCY),
    ("approved", "cancel"): Rule("cancelled", AGENCY),
    ("sent", "cancel"): Rule("cancelled", AGENCY),
    ("sent", "close"): Rule("closed", AGENCY),
    ("draft", "expire"): Rule("expired", SYSTEM),
    ("pending_approval", "expire"): Rule("expired", SYSTEM),
    ("approved", "expire"): Rule("expired", SYSTEM),
    ("sent", "expire"): Rule("expired", SYSTEM),
}

TARGET_TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("pending", "notify"): Rule("notified", SYSTEM),
    ("notified", "view"): Rule("viewed", OWNER),
    ("notified", "accept"): Rule("accepted", OWNER),
    ("viewed", "accept"): Rule("accepted", OWNER),
    ("notified", "decline"): Rule("declined", OWNER),
    ("viewed", "decline"): Rule("declined", OWNER),
    ("notified", "unavailable"): Rule("video_unavailable", OWNER),
    ("viewed", "unavailable"): Rule("video_unavailable", OWNER),
    # An owner who accepted and then finds the footage gone may say so: the agency, which saw them accept, keeps
    # seeing that target (as accepted-then-unavailable), so this is no decline (see AGENCY_VISIBLE_EVENT).
    ("accepted", "unavailable"): Rule("video_unavailable", OWNER),
    ("accepted", "upload"): Rule("uploaded", OWNER),
    ("uploaded", "complete"): Rule("completed", AGENCY | SYSTEM),
    # An owner no longer reachable when the request is approved or sent (see service._resolve_again).
    ("pending", "drop"): Rule("dropped", SYSTEM),
    ("pending", "expire"): Rule("expired", SYSTEM),
    ("notified", "expire"): Rule("expired", SYSTEM),
    ("viewed", "expire"): Rule("expired", SYSTEM),
    ("accepted", "expire"): Rule("expired", SYSTEM),
}

# States in which the request is finished, and targets whose owner has not (or no longer can) answer.
REQUEST_FINAL = frozenset({"rejected", "closed", "cancelled", "expired"})
TARGET_OPEN = frozenset({"pending", "notified", "viewed", "accepted"})
# Silent decline, said once. The states in which an owner shares; every one is reached through an accept. The agency
# sees, counts and times only owners who shared: a target now in one of these states, or, one by one, a target
# that was in one at some point (it stays visible whatever follows, unavailable or expired: the agency already
# knew of it). Who declined, did not answer or had no video before accepting leaves nothing the agency can see.
TARGET_SHARED = frozenset({"accepted", "uploaded", "completed"})
_SHARED_SQL = ", ".join(f"'{s}'" for s in sorted(TARGET_SHARED))
# The states no longer open, and those still moving (a request past its due date in one of these expires).
REQUEST_OPEN = frozenset(REQUEST_STATES) - REQUEST_FINAL


def sharing(state: str) -> str:
    """SQL: the target state `state` (a column) is one in which the owner shares."""
    return f"{state} IN ({_SHARED_SQL})"


def shared_at_some_point(target: str) -> str:
    """SQL: the owner of target `target` (an alias of requests.targets) shared at some point (an event of it
    entered a sharing state)."""
    return (
        "EXISTS (SELECT 1 FROM requests.events se"  # noqa: S608 - composed from constants
        f" WHERE se.request_id = {target}.request_id AND se.target_id = {target}.id AND {sharing('se.to_state')})"
    )


def sql_list(values: frozenset[str]) -> str:
    """SQL: the values as a parenthesised list of literals (constants of this module only)."""
    return "(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


# The events the agency may see, decided row by row and never changing once written: the request's own, and a
# target's from its accept onward (an event into or out of a sharing state). A target's earlier events (notified,
# viewed) and those of an owner who never accepted (declined, unavailable, expired) are not shown nor counted.
AGENCY_VISIBLE_EVENT = f"(e.target_id IS NULL OR {sharing('e.to_state')} OR {sharing('e.from_state')})"
# The owners' answers that share: only these keep the owner's note (a decline needs no record of its reason).
SHARING_ANSWERS = frozenset({"accept"})


@dataclass(frozen=True)
class Actor:
    sub: str
    role: str
    agency: str | None = None


SYSTEM_ACTOR = Actor("requests_api", "system")


def allowed_actions(table: dict[tuple[str, str], Rule], state: str, role: str) -> list[str]:
    return sorted(a for (s, a), rule in table.items() if s == state and role in rule.roles)


def check(table: dict[tuple[str, str], Rule], kind: str, state: str, action: str, role: str) -> Rule:
    """The rule for `action` from `state`, taken by `role`: 409 when the table has no such transition, 403 when
    the role may not take it. A 409 lists only the actions this caller could take from the state (never one
    only the system takes), so it names nothing the caller cannot do."""
    rule = table.get((state, action))
    if rule is None:
        final = not any(s == state for (s, _) in table)
        yours = allowed_actions(table, state, role)
        raise Problem(
            409,
            f"A {kind} in state '{state}' cannot take the action '{action}'"
            + (
                "; it is final."
                if final
                else f"; you may: {', '.join(yours)}."
                if yours
                else "; none of its actions is yours to take."
            ),
            kind="invalid-transition",
            title="Transition not allowed",
            state=state,
        )
    if role not in rule.roles:
        raise Problem(403, f"The action '{action}' needs one of the roles: {', '.join(sorted(rule.roles))}.")
    return rule


async def _event(
    session: AsyncSession,
    request_id: uuid.UUID,
    target_id: uuid.UUID | None,
    actor: Actor,
    action: str,
    from_state: str | None,
    to_state: str,
    note: str | None,
    note_enc: bytes | None = None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO requests.events (request_id, target_id, actor, actor_role, action, from_state, to_state,"
            " note, note_enc) VALUES (:rid, :tid, :actor, :role, :action, :from, :to, :note, :note_enc)"
        ),
        {
            "rid": request_id,
            "tid": target_id,
            "actor": actor.sub,
            "role": actor.role,
            "action": action,
            "from": from_state,
            "to": to_state,
            "note": note,
            "note_enc": note_enc,
        },
    )


async def record_creation(session: AsyncSession, request_id: uuid.UUID, actor: Actor) -> None:
    await _event(session, request_id, None, actor, "create", None, "draft", None)


_REQUEST_STAMPS = {
    "sent": ", sent_at = now()",
    "closed": ", finished_at = now()",
    "cancelled": ", finished_at = now()",
    "expired": ", finished_at = now()",
    "rejected": ", finished_at = now()",
}
_TARGET_STAMPS = {
    "notified": ", notified_at = now()",
    "accepted": ", answered_at = coalesce(answered_at, now())",
    "declined": ", answered_at = coalesce(answered_at, now())",
    "video_unavailable": ", answered_at = coalesce(answered_at, now())",
    "uploaded": ", uploaded_at = coalesce(uploaded_at, now())",
}


async def transition_request(
    session: AsyncSession,
    request_id: uuid.UUID,
    from_state: str,
    action: str,
    actor: Actor,
    note: str | None = None,
    *,
    event: bool = True,
) -> RowMapping:
    """Move the request from `from_state` (as the caller read it) by `action`; 409 if it is no longer there.
    With event=False the caller writes the event itself, last (see `write_request_event`)."""
    rule = check(REQUEST_TRANSITIONS, "request", from_state, action, actor.role)
    row = (
        (
            await session.execute(
                text(
                    f"UPDATE requests.requests SET state = :to, {NEXT_VERSION}"  # noqa: S608 - composed from constants; values are bound
                    f"{_REQUEST_STAMPS.get(rule.to, '')} WHERE id = :id AND state = :from"
                    " RETURNING id, state, version"
                ),
                {"id": request_id, "to": rule.to, "from": from_state},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _changed("request")
    if event:
        await _event(session, request_id, None, actor, action, from_state, rule.to, note)
    return row


async def write_request_event(
    session: AsyncSession,
    request_id: uuid.UUID,
    from_state: str,
    action: str,
    actor: Actor,
    note: str | None,
) -> None:
    rule = REQUEST_TRANSITIONS[(from_state, action)]
    await _event(session, request_id, None, actor, action, from_state, rule.to, note)


async def transition_target(
    session: AsyncSession,
    request_id: uuid.UUID,
    target_id: uuid.UUID,
    from_state: str,
    action: str,
    actor: Actor,
    note: str | None = None,
    note_enc: bytes | None = None,
) -> str:
    """`note` is the agency's own text; an owner's is given sealed, as `note_enc` (see owner_texts)."""
    rule = check(TARGET_TRANSITIONS, "target", from_state, action, actor.role)
    done = (
        await session.execute(
            text(
                f"UPDATE requests.targets SET state = :to, {NEXT_VERSION}"  # noqa: S608 - composed from constants; values are bound
                f"{_TARGET_STAMPS.get(rule.to, '')} WHERE id = :id AND state = :from RETURNING id"
            ),
            {"id": target_id, "to": rule.to, "from": from_state},
        )
    ).first()
    if done is None:
        raise _changed("target")
    await _event(session, request_id, target_id, actor, action, from_state, rule.to, note, note_enc)
    return rule.to


async def cascade_targets(
    session: AsyncSession,
    request_id: uuid.UUID,
    actions: dict[str, str],
    actor: Actor,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """Move every target of the request whose state has an action in `actions` (state → action), each through
    the table, with its event. Returns the targets moved (id, registration_id, from, to)."""
    rows = (
        (
            await session.execute(
                text(
                    "SELECT id, registration_id, state FROM requests.targets WHERE request_id = :rid"
                    " AND state = ANY(:states) ORDER BY footage_until NULLS LAST, distance_m, id FOR UPDATE"
                ),
                {"rid": request_id, "states": list(actions)},
            )
        )
        .mappings()
        .all()
    )
    moved = []
    for t in rows:
        to = await transition_target(
            session, request_id, t["id"], t["state"], actions[t["state"]], actor, note
        )
        moved.append({"id": t["id"], "registration_id": t["registration_id"], "from": t["state"], "to": to})
    return moved


def _changed(kind: str) -> Problem:
    return Problem(
        409,
        f"The {kind} changed while this action was being taken (another change won); read it again.",
        kind="conflict",
        title="Concurrent change",
    )
