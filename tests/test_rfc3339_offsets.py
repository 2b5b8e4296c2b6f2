"""An instant's offset is RFC 3339's `time-numoffset`: hours 00–23 and minutes 00–59. One with minutes past 59
(`+00:60`, `+00:99`) is no offset at all, refused like any other malformed instant rather than read as another
offset (`+00:99` as +01:39), in a query as in a body (shared/timestamps.py reads both)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from shared.timestamps import parse_instant
from tests.conftest import Token

MALFORMED = [
    "2026-11-20T22:15:00+00:60",
    "2026-11-20T22:15:00+00:99",
    "2026-11-20T22:15:00-00:75",
    "2026-11-20T22:15:00+23:60",
]
WELL_FORMED = {
    "2026-11-20T22:15:00+23:59": datetime(2026, 11, 19, 22, 16, tzinfo=UTC),
    "2026-11-20T22:15:00-12:00": datetime(2026, 11, 21, 10, 15, tzinfo=UTC),
    "2026-11-20T22:15:00+14:00": datetime(2026, 11, 20, 8, 15, tzinfo=UTC),
}


@pytest.mark.parametrize("value", MALFORMED)
def test_an_offset_with_minutes_past_59_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_instant(value)


def test_offsets_within_their_range_are_read() -> None:
    assert {v: parse_instant(v) for v in WELL_FORMED} == WELL_FORMED


def test_a_query_instant_with_minutes_past_59_in_its_offset_is_a_problem(
    registry: httpx.Client, auth: Token, slug: str
) -> None:
    admin = auth("agency_admin", slug)
    jurisdiction = {"type": "Polygon", "coordinates": [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0.1], [0, 0]]]}
    made = registry.post(
        "/v1/agencies", json={"slug": slug, "name": "Offsets", "jurisdiction": jurisdiction}, headers=admin
    )
    assert made.status_code == 201, made.text
    auditor = auth("auditor", slug)
    ok = registry.get("/v1/audit/records", params={"since": "2026-11-20T22:15:00+01:00"}, headers=auditor)
    assert ok.status_code == 200, ok.text
    for value in MALFORMED:
        r = registry.get("/v1/audit/records", params={"since": value}, headers=auditor)
        assert 400 <= r.status_code < 500 and r.headers["content-type"] == "application/problem+json", (
            value,
            r.text,
        )
