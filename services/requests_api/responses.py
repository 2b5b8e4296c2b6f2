"""JSON answers of requests_api: orjson with RFC 3339 UTC timestamps ("Z"), and their documented examples (ETags and
If-Match: shared/concurrency.py)."""

from __future__ import annotations

from typing import Any

import orjson

from shared.geojson import JSONResponse


def _default(value: Any) -> str:
    # asyncpg's own UUID type (and Decimal) are not orjson's: their text form is the JSON one.
    return str(value)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    body = orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)
    return JSONResponse(body, status_code=status, headers=headers)


def example(
    status: int, value: Any, description: str = "OK", model: Any = None
) -> dict[int | str, dict[str, Any]]:
    """A documented response with its example; `model` gives its schema when it is not the route's main one."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"example": value}},
    }
    if model is not None:
        response["model"] = model
    return {status: response}
