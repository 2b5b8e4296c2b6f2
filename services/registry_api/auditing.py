"""registry_api's audit records: each written in the transaction of the change it records (shared/audit.py),
with the actor's role and, for an owner, the registration's id as the owner's pseudonym."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api.sealing import SERVICE
from shared.audit import AuditEvent, append_session
from shared.auth import Principal


def owner_actor(rid: uuid.UUID) -> str:
    # The registration id is the owner's pseudonym: after deletion nothing links it to a person.
    return f"owner:{rid}"


def audit_event(
    action: str,
    *,
    actor: str,
    role: str,
    agency: str | None = None,
    subject_type: str = "registration",
    subject_id: uuid.UUID | str | None = None,
    case_number: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        service=SERVICE,
        actor=actor,
        actor_role=role,
        action=action,
        agency=agency,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        case_number=case_number,
        details=details or {},
    )


async def audit(
    session: AsyncSession,
    action: str,
    *,
    actor: str,
    role: str,
    agency: str | None = None,
    subject_type: str = "registration",
    subject_id: uuid.UUID | str | None = None,
    case_number: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit record in the session's transaction (it commits with the change it records)."""
    await append_session(
        session,
        audit_event(
            action,
            actor=actor,
            role=role,
            agency=agency,
            subject_type=subject_type,
            subject_id=subject_id,
            case_number=case_number,
            details=details,
        ),
    )


def principal_role(principal: Principal, preferred: Sequence[str]) -> str:
    for r in preferred:
        if r in principal.roles:
            return r
    return sorted(principal.roles)[0] if principal.roles else "none"
