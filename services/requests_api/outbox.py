"""The transactional outbox: notifications are rows written in the same transaction as the change they announce,
so a notification is never lost (it commits with the change) and never sent for a change that rolled back (it
rolls back with it). The worker delivers them (see worker.py).

Owners are written to through registry_api, which alone knows their email: a message names the registration id
only. The agency is told of answers by email to the request's creator (the `email` claim of their token) and/or
by its signed webhook. Only answers that share (accepted, uploaded) are announced to the agency: a decline is
silent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from shared.settings import get_settings


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _link(path: str) -> str:
    return get_settings().public_base + path


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    kind: str,
    request_id: uuid.UUID | None,
    payload: dict[str, Any],
    target_id: uuid.UUID | None = None,
    registration_id: uuid.UUID | None = None,
    agency: str | None = None,
    dedupe_key: str | None = None,
) -> None:
    await session.execute(
        text(
            "INSERT INTO requests.outbox (channel, kind, request_id, target_id, registration_id, agency, payload,"
            " dedupe_key) VALUES (:channel, :kind, :rid, :tid, :reg, :agency, CAST(:payload AS jsonb), :dedupe)"
            " ON CONFLICT (dedupe_key) DO NOTHING"
        ),
        {
            "channel": channel,
            "kind": kind,
            "rid": request_id,
            "tid": target_id,
            "reg": registration_id,
            "agency": agency,
            "payload": orjson.dumps(payload, default=str).decode(),
            "dedupe": dedupe_key,
        },
    )


def _cameras_text(cameras: list[dict[str, Any]]) -> str:
    lines = []
    for c in cameras:
        until = c.get("footage_until")
        window = c.get("window")  # along a route: the minutes asked of this camera
        lines.append(
            f"  - camera {c['camera_id']}"
            + (f", {window['start']} to {window['end']}" if window else "")
            + (f": footage of the incident is likely overwritten after {until}" if until else "")
        )
    return "\n".join(lines)


def owner_message(req: RowMapping, target: RowMapping, kind: str) -> tuple[str, str]:
    """Subject and body of a message to an owner (no personal data: the registry adds the address)."""
    agency = req["agency_name"]
    cameras = target["cameras"] if isinstance(target["cameras"], list) else orjson.loads(target["cameras"])
    answer = _link(f"/v1/owner/requests/{req['id']}")
    how = (
        f"See the request and answer it with your registration's management credential:\n  {answer}\n"
        "Accept and upload, or decline: declining is silent, the agency never learns who declined.\n"
    )
    # Along a route an owner is asked only for the minutes the path passed their cameras (the target's window).
    start, end = target.get("window_start"), target.get("window_end")
    if start is None or end is None:
        start, end = req["window_start"], req["window_end"]
    window = f"{_when(start)} to {_when(end)}"
    if kind == "request":
        subject = f"{agency} asks for camera footage ({req['category'].replace('_', ' ')})"
        body = (
            f"{agency} asks whether your registered camera(s) recorded anything useful between {window}.\n\n"
            f"Their message:\n{req['message']}\n\n"
            f"Cameras of yours this concerns:\n{_cameras_text(cameras)}\n\n"
            f"Please answer by {_when(req['due_at'])}.\n\n{how}"
        )
    elif kind == "reminder_due":
        subject = f"Reminder: {agency}'s footage request is due {_when(req['due_at'])}"
        body = (
            f"{agency} asked for footage recorded between {window}; answers are due {_when(req['due_at'])}.\n\n"
            f"{how}"
        )
    elif kind == "reminder_footage":
        subject = f"Reminder: your footage for {agency}'s request may soon be overwritten"
        body = (
            f"{agency} asked for footage recorded between {window}. Your recorder is likely to overwrite it soon:"
            f"\n{_cameras_text(cameras)}\n\nIf you can help, save or upload it before then.\n\n{how}"
        )
    elif kind == "request_cancelled":
        subject = f"{agency} no longer needs footage"
        body = (
            f"{agency} withdrew its request for footage recorded between {window}. Nothing more is needed.\n"
        )
    else:  # pragma: no cover - every kind above
        raise ValueError(kind)
    return subject, body


async def enqueue_owner(
    session: AsyncSession, req: RowMapping, target: RowMapping, kind: str, *, dedupe_key: str | None = None
) -> None:
    subject, body = owner_message(req, target, kind)
    await enqueue(
        session,
        channel="owner_email",
        kind=kind,
        request_id=req["id"],
        target_id=target["id"],
        registration_id=target["registration_id"],
        agency=req["agency"],
        payload={"subject": subject, "body": body},
        dedupe_key=dedupe_key,
    )


async def enqueue_agency(
    session: AsyncSession,
    req: RowMapping,
    event: str,
    summary: dict[str, int],
    *,
    target_id: uuid.UUID | None = None,
) -> None:
    """Tell the agency of an answer that shares (or of the request's end): email to the creator, webhook.

    A message about a target carries the target's next sequence number (1, 2, ...): retries and concurrent
    deliveries may arrive in any order, the numbers say the order the events happened in. The target's row is
    locked by the increment until this transaction ends, so two events of one target are numbered in the order
    they commit."""
    sequence = None
    if target_id is not None:
        sequence = (
            await session.execute(
                text(
                    "UPDATE requests.targets SET agency_seq = agency_seq + 1 WHERE id = :id RETURNING agency_seq"
                ),
                {"id": target_id},
            )
        ).scalar_one()
    payload: dict[str, Any] = {
        "event": event,
        "request_id": str(req["id"]),
        "case_number": req["case_number"],
        "target_id": str(target_id) if target_id else None,
        "sequence": sequence,
        "summary": summary,
    }
    what = {
        "target.accepted": "An owner accepted",
        "target.uploaded": "An owner uploaded footage for",
        "target.unavailable": "An owner who had accepted found the footage unavailable for",
        "request.expired": "The due date passed for",
    }.get(event, event)
    if req["creator_email_enc"] is not None:
        subject = f"{what} request {req['case_number']}"
        link = _link(f"/v1/requests/{req['id']}")
        body = (
            f"{what} your footage request for case {req['case_number']} ({req['category'].replace('_', ' ')}).\n\n"
            f"So far: {summary['notified']} owners reached, {summary['accepted']} accepted, "
            f"{summary['uploaded']} uploaded.\n\n{link}\n"
        )
        await enqueue(
            session,
            channel="agency_email",
            kind=event,
            request_id=req["id"],
            target_id=target_id,
            agency=req["agency"],
            payload={"subject": subject, "body": body},
        )
    hook = (
        await session.execute(
            text("SELECT 1 FROM requests.agency_webhooks WHERE agency = :a AND active"), {"a": req["agency"]}
        )
    ).first()
    if hook is not None:
        await enqueue(
            session,
            channel="agency_webhook",
            kind=event,
            request_id=req["id"],
            target_id=target_id,
            agency=req["agency"],
            payload=payload,
        )
