"""Management credentials: rotation by the owner, and re-issue of a lost credential through the verified email.

A re-issue request never says whether the address is registered: the answer is the same either way, and it is
given before any look-up (the codes and mails are made after it, off the request's path), so it costs the same
either way too. The one-time token in the mail is stored only as a hash, expires after an hour, and redeeming it
replaces the credential (the old one stops working) and voids the registration's other tokens. Wrong codes count
towards the guess limits (see abuse).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, BackgroundTasks
from sqlalchemy import text

from services.registry_api import abuse
from services.registry_api.auditing import audit, owner_actor
from services.registry_api.database import SessionDep, db
from services.registry_api.dependencies import NoStore
from services.registry_api.notices import send_quietly
from services.registry_api.repository import registrations as repo
from services.registry_api.schemas import (
    Accepted,
    CredentialOut,
    CredentialResetRedeem,
    CredentialResetRequest,
)
from services.registry_api.sealing import email_indexes
from services.registry_api.shapes import iso
from shared.auth import CurrentOwner, format_owner_credential, hash_secret, new_owner_credential
from shared.errors import Problem, problem_responses
from shared.logging import request_id_var
from shared.settings import get_settings

log = logging.getLogger("canvass.registry.credentials")
router = APIRouter(tags=["credentials"], dependencies=[NoStore, abuse.RememberClient])

RESET_PREFIX = "cvr_"
MAX_MAILS = 10
ACCEPTED = (
    "If a registration uses this address, a message with a one-time code is on its way. "
    "The code works once, within an hour."
)
CREDENTIAL_EXAMPLE = {
    "registration_id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "credential": "cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3...secret",
    "issued_at": "2026-11-21T15:00:00Z",
}


async def _issue(session: Any, rid: uuid.UUID) -> dict[str, Any]:
    cred = new_owner_credential(rid)
    issued_at = await repo.replace_credential(session, rid, cred.secret_hash)
    return {
        "registration_id": str(rid),
        "credential": format_owner_credential(cred),
        "issued_at": iso(issued_at),
    }


@router.post(
    "/v1/registrations/{registration_id}/credential",
    summary="Rotate your management credential (the old one stops working; the new one is shown once)",
    response_model=CredentialOut,
    responses={
        200: {"content": {"application/json": {"example": CREDENTIAL_EXAMPLE}}},
        **problem_responses(401, 429, 404),
    },
)
async def rotate_credential(registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep) -> Any:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    out = await _issue(session, row["id"])
    await audit(
        session,
        "registration.credential.rotate",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=row["agency"],
        subject_id=row["id"],
    )
    await session.commit()
    return out


@router.post(
    "/v1/credential-resets",
    summary="Lost your credential? Ask for a one-time code at the registration's email",
    status_code=202,
    response_model=Accepted,
    responses={
        202: {"content": {"application/json": {"example": {"status": "accepted", "detail": ACCEPTED}}}}
    },
)
async def request_reset(body: CredentialResetRequest, background: BackgroundTasks) -> Any:
    # Nothing is looked up before the answer: it goes out at once, the same for a registered address and an
    # unknown one, and the work (the look-up, the codes, the mails) is done after it, off the request's path.
    background.add_task(_issue_reset_codes, body.email)
    return {"status": "accepted", "detail": ACCEPTED}


async def _issue_reset_codes(email: str) -> None:
    try:
        async with db.sessions() as session:
            # Done after the answer, the work's transaction names the request it serves (`pg_stat_activity`'s
            # application_name, until it ends): the one place to find this reset's session, for an operator and
            # for the tests that wait for it to settle.
            await session.execute(
                text(
                    "SELECT set_config('application_name', current_setting('application_name') || :tag, true)"
                ),
                {"tag": f" reset {request_id_var.get()}"},
            )
            mails = await _reset_codes(session, email)
            await session.commit()
    except Exception as exc:  # the owner asks again; nothing was promised but an attempt
        log.warning("credential reset not issued: %s", type(exc).__name__)
        return
    for mail in mails:
        await send_quietly(*mail)


async def _reset_codes(session: Any, email: str) -> list[tuple[str, str, str]]:
    """A code for each registration using the address (none within the cool-down): the mails to send once the
    codes are committed.

    Each registration is locked as it is found (FOR UPDATE): an email change waiting on it, or holding it, goes
    first, and the row is looked at again as it is after that change (PostgreSQL re-checks the condition on the
    newest version of a row it had to wait for), so a registration whose address changed meanwhile gets no code.
    Without the lock, a code looked up under the old address would be written after the change deleted the
    pending ones, and mailed to the old address."""
    rows = await repo.registrations_to_reset(session, email_indexes(email), MAX_MAILS)
    mails = []
    for rid, agency_name in rows:
        token = RESET_PREFIX + secrets.token_urlsafe(32)
        await repo.add_reset(session, rid, hash_secret(token))
        mails.append(
            (email, "Your camera registration: a new management credential", _mail(agency_name, rid, token))
        )
    return mails


def _mail(agency_name: str, rid: uuid.UUID, token: str) -> str:
    base = get_settings().public_base
    return (
        f"Someone asked for a new management credential for your camera registration with {agency_name} "
        f"(registration {rid}).\n\n"
        "If it was you, use this one-time code within an hour:\n\n"
        f"    {token}\n\n"
        f'(POST it as {{"token": "..."}} to {base}/v1/credential-resets/redeem, or paste it into the '
        "registry's web page.) Your old credential stops working when the new one is issued.\n\n"
        "If it was not you, ignore this message: nothing changes.\n"
    )


@router.post(
    "/v1/credential-resets/redeem",
    summary="Exchange the emailed one-time code for a new management credential",
    response_model=CredentialOut,
    responses={
        200: {"content": {"application/json": {"example": CREDENTIAL_EXAMPLE}}},
        **problem_responses(400, 429),
    },
)
async def redeem_reset(body: CredentialResetRedeem, session: SessionDep) -> Any:
    await abuse.attempt()
    rid = await repo.use_reset(session, hash_secret(body.token))
    if rid is None:
        raise Problem(
            400,
            "This code is not valid: it was used already, has expired, or was never issued.",
            kind="invalid-reset-code",
        )
    await abuse.succeeded()
    out = await _issue(session, rid)
    await audit(
        session, "registration.credential.reissue", actor=owner_actor(rid), role="owner", subject_id=rid
    )
    await session.commit()
    return out
