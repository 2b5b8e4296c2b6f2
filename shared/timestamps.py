"""RFC 3339 instants, read one way for every input of every service: query parameters, body members and the
instants inside paging cursors.

An instant is accepted when it is an RFC 3339 `date-time` with its offset (`2026-11-20T22:15:00Z`,
`2026-11-20T23:15:00.5+01:00`; `T` and `Z` in either case) and when, in UTC, it falls strictly between
0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the span every service can compute with (PostgreSQL's is
wider), less its two ends, which the database driver sends as `-infinity` and `infinity`. It is handed on in UTC, so no code downstream converts it again: converting an instant written at the
calendar's edge with an offset (`0001-01-01T00:00:00+14:00`) is what overflowed. Anything else is bad input: a
422 problem in a query or a body, a 400 in a cursor (which only this service writes). Numbers (Unix times),
dates without a time, times without an offset and leap seconds are refused, not guessed at.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

# The offset's hours and minutes are checked here: the standard library reads `+00:99` as a 99-minute offset.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)
EXAMPLE = "2026-11-20T22:15:00Z"
RANGE = "strictly between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
_ENDS = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


def parse_instant(value: Any) -> datetime:
    """The UTC instant `value` names (an RFC 3339 string, or an aware datetime); ValueError with the reason a
    client can act on otherwise."""
    if isinstance(value, str):
        if len(value) > 64 or not _RFC3339.fullmatch(value):
            raise ValueError(f"give an RFC 3339 instant with its offset, e.g. {EXAMPLE}")
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError as exc:  # a month 13, a 30 February, an hour 24, a leap second
            raise ValueError(f"not a date and time of the calendar: {value}") from exc
    elif isinstance(value, datetime):
        parsed = value
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValueError(f"give an RFC 3339 instant with its offset, e.g. {EXAMPLE}")
    else:
        raise ValueError(f"give an RFC 3339 instant as a string, e.g. {EXAMPLE}")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"in UTC this instant must fall {RANGE}") from exc
    if utc in _ENDS:
        raise ValueError(f"in UTC this instant must fall {RANGE}")
    return utc


# An instant in a query parameter or a body member: validated by `parse_instant` (errors become the service's 422
# problem), documented as `type: string, format: date-time`.
Instant = Annotated[datetime, BeforeValidator(parse_instant)]
