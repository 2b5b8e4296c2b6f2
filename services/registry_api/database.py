"""registry_api's database: one SQLAlchemy async engine on its own connection string, and a plain asyncpg pool
for the one-call registration (`db.pool()`), the service's hot write path, which the import's HTTP handlers
(`imports/routes.py`) use too, with its statement timeout.

The pool's statements are few and fixed (registrations.CREATE_CHECK_SQL and CREATE_SQL; the import's reads of
a job, its report and its credentials), each finding its rows by key (the import's purges by an age, whose
plan does not change with the age), so their connections plan them once (a generic plan) instead of on every
execution: PostgreSQL keeps choosing a custom plan for the check, and planning it cost more than running it
(0.2 of 0.3 ms). A statement whose best plan depends on its values does not belong on this pool."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SqlDatabase

db = SqlDatabase("registry_api", pool_settings={"plan_cache_mode": "force_generic_plan"})

SessionDep = Annotated[AsyncSession, Depends(db.session)]
