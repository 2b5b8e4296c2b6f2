"""registry_api's database: one SQLAlchemy async engine on its own connection string, and a plain asyncpg pool
for the one-call registration (`db.pool()`), the service's hot write path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SqlDatabase

db = SqlDatabase("registry_api")

SessionDep = Annotated[AsyncSession, Depends(db.session)]
