"""The request headers of conditional and retried writes, the same in every service: `If-Match` (optimistic
concurrency on updates: 412 when stale) and `Idempotency-Key` (a retried create answers as the first one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag you last read, e.g. "3"; a stale one is refused with 412',
        examples=['"3"'],
    ),
]


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
