"""JSON answers of community_api: orjson with RFC 3339 UTC timestamps ("Z")."""

from __future__ import annotations

from typing import Any

import orjson

from shared.geojson import GEOJSON_MEDIA_TYPE, JSONResponse


def _default(value: Any) -> str:
    # asyncpg's own UUID type is not orjson's: its text form is the JSON one.
    return str(value)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None, *, geojson: bool = False
) -> JSONResponse:
    body = orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
    return JSONResponse(
        body, status_code=status, headers=headers, media_type=GEOJSON_MEDIA_TYPE if geojson else None
    )
