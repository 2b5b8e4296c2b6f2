"""Evidence: the files owners uploaded for a request, with the owner's sealed texts (opened by the caller, see
owner_texts), and the row each upload adds."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api.owner_texts import EVIDENCE_SEALED_COLUMNS

COLUMNS = (
    "e.id, e.request_id, e.target_id, e.sha256, e.size_bytes, e.media_type, e.camera_id, e.uploaded_at,"
    f" e.deleted_at, e.deleted_reason, {EVIDENCE_SEALED_COLUMNS}"
)
# One item with what an access needs besides: where it is stored, and its request's agency and case.
ACCESS_SQL = (
    f"SELECT {COLUMNS}, e.storage_key, r.agency, r.case_number FROM requests.evidence e"  # noqa: S608 - composed from constants
    " JOIN requests.requests r ON r.id = e.request_id JOIN requests.targets t ON t.id = e.target_id"
    " WHERE e.id = :id"
)


async def of_request(session: AsyncSession, request_id: uuid.UUID) -> list[RowMapping]:
    rows = await session.execute(
        text(
            f"SELECT {COLUMNS} FROM requests.evidence e JOIN requests.targets t ON t.id = e.target_id"  # noqa: S608 - composed from constants; values are bound
            " WHERE e.request_id = :rid ORDER BY e.uploaded_at, e.id"
        ),
        {"rid": request_id},
    )
    return list(rows.mappings().all())


async def one(session: AsyncSession, evidence_id: uuid.UUID) -> RowMapping:
    rows = await session.execute(
        text(
            f"SELECT {COLUMNS} FROM requests.evidence e JOIN requests.targets t ON t.id = e.target_id"  # noqa: S608 - composed from constants; values are bound
            " WHERE e.id = :id"
        ),
        {"id": evidence_id},
    )
    return rows.mappings().one()


async def for_access(session: AsyncSession, evidence_id: uuid.UUID) -> RowMapping | None:
    return (await session.execute(text(ACCESS_SQL), {"id": evidence_id})).mappings().first()


async def add(session: AsyncSession, **values: Any) -> None:
    """The row of an upload: id, rid, tid, sha, size, mt, fn, ofn, cam, desc and key (the file's storage key);
    the texts sealed."""
    await session.execute(
        text(
            "INSERT INTO requests.evidence (id, request_id, target_id, sha256, size_bytes, media_type,"
            " filename_enc, original_filename_enc, camera_id, description_enc, storage_key)"
            " VALUES (:id, :rid, :tid, :sha, :size, :mt, :fn, :ofn, :cam, :desc, :key)"
        ),
        values,
    )
