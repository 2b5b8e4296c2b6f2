"""geo_query's application: cameras near a point, in a polygon or bbox, nearest K; OGC API – Features."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.geo_query import cameras, coverage, ogc, route, tiles
from services.geo_query.database import db, replica_lag
from services.geo_query.routing import install_lean_dispatch, prepare
from shared.app import create_app
from shared.auth import AGENCY_EXISTS_SQL
from shared.compression import install_compression
from shared.db import pooled
from shared.keystore import close_keystore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await db.open()
    yield
    await close_keystore()
    await db.close()


async def db_revision() -> str | None:
    async with pooled(db.read) as conn:
        return await conn.fetchval("SELECT version_num FROM public.alembic_version")  # type: ignore[no-any-return]


async def agency_known(slug: str) -> bool:
    async with pooled(db.read) as conn:
        return bool(await conn.fetchval(AGENCY_EXISTS_SQL, slug))


app = create_app(
    service="geo_query",
    title="Canvass geo query API",
    description=(
        "Read-only spatial questions over the camera registry, scoped to the caller's agency and audited: "
        "radius, polygon, bbox and nearest K as GeoJSON, and an OGC API – Features collection."
    ),
    lifespan=lifespan,
    agency_known=agency_known,
    db_revision=db_revision,
    replica_lag=replica_lag,
    routers=[cameras.router, route.router, ogc.router, tiles.router, coverage.router, coverage.tiles_router],
    tags=[
        {
            "name": cameras.TAG,
            "description": "Cameras near a point, the nearest K, in a bbox or a polygon: scoped to the caller's"
            " agency, filtered, audited, as GeoJSON",
        },
        {"name": ogc.TAG, "description": "The registry as an OGC API – Features (Part 1 core) collection"},
        {
            "name": tiles.TAG,
            "description": "The cameras shared with the caller's agency as Mapbox Vector Tiles, and their TileJSON",
        },
        {
            "name": coverage.TAG,
            "description": "Cameras per hexagonal cell: the public, privacy-safe map of a program (also as vector tiles)"
            " and the agency's own",
        },
    ],
)
install_compression(app)
# The searches' plans, with the app's dependencies: a route that cannot be lean stops the service here.
prepare(app)
# ...and answered from inside the middleware, past FastAPI's router (see services/geo_query/routing.py).
install_lean_dispatch(app)
