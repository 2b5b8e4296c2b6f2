"""An agency admin's webhook: where the agency is told of answers (accepts, uploads, an accepting owner's footage proving unavailable, expiry), each delivery an
HTTP POST signed with HMAC-SHA256 under the agency's secret (kept sealed; shown once when generated).

Signature: `X-Canvass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`; the delivery id
(`X-Canvass-Delivery`, also sent as `Idempotency-Key`) is the same on every retry of one message. The body
(`WebhookDelivery`, published in the contract's `webhooks`) carries, for an event about a target, the target's
sequence number: deliveries may arrive out of order (retries), the numbers give the order of the events."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.requests_api.database import SessionDep
from services.requests_api.dependencies import AgencyAdmin
from services.requests_api.responses import example, json_response
from services.requests_api.schemas import WebhookIn, WebhookOut
from services.requests_api.service import audit
from services.requests_api.states import Actor
from shared.concurrency import next_version
from shared.crypto import keyring
from shared.errors import Problem, problem_responses

router = APIRouter(prefix="/v1/agencies", tags=["webhooks"])
SIGNATURE_HELP = "X-Canvass-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>"
Slug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["milwaukee-pd"])]
WEBHOOK_EXAMPLE = WebhookOut.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]


class WebhookEventData(BaseModel):
    event: str = Field(examples=["target.accepted"])
    request_id: uuid.UUID
    case_number: str
    target_id: uuid.UUID | None = Field(
        description="The target the event is about; null for the request's own"
    )
    sequence: int | None = Field(
        description="The event's number among this target's events sent to the agency (1, 2, ...): order a "
        "target's events by it, not by arrival (a retried delivery may arrive after a later one). Null for an "
        "event about the request itself",
        examples=[1],
    )
    summary: dict[str, int] = Field(description="The request's summary when the event happened")


class WebhookDelivery(BaseModel):
    """What each delivery POSTs to the agency's webhook (signed; see `X-Canvass-Signature`)."""

    id: uuid.UUID = Field(description="The delivery's id, the same on every retry (X-Canvass-Delivery)")
    event: str = Field(
        description="target.accepted, target.uploaded, target.unavailable or request.expired",
        examples=["target.uploaded"],
    )
    created_at: datetime
    data: WebhookEventData


def document(app: FastAPI) -> None:
    """The webhook's deliveries in the contract (OpenAPI `webhooks`)."""

    @app.webhooks.post(
        "footage-request-event",
        summary="An answer that shares, or a request's end",
        status_code=204,
        responses={204: {"description": "Received (any 2xx); 410 stops deliveries to this webhook"}},
    )
    def footage_request_event(body: WebhookDelivery) -> None:
        """POSTed to the agency's webhook; answer 2xx (410 to stop deliveries). Headers: X-Canvass-Event,
        X-Canvass-Delivery and Idempotency-Key (the delivery id), X-Canvass-Signature."""


def secret_context(agency: str) -> str:
    return f"webhook:{agency}:secret"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _own(principal: AgencyAdmin, slug: str) -> None:
    if principal.agency != slug:
        raise Problem(403, f"Your token is for agency '{principal.agency}'; you manage only its webhook.")


def _out(row: dict[str, object], secret: str | None = None) -> dict[str, object]:
    return {
        "agency": row["agency"],
        "url": row["url"],
        "active": row["active"],
        "secret": secret,
        "signature": SIGNATURE_HELP,
        "version": row["version"],
    }


@router.put(
    "/{slug}/webhook",
    summary="Set your agency's webhook for answers (HMAC-SHA256 signed)",
    response_model=WebhookOut,
    responses={**example(200, WEBHOOK_EXAMPLE), **problem_responses(401, 403)},
)
async def put_webhook(slug: Slug, body: WebhookIn, principal: AgencyAdmin, session: SessionDep) -> Response:
    _own(principal, slug)
    generated = None if body.secret else secrets.token_urlsafe(32)
    secret = body.secret or generated
    row = (
        (
            await session.execute(
                text(
                    "INSERT INTO requests.agency_webhooks (agency, url, secret_enc, active) VALUES (:a, :url, :s, :act)"  # noqa: S608 - composed from constants; values are bound
                    " ON CONFLICT (agency) DO UPDATE SET url = EXCLUDED.url, secret_enc = EXCLUDED.secret_enc,"
                    f" active = EXCLUDED.active, {next_version('requests.agency_webhooks')}"
                    " RETURNING agency, url, active, version"
                ),
                {
                    "a": slug,
                    "url": body.url,
                    "s": keyring().seal(secret, secret_context(slug)),
                    "act": body.active,
                },
            )
        )
        .mappings()
        .one()
    )
    await audit(
        session,
        "webhook.set",
        Actor(principal.sub, "agency_admin", slug),
        agency=slug,
        subject_type="agency",
        subject_id=slug,
        details={"active": body.active},
    )
    await session.commit()
    return json_response(_out(dict(row), generated))


@router.get(
    "/{slug}/webhook",
    summary="Read your agency's webhook (the secret is never shown again)",
    response_model=WebhookOut,
    responses={**example(200, WEBHOOK_EXAMPLE), **problem_responses(401, 403, 404)},
)
async def get_webhook(slug: Slug, principal: AgencyAdmin, session: SessionDep) -> Response:
    _own(principal, slug)
    row = (
        (
            await session.execute(
                text("SELECT agency, url, active, version FROM requests.agency_webhooks WHERE agency = :a"),
                {"a": slug},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Problem(404, f"Agency '{slug}' has no webhook.")
    return json_response(_out(dict(row)))


@router.delete(
    "/{slug}/webhook",
    summary="Remove your agency's webhook",
    status_code=204,
    responses={
        204: {
            "description": "Removed: no more deliveries; messages still queued for it are marked undeliverable",
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id, as in the service's logs",
                    "schema": {"type": "string"},
                    "example": "d9095b48f0b547d3b3e13f2a2a86d0d5",
                }
            },
        },
        **problem_responses(401, 403, 404),
    },
)
async def delete_webhook(slug: Slug, principal: AgencyAdmin, session: SessionDep) -> Response:
    _own(principal, slug)
    done = (
        await session.execute(
            text("DELETE FROM requests.agency_webhooks WHERE agency = :a RETURNING 1"), {"a": slug}
        )
    ).first()
    if done is None:
        raise Problem(404, f"Agency '{slug}' has no webhook.")
    await session.commit()
    return Response(status_code=204)
