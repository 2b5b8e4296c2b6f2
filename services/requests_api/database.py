"""requests_api's database: one SQLAlchemy async engine on its own connection string."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SqlDatabase

db = SqlDatabase("requests_api")

SessionDep = Annotated[AsyncSession, Depends(db.session)]
