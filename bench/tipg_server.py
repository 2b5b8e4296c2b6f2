"""tipg (PyPI, the peer: FastAPI + asyncpg OGC API – Features) serving the same `registry.cameras` table, with
the same public properties geo_query returns, one uvicorn worker, its defaults otherwise. It has no
authentication, no agency scoping and no audit: it is the bar geo_query must clear by 10 × on bbox-100."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from bench.servers import Server, uvicorn
from bench.settings import WORK
from bench.tools import ensure_tipg

COLLECTION = "registry.cameras"
PROPERTIES = [
    "id",
    "geom",
    "registration_id",
    "label",
    "owner_kind",
    "placement",
    "direction_deg",
    "fov_deg",
    "range_m",
    "covers",
    "retention_days",
    "recording",
    "shares_history",
    "live_mode",
]


@contextmanager
def tipg(database_url: str) -> Iterator[Server]:
    python = ensure_tipg()
    env = {
        "DATABASE_URL": database_url,
        "TIPG_DB_SCHEMAS": json.dumps(["registry"]),
        "TIPG_DB_TABLES": json.dumps([COLLECTION]),
        "TIPG_TABLE_CONFIG__registry_cameras__PK": "id",
        "TIPG_TABLE_CONFIG__registry_cameras__GEOMCOL": "geom",
        "TIPG_TABLE_CONFIG__registry_cameras__PROPERTIES": json.dumps(PROPERTIES),
        "TIPG_DB_SPATIAL_EXTENT": "false",
        "TIPG_DB_DATETIME_EXTENT": "false",
        "TIPG_CATALOG_TTL": "3600",
    }
    # Its working directory is the bench's, so tipg reads no `.env` of the project.
    with uvicorn("tipg", python, "tipg.main:app", env, "/healthz", cwd=WORK) as server:
        yield server
