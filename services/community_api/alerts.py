"""Opt-in area alerts: residents subscribe, agency staff send.

A subscription is an email address or an E.164 phone number, an area (a pin and a radius within the agency's cap,
or a polygon inside the jurisdiction), categories and a language. It is pending until the code sent to the contact
comes back (double opt-in); a code guessed wrong `confirm_max_failures` times is void, and one not confirmed within
`confirm_window_s` too, its subscription then deleted with the contact. Since the contact may be someone else's, a
contact has at most `codes_per_contact` pending subscriptions at a time, and every subscribe counts against the
client address's budget of anonymous writes (ratelimit.py). The contact is sealed (AES-GCM, bound to the row) with
a blind index for the SMS provider's STOP replies, as registry contacts are.

Confirming returns a manage token (shown once; only its hash is kept) for the portal's manage page; every message
carries an unsubscribe link with a token derived from the subscription's id under the service's key, and every email
the same token in its List-Unsubscribe header, for mail software's one-click unsubscribe (RFC 8058). Unsubscribing
— by the link, by one click, by replying STOP, or in the portal — deletes the subscription and with it the contact: it takes
effect at once, and deliveries still queued for it are cancelled when their turn comes (outbox.py).

Supervisors send alerts (title, message, category, area, expiry). The alert and its recipients — every confirmed
subscription of the agency whose area intersects the alert's within the agency's jurisdiction and which takes its
category, one per contact, written as batches of subscription ids that the outbox turns into deliveries — are
written in one transaction (the fan-out is one INSERT … SELECT over the subscriptions' spatial index). Staff see
delivery counts per alert, never who received it; each alert has a public page without personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import orjson
import phonenumbers
from cryptography.exceptions import InvalidTag
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.community_api import sms
from services.community_api.config import config
from services.community_api.database import db
from services.community_api.policy import IdempotencyKey, SlugPath, agency_exists, own_agency, policy_of
from services.community_api.ratelimit import check, limiter
from services.community_api.responses import json_response
from shared import idempotency
from shared.audit import AuditEvent, append_asyncpg
from shared.auth import Principal, require_roles
from shared.crypto import keyring
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import Area, MultiPolygonGeometry, Point
from shared.inputs import StrictInput
from shared.links import CREATED_ID, link
from shared.mail import get_mailer
from shared.settings import get_settings
from shared.timestamps import Instant

log = logging.getLogger("canvass.community.alerts")

subscriptions = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
staff = APIRouter(prefix="/v1/agencies/{slug}/alerts", tags=["alerts"])
public = APIRouter(prefix="/v1/alerts", tags=["alerts"])
inbound = APIRouter(prefix="/v1/sms", tags=["subscriptions"])

CATEGORIES = ("crime", "traffic", "weather", "missing_person", "community", "emergency")
Category = Literal["crime", "traffic", "weather", "missing_person", "community", "emergency"]
Language = Literal["en", "es"]
SENDER_ROLE = "supervisor"  # who may send an alert to the public
STAFF_ROLES = ("investigator", "supervisor")
MAX_ALERT_DAYS = 30
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
CHARGED_NUMBERS = frozenset(
    {phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST}
)

manage_header = APIKeyHeader(
    name="X-Subscription-Token",
    scheme_name="SubscriptionToken",
    auto_error=False,
    description="The manage token returned once when the subscription was confirmed",
)


def portal_url() -> str:
    return config().portal_url.rstrip("/")


def contact_context(subscription_id: uuid.UUID) -> str:
    return f"community.subscriptions:{subscription_id}:contact"


def open_contact(sealed: bytes, subscription_id: uuid.UUID) -> str | None:
    """The subscription's contact, or None when it can no longer be opened: sealed under a key that left the ring
    (retired too early, or erased on purpose) or under another key of the same id. Every reader of a contact goes
    through here, so such a subscription is one that can reach nobody, never an error of the request."""
    try:
        return keyring().open(bytes(sealed), contact_context(subscription_id))
    except (KeyError, InvalidTag, ValueError):  # ValueError: a plaintext that is not UTF-8
        return None


def unreadable_contact() -> Problem:
    return Problem(
        410,
        "This subscription's contact can no longer be read (the key it was sealed under is gone), so no alert "
        "can reach it: end it (DELETE /v1/subscriptions/mine) and subscribe again.",
        kind="subscription-contact-unreadable",
        title="Subscription can reach no one",
    )


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _unsubscribe_key() -> bytes:
    return hashlib.sha256(b"alert-unsubscribe:" + get_settings().secret_key.encode()).digest()


def unsubscribe_token(subscription_id: uuid.UUID) -> str:
    mac = hmac.new(_unsubscribe_key(), subscription_id.bytes, hashlib.sha256).hexdigest()[:32]
    return f"{subscription_id.hex}.{mac}"


def subscription_of_unsubscribe_token(token: str) -> uuid.UUID | None:
    sid = token.partition(".")[0]
    try:
        subscription_id = uuid.UUID(hex=sid)
    except ValueError:
        return None
    return subscription_id if hmac.compare_digest(unsubscribe_token(subscription_id), token) else None


# --- inputs -----------------------------------------------------------------------------------------------------


class SubscriptionInput(StrictInput):
    agency: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description="The agency whose alerts you want")
    channel: Literal["email", "sms"]
    contact: str = Field(
        min_length=3,
        max_length=254,
        description="An email address, or a phone number in E.164 (+14145550123)",
    )
    pin: Point | None = Field(None, description="Your place: alerts within `radius_m` of it reach you")
    radius_m: int | None = Field(None, ge=50, le=50_000, description="With `pin`: within the agency's cap")
    area: Area | None = Field(None, description="Or an area you draw, inside the agency's jurisdiction")
    categories: list[Category] = Field(min_length=1, max_length=len(CATEGORIES))
    language: Language = "en"

    @model_validator(mode="after")
    def _one_area(self) -> SubscriptionInput:
        if (self.pin is None) != (self.radius_m is None):
            raise ValueError("give pin and radius_m together")
        if (self.pin is None) == (self.area is None):
            raise ValueError("give either pin and radius_m, or area")
        return self


class Confirmation(StrictInput):
    code: str = Field(pattern=r"^[0-9]{6}$", description="The six digits sent to you")


class SubscriptionChange(StrictInput):
    categories: list[Category] | None = Field(None, min_length=1, max_length=len(CATEGORIES))
    language: Language | None = None


class Unsubscribe(StrictInput):
    token: str = Field(max_length=100, pattern=r"^[0-9a-f]{32}\.[0-9a-f]{32}$", description="From the link")


class AlertInput(StrictInput):
    title: str = Field(min_length=1, max_length=120, description="One line, not blank: no control characters")
    message: str = Field(
        min_length=1,
        max_length=1000,
        description="Not blank: line breaks and tabs, no other control characters",
    )
    category: Category
    area: Area
    expires_at: Instant = Field(description=f"When the alert stops applying (within {MAX_ALERT_DAYS} days)")


EXAMPLE_ALERT: dict[str, Any] = {
    "id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
    "agency": "milwaukee-pd",
    "title": "Armed robbery",
    "message": "Avoid the area of 5th and Main; police are on scene.",
    "category": "crime",
    "area": {
        "type": "MultiPolygon",
        "coordinates": [
            [[[-87.93, 43.03], [-87.91, 43.03], [-87.91, 43.05], [-87.93, 43.05], [-87.93, 43.03]]]
        ],
    },
    "created_at": "2026-12-05T21:10:00Z",
    "expires_at": "2026-12-06T00:10:00Z",
}


class SubscriptionAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "7c6b5a49-3827-4165-9f8e-7d6c5b4a3928", "status": "pending", "channel": "sms"}
            ]
        }
    )

    id: uuid.UUID
    status: str
    channel: str


class SubscriptionConfirmed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "7c6b5a49-3827-4165-9f8e-7d6c5b4a3928", "status": "confirmed",
                 "manage_token": "cvs_2m9QxV0b8Kp1sLr4Tn6Wj3Yc5Ze7Ua9Hd0Fg2Ik4Ol6"}
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    status: str
    manage_token: str = Field(
        description="Shown once: keep it to manage or end the subscription in the portal"
    )


class SubscriptionView(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "7c6b5a49-3827-4165-9f8e-7d6c5b4a3928", "agency": "milwaukee-pd", "channel": "sms",
                 "contact_hint": "••••••••0123", "area": EXAMPLE_ALERT["area"], "categories": ["crime", "traffic"],
                 "language": "en", "status": "confirmed"}
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    agency: str
    channel: str
    contact_hint: str = Field(description="The contact, mostly masked")
    area: MultiPolygonGeometry
    categories: list[str]
    language: str
    status: str


class DeliveryCounts(BaseModel):
    queued: int
    sent: int
    failed: int
    cancelled: int


class AlertView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_ALERT]})

    id: uuid.UUID
    agency: str
    title: str
    message: str
    category: str
    area: MultiPolygonGeometry
    created_at: str
    expires_at: str
    deliveries: DeliveryCounts | None = Field(None, description="Staff only: counts, never who")


class AlertList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "alerts": [
                        EXAMPLE_ALERT
                        | {"deliveries": {"queued": 0, "sent": 412, "failed": 3, "cancelled": 1}}
                    ]
                }
            ]
        }
    )

    alerts: list[AlertView]


def _normal_contact(channel: str, contact: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in contact):
        raise invalid("/body/contact", "must not contain control characters", code="text_invalid")
    if channel == "email":
        # The relay speaks plain SMTP (no SMTPUTF8): an address it cannot take is refused here, before anything is
        # stored; an internationalised domain is kept in its ASCII form, which the relay can take.
        try:
            address = validate_email(contact.strip(), check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            raise invalid(
                "/body/contact", f"not a valid email address: {exc}", code="email_invalid"
            ) from None
        assert address.ascii_email is not None  # always set when SMTPUTF8 is not allowed
        return address.ascii_email
    if not sms.configured():
        raise invalid("/body/channel", "this program sends alerts by email only, not by text message")
    if not E164.fullmatch(contact):
        raise invalid(
            "/body/contact", "give the phone number in E.164, e.g. +14145550123", code="phone_invalid"
        )
    try:
        number = phonenumbers.parse(contact)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise invalid("/body/contact", "not a valid phone number", code="phone_invalid")
    if phonenumbers.number_type(number) in CHARGED_NUMBERS:
        # Every subscribe sends a text: to a number that bills the sender, that is money for whoever holds it.
        raise invalid("/body/contact", "a premium-rate or shared-cost number cannot take alerts")
    return contact


def _hint(channel: str, contact: str) -> str:
    if channel == "sms":
        return "•" * (len(contact) - 4) + contact[-4:]
    local, _, domain = contact.partition("@")
    return local[:1] + "•••@" + domain


# --- messages ---------------------------------------------------------------------------------------------------

TEXTS = {
    "en": {
        "confirm_subject": "Confirm your alert subscription",
        "confirm": "Your confirmation code for {agency}'s alerts: {code}",
        "more": "More",
        "expires": "Applies until",
        "unsubscribe": "Unsubscribe",
        "stop": "Reply STOP to unsubscribe.",
    },
    "es": {
        "confirm_subject": "Confirme su suscripción a las alertas",
        "confirm": "Su código de confirmación para las alertas de {agency}: {code}",
        "more": "Más",
        "expires": "Vigente hasta",
        "unsubscribe": "Cancelar suscripción",
        "stop": "Responda STOP para cancelar.",
    },
}


def alert_texts(alert: Any, subscription_id: uuid.UUID, language: str) -> tuple[str, str, str]:
    """(email subject, email body, SMS body) of an alert for one subscription."""
    t = TEXTS.get(language, TEXTS["en"])
    page = f"{portal_url()}/alerts/{alert['id']}"
    leave = f"{portal_url()}/alerts/unsubscribe#{unsubscribe_token(subscription_id)}"
    expires = alert["expires_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subject = f"[{alert['agency']}] {alert['title']}"
    body = f"{alert['title']}\n\n{alert['message']}\n\n{t['expires']}: {expires}\n{t['more']}: {page}\n\n{t['unsubscribe']}: {leave}\n"
    text = f"{alert['title']}: {alert['message']}"
    if len(text) > 300:
        text = text[:299] + "…"
    return subject, body, f"{text} {t['more']}: {page} {t['stop']}"


def one_click_unsubscribe(subscription_id: uuid.UUID) -> dict[str, str]:
    """The header fields of RFC 2369 and RFC 8058 that let mail software end this one subscription in one click:
    a POST to the URL, which carries the same token as the link in the body (the subscription's id and an HMAC
    of it under the service's key: nothing of the contact, and good for no other subscription). Mail software
    asks for an https URL; the deployment's CANVASS_PUBLIC_BASE_URL is one."""
    url = f"{get_settings().public_base}/v1/subscriptions/unsubscribe/one-click/{unsubscribe_token(subscription_id)}"
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


async def send_code(channel: str, contact: str, agency: str, code: str, language: str) -> bool:
    """Whether the confirmation code was handed to the relay or the SMS provider."""
    t = TEXTS[language]
    text = t["confirm"].format(agency=agency, code=code)
    if channel == "sms":
        return await sms.send(contact, text) is sms.SendOutcome.SENT
    try:
        await get_mailer().send(contact, t["confirm_subject"], text + "\n")
    except Exception as exc:  # refused or unreachable: the subscriber is told to try again
        # Only the kind of failure: a relay's refusal may quote the address, which is not for the logs.
        log.warning("confirmation mail not sent: %s", type(exc).__name__)
        return False
    return True


NO_CONTENT = {
    "description": "Ended: the subscription and its contact are deleted",
    "headers": {
        "X-Request-ID": {
            "description": "The request's id, as in the service's logs",
            "schema": {"type": "string"},
            "example": "d9095b48f0b547d3b3e13f2a2a86d0d5",
        }
    },
}
ALERT_LINKS = {
    "ReadAlert": link("read_alert_v1_agencies__slug__alerts__alert_id__get", "The alert with its delivery counts",
                      slug="$request.path.slug", alert_id=CREATED_ID),
    "PublicAlert": link("public_alert_v1_alerts__alert_id__get", "The alert's public page", alert_id=CREATED_ID),
}  # fmt: skip

# --- subscriptions ----------------------------------------------------------------------------------------------


# An unconfirmed subscription is a code sent to a contact that may not be the subscriber's own: a contact has at
# most `codes_per_contact` of them at a time, each void after `confirm_window_s` and then deleted with the contact.
PENDING_SQL = """
SELECT count(*) AS n, extract(epoch FROM min(created_at) + make_interval(secs => $2) - now()) AS wait_s
FROM community.subscriptions
WHERE contact_index = ANY($1::bytea[]) AND status = 'pending' AND created_at > now() - make_interval(secs => $2)
"""
PURGE_UNCONFIRMED_SQL = """
DELETE FROM community.subscriptions WHERE status = 'pending' AND created_at <= now() - make_interval(secs => $1)
"""


async def _within_codes_per_contact(conn: asyncpg.Connection, contact: str) -> None:
    indexes = keyring().blind_indexes(contact)
    # One subscribe of a contact at a time, so two at once cannot both pass the count.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('canvass-alert-contact:' || encode($1, 'hex'), 0))",
        indexes[0],
    )
    pending = await conn.fetchrow(PENDING_SQL, indexes, config().confirm_window_s)
    if pending["n"] >= config().codes_per_contact:
        retry = max(1, math.ceil(pending["wait_s"]))
        raise Problem(
            429,
            "Too many confirmation codes were sent to this contact lately: confirm one of them, or try again "
            f"in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )


async def purge_unconfirmed(conn: asyncpg.Connection) -> int:
    """Delete the subscriptions whose code was never confirmed in time, with their contacts."""
    return int((await conn.execute(PURGE_UNCONFIRMED_SQL, config().confirm_window_s)).split()[-1])


@subscriptions.post(
    "",
    status_code=202,
    summary="Subscribe an email or phone to an agency's alerts over an area; a confirmation code is sent to it",
    response_model=SubscriptionAccepted,
    responses=problem_responses(404, 429, 502),
)
async def subscribe(body: SubscriptionInput, request: Request) -> Response:
    contact = _normal_contact(body.channel, body.contact)
    sid = uuid.uuid4()
    code = f"{secrets.randbelow(1_000_000):06d}"
    async with pooled(await db.pool()) as conn:
        await check(limiter(), request, conn)
    async with pooled(await db.pool()) as conn, conn.transaction():
        if not await agency_exists(conn, body.agency):
            raise Problem(404, f"No agency {body.agency!r}.")
        await _within_codes_per_contact(conn, contact)
        policy = await policy_of(conn, body.agency)
        if body.radius_m is not None and body.radius_m > policy.alert_max_radius_m:
            raise invalid(
                "/body/radius_m", f"this agency's alerts take a radius up to {policy.alert_max_radius_m} m"
            )
        given = body.pin if body.pin is not None else body.area
        assert given is not None
        inside = await conn.fetchval(
            "SELECT ST_CoveredBy(ST_Force2D(ST_GeomFromGeoJSON($1)), jurisdiction) FROM registry.agencies WHERE slug = $2",
            given.geojson(),
            body.agency,
        )
        if not inside:
            raise invalid(
                "/body/pin" if body.pin is not None else "/body/area",
                "must lie inside the agency's jurisdiction",
            )
        await conn.execute(
            """INSERT INTO community.subscriptions
                   (id, agency, channel, contact, contact_index, area, categories, language, confirm_hash, manage_hash)
               VALUES ($3, $4, $5, $6, $7,
                       CASE WHEN $2::float8 IS NULL THEN ST_Multi(ST_Force2D(ST_GeomFromGeoJSON($1)))
                            ELSE (SELECT ST_Multi(CASE WHEN ST_XMax(b) - ST_XMin(b) > 180
                                                     THEN ST_WrapX(ST_ShiftLongitude(b), 180, -360) ELSE b END)
                                  FROM (SELECT ST_Buffer(ST_Force2D(ST_GeomFromGeoJSON($1))::geography,
                                                         $2::float8)::geometry AS b) buffered)
                       END,
                       $8, $9, $10, $11)""",
            given.geojson(),
            body.radius_m,
            sid,
            body.agency,
            body.channel,
            keyring().seal(contact, contact_context(sid)),
            keyring().blind_index(contact),
            sorted(set(body.categories)),
            body.language,
            token_hash(f"{sid}:{code}"),
            token_hash(secrets.token_urlsafe(32)),  # replaced by the real manage token on confirmation
        )
    if not await send_code(body.channel, contact, body.agency, code, body.language):
        # No code reached the contact, so nobody can ever confirm this subscription: it and the contact go now
        # rather than wait for the sweep of unconfirmed ones.
        async with pooled(await db.pool()) as conn:
            await conn.execute(
                "DELETE FROM community.subscriptions WHERE id = $1 AND status = 'pending'", sid
            )
        by = "email" if body.channel == "email" else "SMS"
        raise Problem(
            502, f"The confirmation code could not be sent by {by}; nothing was kept. Try again later."
        )
    return json_response({"id": sid, "status": "pending", "channel": body.channel}, status=202)


@subscriptions.post(
    "/{subscription_id}/confirm",
    summary="Confirm a subscription with the code sent to its contact; answers the manage token, once",
    response_model=SubscriptionConfirmed,
    responses=problem_responses(404, 409),
)
async def confirm(
    subscription_id: Annotated[uuid.UUID, Path(description="The subscription's id")], body: Confirmation
) -> Response:
    token = "cvs_" + secrets.token_urlsafe(32)
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await conn.fetchrow(
            """SELECT status, confirm_hash, confirm_failures,
                      created_at <= now() - make_interval(secs => $2) AS expired
               FROM community.subscriptions WHERE id = $1 FOR UPDATE""",
            subscription_id,
            config().confirm_window_s,
        )
        if row is None:
            raise Problem(404, "No pending subscription with this id.")
        if row["status"] != "pending":
            raise Problem(409, "This subscription is already confirmed.")
        if row["expired"]:
            raise Problem(409, "This subscription's code has expired. Subscribe again.")
        if row["confirm_failures"] >= config().confirm_max_failures:
            raise Problem(409, "Too many wrong codes: this subscription's code is void. Subscribe again.")
        if not hmac.compare_digest(bytes(row["confirm_hash"]), token_hash(f"{subscription_id}:{body.code}")):
            await conn.execute(
                "UPDATE community.subscriptions SET confirm_failures = confirm_failures + 1 WHERE id = $1",
                subscription_id,
            )
            return_problem = invalid("/body/code", "not the code that was sent")
        else:
            await conn.execute(
                """UPDATE community.subscriptions SET status = 'confirmed', confirmed_at = now(),
                       confirm_hash = NULL, manage_hash = $2 WHERE id = $1""",
                subscription_id,
                token_hash(token),
            )
            return_problem = None
    if return_problem is not None:
        raise return_problem
    return json_response(
        {"id": subscription_id, "status": "confirmed", "manage_token": token},
        headers={"Cache-Control": "no-store"},
    )


ManageToken = Annotated[str | None, Depends(manage_header)]


OWN_SQL = """
SELECT id, agency, channel, contact, categories, language, status, ST_AsGeoJSON(area, 7)::text AS area
FROM community.subscriptions WHERE manage_hash = $1 AND status = 'confirmed'
"""


async def _own(conn: asyncpg.Connection, token: str | None, *, lock: bool = False) -> asyncpg.Record:
    if not token or len(token) > 100:
        raise Problem(401, "This operation needs the subscription's manage token (X-Subscription-Token).")
    row = await conn.fetchrow(OWN_SQL + (" FOR UPDATE" if lock else ""), token_hash(token))
    if row is None:
        raise Problem(401, "No subscription has this manage token (it may have ended).")
    return row


def _view(row: asyncpg.Record) -> dict[str, Any]:
    contact = open_contact(row["contact"], row["id"])
    if contact is None:
        raise unreadable_contact()
    return {
        "id": row["id"],
        "agency": row["agency"],
        "channel": row["channel"],
        "contact_hint": _hint(row["channel"], contact),
        "area": orjson.loads(row["area"]),
        "categories": list(row["categories"]),
        "language": row["language"],
        "status": row["status"],
    }


class Channels(BaseModel):
    channels: list[Literal["email", "sms"]] = Field(
        description="How residents may subscribe: by email always, by text message where this deployment sends them",
        examples=[["email", "sms"]],
    )


@subscriptions.get(
    "/channels",
    summary="The channels alerts are sent by here (public: the subscription form offers only these)",
    response_model=Channels,
)
async def channels() -> Response:
    return json_response(
        {"channels": ["email", "sms"] if sms.configured() else ["email"]},
        headers={"Cache-Control": "public, max-age=300"},
    )


@subscriptions.get(
    "/mine",
    summary="One's subscription, by its manage token",
    response_model=SubscriptionView,
    responses=problem_responses(401, 410),
)
async def read_own(token: ManageToken) -> Response:
    async with pooled(await db.pool()) as conn:
        return json_response(_view(await _own(conn, token)))


@subscriptions.patch(
    "/mine",
    summary="Change one's subscription's categories or language",
    response_model=SubscriptionView,
    responses=problem_responses(401, 410),
)
async def change_own(token: ManageToken, body: SubscriptionChange) -> Response:
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await _own(conn, token, lock=True)
        if open_contact(row["contact"], row["id"]) is None:
            raise unreadable_contact()  # before the change: a subscription that reaches no one is not changed
        await conn.execute(
            """UPDATE community.subscriptions SET categories = coalesce($2, categories), language = coalesce($3, language)
               WHERE id = $1""",
            row["id"],
            sorted(set(body.categories)) if body.categories else None,
            body.language,
        )
        row = await _own(conn, token)
    return json_response(_view(row))


async def _end(conn: asyncpg.Connection, where: str, *args: Any) -> int:
    """Delete subscriptions (their contact with them): queued deliveries lose their subscription and are cancelled."""
    result = await conn.execute(f"DELETE FROM community.subscriptions WHERE {where}", *args)  # noqa: S608
    return int(result.split()[-1])


@subscriptions.delete(
    "/mine",
    status_code=204,
    summary="End one's subscription in the portal (it and its contact are deleted at once)",
    response_class=Response,
    responses={204: NO_CONTENT, **problem_responses(401)},
)
async def end_own(token: ManageToken) -> Response:
    async with pooled(await db.pool()) as conn, conn.transaction():
        row = await _own(conn, token, lock=True)
        await _end(conn, "id = $1", row["id"])
    return Response(status_code=204)


@subscriptions.post(
    "/unsubscribe",
    status_code=204,
    summary="End a subscription with the token of the link every alert carries",
    response_class=Response,
    responses={204: NO_CONTENT, **problem_responses(404)},
)
async def unsubscribe(body: Unsubscribe) -> Response:
    subscription_id = subscription_of_unsubscribe_token(body.token)
    if subscription_id is None:
        raise invalid("/body/token", "not an unsubscribe token this service issued")
    async with pooled(await db.pool()) as conn:
        await _end(
            conn, "id = $1", subscription_id
        )  # already gone is as good: the link may be followed twice
    return Response(status_code=204)


@subscriptions.post(
    "/unsubscribe/one-click/{token}",
    status_code=204,
    summary="End a subscription in one click (RFC 8058): the List-Unsubscribe URL of every alert email",
    description="Mail software POSTs `List-Unsubscribe=One-Click` here when the reader chooses to unsubscribe; "
    "the token in the path is all it takes (no other step, no sign-in). The body is not needed: the POST itself "
    "is the request, and a GET does nothing (link scanners follow links).",
    response_class=Response,
    responses={204: NO_CONTENT, **problem_responses(404)},
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
                    }
                }
            },
        }
    },
)
async def unsubscribe_one_click(
    request: Request,
    token: Annotated[
        str,
        Path(
            max_length=100,
            pattern=r"^[0-9a-f]{32}\.[0-9a-f]{32}$",
            description="The token of the List-Unsubscribe URL",
        ),
    ],
) -> Response:
    await request.body()  # read, within the body limit (413 over it), though only the path counts
    subscription_id = subscription_of_unsubscribe_token(token)
    if subscription_id is None:
        raise Problem(404, "This is not an unsubscribe link this service issued.")
    async with pooled(await db.pool()) as conn:
        await _end(conn, "id = $1", subscription_id)  # already gone is as good: mail software may POST twice
    return Response(status_code=204)


