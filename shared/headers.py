"""The request headers of conditional and retried writes, the same in every service: `If-Match` (optimistic
concurrency on updates: 412 when stale) and `Idempotency-Key` (a retried create answers as the first one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

_IF_MATCH = 'The ETag you last read, e.g. "3"; a stale one is refused with 412'
IfMatch = Annotated[str | None, Header(alias="If-Match", description=_IF_MATCH, examples=['"3"'])]


def _if_match(request: Request) -> str | None:
    return request.headers.get("if-match")


# An update that answers 428 without If-Match: the header is read here (so its absence reaches the route, which
# says 428 and why, rather than a generic 422), and declared required by the operation's `openapi_extra`.
RequiredIfMatch = Annotated[str | None, Depends(_if_match)]
IF_MATCH_REQUIRED: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-Match",
            "in": "header",
            "required": True,
            "description": _IF_MATCH + "; without it the update is refused with 428",
            "schema": {"type": "string", "minLength": 1},
            "example": '"3"',
        }
    ]
}


def idempotency_key(description: str, example: str) -> Any:
    """An `Idempotency-Key` header whose description says what a retry with the same key gets."""
    return Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description=description,
            examples=[example],
        ),
    ]
