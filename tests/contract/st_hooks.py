"""schemathesis hooks: serializers for the media types Canvass accepts that schemathesis does not know."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/geo+json-seq")
def geojson_text_sequence(ctx: Any, value: Any) -> bytes:
    """RFC 8142: each JSON text preceded by RS and followed by LF."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    items = value if isinstance(value, list) else [value]
    return b"".join(b"\x1e" + _json(item) + b"\n" for item in items)


@schemathesis.serializer("text/csv")
def csv_text(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return _json(value)


def _json(value: Any) -> bytes:
    # The standard library's encoder: a generated integer may exceed 64 bits, which orjson refuses.
    return json.dumps(value, default=str).encode("utf-8", "surrogatepass")