@inbound.post(
    "/inbound",
    summary="The SMS provider's webhook for replies: STOP (and its synonyms) ends every SMS subscription of the number",
    description="A 404 problem when the deployment sends no text messages (no `CANVASS_SMS_AUTH_TOKEN`).",
    response_class=Response,
    responses={
        200: {
            "description": "An empty TwiML answer (no reply is sent)",
            "content": {
                "application/xml": {
                    "schema": {"type": "string"},
                    "example": '<?xml version="1.0" encoding="UTF-8"?><Response/>',
                }
            },
        },
        **problem_responses(403, 404),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"From": {"type": "string"}, "Body": {"type": "string"}},
                        "required": ["From", "Body"],
                    }
                }
            },
        },
        "parameters": [
            {
                "name": "X-Twilio-Signature",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "maxLength": 200},
                "description": "The provider's signature of the request (HMAC-SHA1 with the auth token)",
            }
        ],
    },
)
async def inbound_sms(request: Request) -> Response:
    if not sms.configured():
        raise Problem(404, "This deployment sends no text messages.")
    await request.body()  # read first, within the body limit (413 over it), whatever its type
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "The provider's webhook posts application/x-www-form-urlencoded.")
    form = await request.form(max_files=0, max_fields=100)
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    url = get_settings().public_base + request.url.path
    if not sms.signed(url, params, request.headers.get("x-twilio-signature")):
        raise Problem(403, "The request is not signed by the SMS provider.")
    sender = str(form.get("From") or "")
    words = str(form.get("Body") or "").strip().upper().split()
    if E164.fullmatch(sender) and words and words[0] in STOP_WORDS:
        async with pooled(await db.pool()) as conn:
            ended = await _end(
                conn, "channel = 'sms' AND contact_index = ANY($1::bytea[])", keyring().blind_indexes(sender)
            )
        log.info("STOP reply ended %d subscription(s)", ended)
    return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="application/xml")


