"""Turning a Search into its answer: a GeoJSON FeatureCollection with `numberReturned`, `timeStamp`,
`numberMatched` (when cheap or asked for) and `self`/`next`/`prev` links — one page of Features built by
PostgreSQL, or streamed when the page is large — with its audit record written before the body leaves (a
streamed page appends two: one before the first byte, one when it ends with the count sent).
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from services.geo_query.service import STREAM_AT, Order, Search, fetch_page, now_rfc3339, stream_page
from shared.geojson import GEOJSON_MEDIA_TYPE, GeoJSONResponse
from shared.pagination import encode_cursor
from shared.settings import get_settings

Key = tuple[float | None, uuid.UUID]
NO_STORE = {"Cache-Control": "no-store"}
# What `urllib.parse.urlsplit` removes from a URL or ends its query at.
_SPLIT_CHANGES = re.compile("[#\t\r\n]")


def public_url(request: Request, path: str) -> str:
    """An absolute URL for `path` on the configured public base URL (never on the request's Host header)."""
    return get_settings().public_base + path


def self_url(request: Request) -> str:
    """The request's own URL on the public base URL. Read from the request's scope as Starlette's `request.url`
    reads it (the path with `?`, `#` and `\\` escaped, the query string as sent), without building and splitting
    a whole URL on every search; a URL that splitting would change (a `#` in the query, a tab or a line break
    anywhere) takes `request.url`."""
    scope = request.scope
    path: str = scope["path"]
    query = scope.get("query_string", b"").decode()
    if _SPLIT_CHANGES.search(query) or _SPLIT_CHANGES.search(path):
        path, query = request.url.path, request.url.query
    else:
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return get_settings().public_base + path + (f"?{query}" if query else "")


def _link(request: Request, rel: str, **params: Any) -> dict[str, str]:
    """`page_link`'s link (the request's URL with `params` replaced, appended last), built from the query
    parameters the request already parsed instead of re-parsing its URL twice: one per page on every search."""
    pairs = [(k, v) for k, v in request.query_params.multi_items() if k not in params]
    pairs += [(k, str(v)) for k, v in params.items() if v is not None]
    prefix = get_settings().public_base + request.url.path
    query = urlencode(pairs)
    return {"href": prefix + ("?" + query if query else ""), "rel": rel, "type": GEOJSON_MEDIA_TYPE}


def cursor_for(order: Order, key: Key, *, prev: bool = False) -> str:
    if order == "distance":
        return encode_cursor({"d": key[0], "id": str(key[1])})
    return encode_cursor({"id": str(key[1]), **({"prev": True} if prev else {})})


def collection_tail(
    request: Request,
    order: Order,
    returned: int,
    first: Key | None,
    last: Key | None,
    has_next: bool,
    has_prev: bool,
    matched: int | None,
    extra_links: list[dict[str, str]],
) -> str:
    """The end of a FeatureCollection's text after its Features: `]`, then counts, time stamp and links."""
    links = [{"href": self_url(request), "rel": "self", "type": GEOJSON_MEDIA_TYPE}, *extra_links]
    if has_next and last is not None:
        links.append(_link(request, "next", cursor=cursor_for(order, last)))
    if has_prev and first is not None:
        links.append(_link(request, "prev", cursor=cursor_for(order, first, prev=True)))
    tail: dict[str, Any] = {"numberReturned": returned, "timeStamp": now_rfc3339(), "links": links}
    if matched is not None:
        tail["numberMatched"] = matched
    return "]," + orjson.dumps(tail).decode()[1:]


HEAD = '{"type":"FeatureCollection","features":['


async def collection(
    request: Request,
    search: Search,
    limit: int,
    order: Order,
    *,
    key: tuple[float, uuid.UUID] | uuid.UUID | None = None,
    paged_from: str | None = None,  # the cursor this page was asked with
    backwards: bool = False,
    count: bool = False,
    extra_links: list[dict[str, str]] | None = None,
) -> Response:
    """The FeatureCollection answering `search`, the page after (or, backwards, before) the cursor's `key`."""
    read_order: Order = "id_desc" if backwards else order
    matched = await search.count() if count else None
    if key is not None:
        search.after(read_order, key)
        search.details["cursor"] = paged_from
    links = extra_links or []

    if limit > STREAM_AT and not search.contacts:
        # A stream sends rows in the order it reads them: a page before the cursor is read forwards, over the
        # range of ids it covers, so that it too comes out ascending.
        before = await search.bound_page_before(limit) if backwards else False
        stream_order: Order = "id" if backwards else read_order

        def tail(returned: int, first: Key | None, last: Key | None, more: bool) -> str:
            if backwards:
                has_next, has_prev = True, before
            else:
                has_next, has_prev = more, paged_from is not None and order != "distance"
            n = matched if matched is not None else (returned if paged_from is None and not more else None)
            return collection_tail(request, order, returned, first, last, has_next, has_prev, n, links)

        search.details["limit"] = limit
        # Audited before the first byte leaves (fail closed, as every search is): a large export is on the
        # trail even if the stream is cut or its closing record cannot be written.
        await search.audit(0, {"streamed": True, "phase": "started"})
        body = stream_page(search, limit, stream_order, HEAD, tail)
        return StreamingResponse(body, media_type=GEOJSON_MEDIA_TYPE, headers=NO_STORE)

    search.details["limit"] = limit
    page = await fetch_page(search, limit, read_order)  # audited before it returns
    if backwards:
        has_next, has_prev = True, page.more
    else:
        has_next, has_prev = page.more, paged_from is not None and order != "distance"
    if matched is None and paged_from is None and not page.more:
        matched = page.returned  # the whole answer is on this page: the count is free
    body_text = (
        HEAD
        + page.body
        + collection_tail(
            request, order, page.returned, page.first, page.last, has_next, has_prev, matched, links
        )
    )
    return GeoJSONResponse(body_text, headers=NO_STORE)
