"""Pagination shared by every listing: a clamped `limit`, opaque keyset cursors, and `next`/`prev` links."""

from __future__ import annotations

import base64
import math
import re
from typing import Annotated, Any

import orjson
from fastapi import Query, Request
from starlette.datastructures import URL

from shared.errors import invalid
from shared.settings import get_settings
from shared.timestamps import parse_instant

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def clamp_limit(limit: int | None, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """OGC API – Features: a limit above the maximum is clamped, not refused."""
    if limit is None:
        return default
    return max(1, min(limit, maximum))


LimitQuery = Annotated[
    int | None,
    Query(
        ge=1, description=f"Maximum number of items (default {DEFAULT_LIMIT}; above {MAX_LIMIT} is clamped)"
    ),
]


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


_CURSOR = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)


def decode_cursor(
    cursor: str,
    keys: tuple[str, ...],
    *,
    numeric: tuple[str, ...] = (),
    times: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The values a cursor this service issued carries: each of `keys` a string (no NUL, short), a finite number
    for the keys in `numeric`, or for those in `times` an RFC 3339 instant (returned as a datetime in UTC, read by
    the one timestamp parser) that PostgreSQL can hold; each of `flags`, when there, true. Anything else is a 400,
    never an error deeper down.

    The cursor must be exactly what `encode_cursor` writes: base64url without padding, of the JSON orjson writes,
    holding those members and no other. It travels on, verbatim, into a search's audit record: lenient base64
    skips characters outside its alphabet, and JSON takes a member of its own or a member given twice (the first
    one dropped), so a cursor with NULs appended, or with words beside its position, would otherwise be kept for
    good in the permanent trail."""
    refused = invalid("/query/cursor", "not a cursor this service issued", status=400, code="cursor_invalid")
    if not _CURSOR.fullmatch(cursor):
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise refused from exc
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != cursor:  # unused trailing bits set
        raise refused
    if not isinstance(data, dict) or orjson.dumps(data) != raw:
        raise refused
    if not set(data) <= {*keys, *numeric, *times, *flags} or any(
        data.get(f, True) is not True for f in flags
    ):
        raise refused
    for key in keys:
        value = data.get(key)
        if key in numeric:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str) and 0 < len(value) <= 200 and "\x00" not in value
        if not ok:
            raise refused
    for key in times:
        if not isinstance(data.get(key), str):
            raise refused
        try:
            data[key] = parse_instant(data[key])
        except ValueError as exc:
            raise refused from exc
    return data


def page_link(request: Request, rel: str, media_type: str, **params: Any) -> dict[str, str]:
    """A link to this operation with `params` replaced: on the configured public base URL, never on the Host the
    request named."""
    url = URL(
        get_settings().public_base + request.url.path + ("?" + request.url.query if request.url.query else "")
    )
    url = url.remove_query_params([k for k in params])
    url = url.include_query_params(**{k: v for k, v in params.items() if v is not None})
    return {"href": str(url), "rel": rel, "type": media_type}