# --- alerts -----------------------------------------------------------------------------------------------------

# The fan-out: one statement, driven by the GiST index of the confirmed subscriptions' areas, that writes the
# alert's recipients as batches of subscription ids (no contact: the outbox unseals it at send time). A batch is
# one row for up to FAN_OUT_BATCH recipients, so the alert's transaction writes a few hundred rows, not one per
# subscription with its index entries (3-5 times faster for 100,000 subscriptions; bench/community.py); the
# outbox turns a batch into its deliveries when it reaches it (outbox.py). The alert is joined rather than its
# area passed as a sub-select's parameter: PostGIS then keeps the alert's area prepared across the rows. A
# subscription whose inner point the alert covers intersects it (a point-in-polygon test, without GEOS); only
# the others, at the alert's edge, take the exact test of their whole area. A contact with several subscriptions
# under the alert (home and work, say) receives it once: one subscription per blind index, the oldest by id (the
# sort costs about 60 ms of the fan-out's 200 ms for 100,000 recipients). The alert reaches only as far as the
# agency's jurisdiction as it is now: a subscription left outside when the jurisdiction shrank is no longer the
# agency's to alert (the intersection is computed once per alert, and costs nothing measurable).
FAN_OUT_BATCH = 500
FAN_OUT_SQL = """
WITH reach AS MATERIALIZED (
    SELECT a.agency, a.category, ST_CollectionExtract(ST_Intersection(a.area, g.jurisdiction), 3) AS area
    FROM community.alerts a JOIN registry.agencies g ON g.slug = a.agency
    WHERE a.id = $1
), batches AS (
    INSERT INTO community.delivery_batches (alert_id, channel, subscription_ids)
    SELECT $1, channel, array_agg(id) FROM (
        SELECT id, channel, (row_number() OVER ()) / $2::int AS batch FROM (
            SELECT DISTINCT ON (s.contact_index) s.id, s.channel
            FROM reach a
            JOIN community.subscriptions s
              ON s.status = 'confirmed' AND s.agency = a.agency AND a.category = ANY (s.categories)
             AND s.area && a.area
             AND (ST_Intersects(a.area, s.inner_point) OR ST_Intersects(a.area, s.area))
            ORDER BY s.contact_index, s.id
        ) one_per_contact
    ) recipients
    GROUP BY channel, batch
    RETURNING cardinality(subscription_ids) AS n
)
SELECT coalesce(sum(n), 0)::int FROM batches
"""
# Queued: the deliveries not yet sent, and the recipients of batches the outbox has not reached yet.
COUNTS_SQL = """
SELECT (count(*) FILTER (WHERE status = 'queued')
        + (SELECT coalesce(sum(cardinality(subscription_ids)), 0) FROM community.delivery_batches WHERE alert_id = $1)
       )::bigint AS queued, count(*) FILTER (WHERE status = 'sent') AS sent,
       count(*) FILTER (WHERE status = 'failed') AS failed, count(*) FILTER (WHERE status = 'cancelled') AS cancelled
FROM community.deliveries WHERE alert_id = $1
"""
ALERT_SQL = """
SELECT id, agency, title, message, category, ST_AsGeoJSON(area, 7)::text AS area, created_at, expires_at
FROM community.alerts
"""


