"""The owners a request asks (its targets): the lock an owner's answer or upload takes on theirs."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock(session: AsyncSession, target_id: uuid.UUID) -> str:
    """Hold the target until the transaction ends (FOR UPDATE); its state as it is now."""
    return (  # type: ignore[no-any-return]
        await session.execute(
            text("SELECT state FROM requests.targets WHERE id = :id FOR UPDATE"), {"id": target_id}
        )
    ).scalar_one()
