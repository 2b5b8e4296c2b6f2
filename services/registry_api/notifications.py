"""Owner notifications on behalf of another Canvass service (requests_api telling an owner of a footage request):
the owner's email never leaves the registry. The caller names the registration; the registry opens the sealed
address, sends the message through the configured mailer, and audits it without personal data (under the
notification's id: nothing in the trail says which registration was written to).

A notification on an agency's behalf names the agency (`agency`): an owner who paused the registration or no
longer shares it with that agency has withdrawn their consent to its contact, and is not written to (410, of type
not-shared; the caller drops the message).

Each notification carries its own id: a repeated id is answered 202 and not sent again (the ids are kept in
`registry.idempotency_keys` under the principal "notification", and go with the registration when it is
deleted). The mail's Message-ID is derived from the id, and the id is committed before the send: after a crash
between the two, the retry's mail is recognisably the same message. A deleted registration is a 404 and a
withdrawn one (or one no longer shared with the notifying agency) a 410, so the caller stops retrying.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Literal

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.registry_api.auditing import audit
from services.registry_api.database import SessionDep
from services.registry_api.dependencies import ServiceCaller
from services.registry_api.idempotency import NOTIFICATION_PRINCIPAL as IDEMPOTENCY_PRINCIPAL
from services.registry_api.repository.registrations import (
    claim_notification,
    notification_sent,
    registration_row,
    release_notification,
)
from services.registry_api.repository.sharing import shown_to
from services.registry_api.schemas import Slug
from services.registry_api.sealing import reg_context, unseal
from shared.errors import Problem, problem_responses, refused
from shared.geojson import JSONResponse
from shared.mail import get_mailer, message_id

log = logging.getLogger("canvass.registry.notifications")
router = APIRouter(prefix="/v1/registrations", tags=["registrations"])
# The status kept with a notification's id: claimed and being sent, or sent.
SENDING, SENT = 102, 202


class NotificationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "notification_id": "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b",
                    "kind": "request",
                    "agency": "milwaukee-pd",
                    "subject": "Milwaukee Police Department asks for camera footage (burglary)",
                    "body": "Milwaukee Police Department asks whether your registered camera(s) recorded ...",
                }
            ]
        },
    )

    notification_id: uuid.UUID = Field(
        description="Unique per message: a repeat with the same id is not sent"
    )
    kind: str = Field(
        pattern=r"^[a-z][a-z_.]{0,39}$", description="What the message is about", examples=["request"]
    )
    agency: Slug | None = Field(
        default=None,
        description="The agency on whose behalf the owner is written to: a registration that is not active, or"
        " not shared with this agency, is not written to (410 not-shared)",
        examples=["milwaukee-pd"],
    )
    subject: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\r\n]+$",
        json_schema_extra={"pattern": r"^[^\r\n\u0000]+$"},  # with _no_nul's rule below, in the contract
    )
    body: str = Field(min_length=1, max_length=20_000)

    @field_validator("subject", "body")
    @classmethod
    def _no_nul(cls, v: str) -> str:
        # A NUL has no place in a mail header or text (mail software truncates or rejects it).
        if "\x00" in v:
            raise refused("text_invalid", "must not contain NUL characters")
        return v


class NotificationAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"notification_id": "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b", "status": "sent"}]
        }
    )

    notification_id: uuid.UUID
    status: Literal["sent", "duplicate"] = Field(description="duplicate: this id was sent before, not again")


@router.post(
    "/{registration_id}/notifications",
    summary="Send a notification to a registration's owner (Canvass services only)",
    status_code=202,
    response_model=NotificationAccepted,
    responses={
        202: {
            "description": "Sent (or sent before under this notification id)",
            "content": {
                "application/json": {
                    "example": {"notification_id": "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b", "status": "sent"}
                }
            },
        },
        **problem_responses(401, 403, 404, 409, 410, 503),
    },
)
async def notify_owner(
    registration_id: uuid.UUID, body: NotificationIn, principal: ServiceCaller, session: SessionDep
) -> Response:
    row = await registration_row(session, registration_id, lock=True, texts=False)
    if row is None:
        raise Problem(404, f"No registration {registration_id}.")
    if row["status"] == "withdrawn":
        raise Problem(410, "The owner withdrew this registration; it receives no notifications.", kind="gone")
    if body.agency is not None and not await shown_to(session, row["id"], body.agency):
        # The owner paused the registration or stopped sharing it with this agency after being asked: consent
        # to the agency's contact is gone with it (the owner's half of the visibility rule, as in the agency's
        # searches: active and shared).
        raise Problem(
            410,
            f"The owner does not share this registration with {body.agency} now; it receives no notifications"
            " on the agency's behalf.",
            kind="not-shared",
        )
    email = unseal(row["contact_email_enc"], reg_context(row["id"], "email"))
    if email is None:
        raise Problem(409, "The owner left no email address; reach them by phone.", kind="no-email")
    digest = hashlib.sha256(orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).digest()
    key = {"key": str(body.notification_id), "principal": IDEMPOTENCY_PRINCIPAL}
    out = {"notification_id": str(body.notification_id), "status": "duplicate"}
    # The id is claimed (SENDING) and committed before the mail leaves, and marked SENT after: a crash between
    # the two leaves the claim, and the retry sends again under the same Message-ID, recognisably the same mail.
    # Never a second mail for a notification already marked sent.
    status = await claim_notification(session, key, digest, row["id"], SENDING)
    if status == SENT:
        await session.rollback()
        return JSONResponse(out, status_code=202)
    await session.commit()
    try:
        await get_mailer().send(
            email, body.subject, body.body, message_id=message_id("notification", body.notification_id)
        )
    except Exception as exc:
        # Not sent: the claim goes, so the caller's retry sends it.
        await release_notification(session, key, SENDING)
        await session.commit()
        log.warning("notification not sent: %s", type(exc).__name__)
        raise Problem(
            503,
            "The mail relay did not take the message; retry later.",
            kind="unavailable",
            headers={"Retry-After": "30"},
        ) from exc
    await notification_sent(session, key, SENT)
    # Recorded under the notification's id, not the registration's, and as the registry's own record: with no
    # agency and no kind. A reminder or a cancellation goes only to an owner who has not answered (a decline gets
    # none), so the number of mails of each kind sent for an agency would tell, to whoever reads the agency's
    # trail, an owner who declined from one who did not answer. The caller's own records say what it sent
    # (requests_api audits each request's notices and reminders as counts).
    await audit(
        session,
        "notify",
        actor=principal.sub,
        role="service",
        agency=None,
        subject_type="notification",
        subject_id=body.notification_id,
    )
    await session.commit()
    return JSONResponse(out | {"status": "sent"}, status_code=202)
