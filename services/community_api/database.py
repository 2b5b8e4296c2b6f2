"""community_api's database: the engine (readiness) and the asyncpg pool every route's SQL runs on."""

from __future__ import annotations

from shared.db import SqlDatabase

db = SqlDatabase("community_api")