IDEMPOTENCY_KEYS = idempotency.Keys("community.idempotency_keys", "alert_id")


def _bind(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """The shared idempotency statements' named parameters (:name) as asyncpg's positional ones ($n)."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)\b", number, sql), [params[n] for n in names]


async def _stored_alert(
    conn: asyncpg.Connection, key: str, scope: str, digest: bytes
) -> idempotency.Stored | None:
    sql, args = _bind(
        IDEMPOTENCY_KEYS.lookup_sql,
        {"key": key, "principal": scope, "window_s": float(idempotency.replay_window_s())},
    )
    row = await conn.fetchrow(sql, *args)
    return None if row is None else idempotency.replayed(row, key, scope, digest)


def _replay(stored: idempotency.Stored) -> Response:
    return Response(
        stored.body,
        status_code=stored.status,
        media_type="application/json",
        headers={**stored.headers, "Idempotent-Replayed": "true"},
    )


def _alert(row: asyncpg.Record, counts: asyncpg.Record | dict[str, int] | None = None) -> dict[str, Any]:
    out = {**dict(row), "area": orjson.loads(row["area"])}
    if counts is not None:
        out["deliveries"] = dict(counts)
    return out


@staff.post(
    "",
    status_code=201,
    summary=f"Send an alert to every confirmed subscription over its area ({SENDER_ROLE}s of the agency)",
    response_model=AlertView,
    responses={
        201: {"description": "Sent: the deliveries are queued", "links": ALERT_LINKS},
        200: {
            "description": "Replayed: this Idempotency-Key sent it before (nothing is sent again)",
            "model": AlertView,
            "links": ALERT_LINKS,
        },
        **problem_responses(403, 404, 429),
    },
)
async def send_alert(
    slug: SlugPath,
    body: AlertInput,
    principal: Annotated[Principal, require_roles(SENDER_ROLE)],
    idempotency_key: IdempotencyKey = None,
) -> Response:
    own_agency(principal, slug)
    scope = idempotency.principal_key(principal)
    digest = idempotency.request_hash(body.model_dump(mode="json")) if idempotency_key else b""
    if idempotency_key:
        async with pooled(await db.pool()) as conn:
            stored = await _stored_alert(conn, idempotency_key, scope, digest)
        if stored is not None:
            return _replay(stored)
    try:
        return await _send_alert(slug, body, principal, idempotency_key, scope, digest)
    except asyncpg.UniqueViolationError:
        # A concurrent send by the same caller with the same key committed first: answer as it did.
        assert idempotency_key is not None
        async with pooled(await db.pool()) as conn:
            stored = await _stored_alert(conn, idempotency_key, scope, digest)
        if stored is None:
            raise
        return _replay(stored)


def _check_alert_text(text: str, pointer: str, allowed: str) -> None:
    """An alert's text goes into mail headers (the title is the subject), mail bodies and text messages: a control
    character there breaks a header — a line break in a subject makes the relay refuse every email of the alert —
    or shows as garbage, so none is taken but the line breaks and tabs of the message. A blank one says nothing."""
    if not text.strip():
        raise invalid(pointer, "must not be blank", code="missing")
    for c in text:
        if (ord(c) < 32 or 127 <= ord(c) < 160) and c not in allowed:
            kept = "line breaks and tabs" if allowed else "none"
            raise invalid(
                pointer,
                f"must not contain control characters (U+{ord(c):04X}); allowed: {kept}",
                code="text_invalid",
            )


# The alerts an agency sent in the sliding window, and when the oldest of them leaves it.
ALERT_RATE_SQL = """
SELECT count(*) AS n, extract(epoch FROM min(created_at) + make_interval(secs => $2) - now()) AS wait_s
FROM community.alerts WHERE agency = $1 AND created_at > now() - make_interval(secs => $2)
"""


async def _within_alert_rate(conn: asyncpg.Connection, slug: str) -> None:
    """At most `alert_rate_limit` alerts per agency in `alert_rate_window_s`: every one reaches residents' phones."""
    # One send of an agency at a time, so two at once cannot both pass the count.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('canvass-alert-send:' || $1, 0))", slug)
    sent = await conn.fetchrow(ALERT_RATE_SQL, slug, config().alert_rate_window_s)
    if sent["n"] >= config().alert_rate_limit:
        retry = max(1, math.ceil(sent["wait_s"]))
        raise Problem(
            429,
            f"This agency sent {sent['n']} alerts within {config().alert_rate_window_s:g} seconds, as many as it "
            f"may; the next can go in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )


async def _send_alert(
    slug: str, body: AlertInput, principal: Principal, key: str | None, scope: str, digest: bytes
) -> Response:
    now = datetime.now(UTC)
    if not now < body.expires_at <= now + timedelta(days=MAX_ALERT_DAYS):
        raise invalid("/body/expires_at", f"must be in the future, within {MAX_ALERT_DAYS} days")
    _check_alert_text(body.title, "/body/title", allowed="")
    _check_alert_text(body.message, "/body/message", allowed="\r\n\t")
    async with pooled(await db.pool()) as conn, conn.transaction():
        inside = await conn.fetchval(
            "SELECT ST_Intersects(ST_Force2D(ST_GeomFromGeoJSON($1)), jurisdiction) FROM registry.agencies WHERE slug = $2",
            body.area.geojson(),
            slug,
        )
        if not inside:
            raise invalid("/body/area", "must reach into the agency's jurisdiction")
        await _within_alert_rate(conn, slug)
        row = await conn.fetchrow(
            """INSERT INTO community.alerts (agency, title, message, category, area, expires_at, created_by)
               VALUES ($1, $2, $3, $4, ST_SetSRID(ST_Multi(ST_Force2D(ST_GeomFromGeoJSON($5))), 4326), $6, $7)
               RETURNING id, ST_AsGeoJSON(area)::text AS area""",
            slug,
            body.title,
            body.message,
            body.category,
            body.area.geojson(),
            body.expires_at,
            principal.sub,
        )
        queued = await conn.fetchval(FAN_OUT_SQL, row["id"], FAN_OUT_BATCH)
        await append_asyncpg(
            conn,
            AuditEvent(
                service="community_api",
                actor=principal.sub,
                actor_role=SENDER_ROLE,
                agency=slug,
                action="alert.sent",
                subject_type="alert",
                subject_id=str(row["id"]),
                area_geojson=row["area"],  # as stored: flat, whatever third coordinate was sent
                details={"category": body.category, "queued": queued},
            ),
        )
        alert = await conn.fetchrow(ALERT_SQL + " WHERE id = $1", row["id"])
        # Nothing is sent before this transaction commits: the counts are the fan-out's own (no count(*) over it).
        counts = {"queued": queued, "sent": 0, "failed": 0, "cancelled": 0}
        headers = {"Location": f"/v1/alerts/{row['id']}"}
        response = json_response(_alert(alert, counts), status=201, headers=headers)
        if key:
            # The answer is kept with the alert, in its transaction: both commit or neither. A replay is the
            # same body and headers with 200, as the other creates answer a replay.
            sealed, stored_headers = idempotency.seal(
                idempotency.Stored(200, bytes(response.body), headers), key, scope
            )
            sql, args = _bind(
                f"WITH {IDEMPOTENCY_KEYS.store_ctes.strip()} SELECT 1",
                {
                    "key": key,
                    "principal": scope,
                    "digest": digest,
                    "status": 200,
                    "body": sealed,
                    "headers": stored_headers,
                    "owner": row["id"],
                    "window_s": float(idempotency.replay_window_s()),
                    "sweep": IDEMPOTENCY_KEYS.sweep_due(),
                },
            )
            await conn.execute(sql, *args)
    return response


@staff.get(
    "",
    summary="The agency's alerts, newest first, with their delivery counts",
    response_model=AlertList,
    responses=problem_responses(403, 404),
)
async def list_alerts(
    slug: SlugPath, principal: Annotated[Principal, require_roles(*STAFF_ROLES)]
) -> Response:
    own_agency(principal, slug)
    async with pooled(await db.pool()) as conn:
        rows = await conn.fetch(ALERT_SQL + " WHERE agency = $1 ORDER BY created_at DESC LIMIT 200", slug)
        out = [_alert(r, await conn.fetchrow(COUNTS_SQL, r["id"])) for r in rows]
    return json_response({"alerts": out})


@staff.get(
    "/{alert_id}",
    summary="One alert of the agency with its delivery counts (queued, sent, failed, cancelled; never who)",
    response_model=AlertView,
    responses=problem_responses(403, 404),
)
async def read_alert(
    slug: SlugPath,
    alert_id: Annotated[uuid.UUID, Path(description="The alert's id")],
    principal: Annotated[Principal, require_roles(*STAFF_ROLES)],
) -> Response:
    own_agency(principal, slug)
    async with pooled(await db.pool()) as conn:
        row = await conn.fetchrow(ALERT_SQL + " WHERE id = $1 AND agency = $2", alert_id, slug)
        if row is None:
            raise Problem(404, f"No alert {alert_id} of this agency.")
        counts = await conn.fetchrow(COUNTS_SQL, alert_id)
    return json_response(_alert(row, counts))


@public.get(
    "/{alert_id}",
    summary="An alert's public page: what was said, where and until when (no personal data, no counts)",
    response_model=AlertView,
    responses=problem_responses(404),
)
async def public_alert(alert_id: Annotated[uuid.UUID, Path(description="The alert's id")]) -> Response:
    row = await (await db.pool()).fetchrow(ALERT_SQL + " WHERE id = $1", alert_id)
    if row is None:
        raise Problem(404, f"No alert {alert_id}.")
    return json_response(_alert(row), headers={"Cache-Control": "public, max-age=60"})
