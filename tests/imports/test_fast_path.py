"""The plain-Python fast path of the import's validation gives exactly what the single registration's models
give: for each case it either declines (the models then decide and word the rejection) or returns the very
values validating the models would."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry_api.imports.features import Program, Valid, fast_feature, positions, validate_feature
from services.registry_api.imports.formats import RawFeature

AGENCY = uuid.UUID("00000000-0000-4000-8000-000000000001")
PROGRAM = Program(agency_id=AGENCY, slug="prog-pd", agencies={"prog-pd": AGENCY}, csv=False)
POINT = {"type": "Point", "coordinates": [-87.9, 43.0]}
BASE = {"external_id": "x-1", "contact_email": "dana@example.org"}

CASES: list[tuple[dict[str, Any], Any]] = [
    ({}, POINT),
    ({"email": "Dana@Example.ORG"}, POINT),
    ({"contact_email": "POSTMASTER@example.org"}, POINT),
    ({"contact_email": " dana@example.org "}, POINT),
    ({"contact_email": "dana@localhost"}, POINT),
    ({"contact_email": "dana@@example.org"}, POINT),
    ({"contact_email": "a@b\u00fccher.ch"}, POINT),
    ({"contact_email": None}, POINT),
    ({"contact_email": 5}, POINT),
    ({"contact_email": "x" * 65 + "@example.org"}, POINT),
    ({"email": "a@example.org", "contact_email": "b@example.org"}, POINT),
    ({"owner_kind": "business", "business_name": "Water Street Bakery"}, POINT),
    ({"owner_kind": "castle"}, POINT),
    ({"owner_kind": None}, POINT),
    ({"business_name": " padded "}, POINT),
    ({"business_name": ""}, POINT),
    ({"business_name": "b" * 200}, POINT),
    ({"business_name": "b" * 201}, POINT),
    ({"business_name": "nul\x00"}, POINT),
    ({"business_name": "caf\u00e9"}, POINT),
    ({"business_name": "\ud800"}, POINT),
    ({"business_name": 12}, POINT),
    ({"business_name": None}, POINT),
    ({"address": "123 N Water St"}, POINT),
    ({"notes_for_investigators": "n" * 2000}, POINT),
    ({"notes_for_investigators": "n" * 2001}, POINT),
    ({"contact_name": "Dana", "name": "Dana"}, POINT),
    ({"name": "Dana Rivera"}, POINT),
    ({"contact_hours": "after 5"}, POINT),
    ({"preferred_method": "sms"}, POINT),
    ({"contact_preferred_method": "pigeon"}, POINT),
    ({"direction_deg": 0, "fov_deg": 360, "retention_days": 3650}, POINT),
    ({"direction_deg": 359, "fov_deg": 1, "retention_days": 0}, POINT),
    ({"direction_deg": 360}, POINT),
    ({"direction_deg": -1}, POINT),
    ({"direction_deg": True}, POINT),
    ({"direction_deg": 90.0}, POINT),
    ({"direction_deg": "90"}, POINT),
    ({"fov_deg": 0}, POINT),
    ({"range_m": 12}, POINT),
    ({"range_m": 12.5}, POINT),
    ({"range_m": 0}, POINT),
    ({"range_m": 1000.0}, POINT),
    ({"range_m": 1000.5}, POINT),
    ({"range_m": False}, POINT),
    ({"placement": "indoor", "recording": "scheduled", "schedule": "nights"}, POINT),
    ({"placement": "roof"}, POINT),
    ({"recording": None}, POINT),
    ({"live_mode": "emergency", "shares_history": False}, POINT),
    ({"live_mode": "always"}, POINT),
    ({"shares_history": 1}, POINT),
    ({"covers": ["street", "sidewalk"]}, POINT),
    ({"covers": []}, POINT),
    ({"covers": [""]}, POINT),
    ({"covers": [" street"]}, POINT),
    ({"covers": ["c"] * 13}, POINT),
    ({"label": "front door"}, POINT),
    ({"label": "l" * 101}, POINT),
    ({"live_endpoint": "rtsps://cam.example.net/1"}, POINT),
    ({"contact_phone": "(414) 555-0123"}, POINT),
    ({"colour": "blue"}, POINT),
    ({"agency": "prog-pd"}, POINT),
    ({"external_id": " spaced "}, POINT),
    ({"external_id": 17}, POINT),
    ({"external_id": ""}, POINT),
    ({"external_id": "e" * 201}, POINT),
    ({}, {"type": "Point", "coordinates": [-87.9, 43.0, 180.0]}),
    ({}, {"type": "Point", "coordinates": [-87, 43]}),
    ({}, {"type": "Point", "coordinates": [-181.0, 43.0]}),
    ({}, {"type": "Point", "coordinates": [-87.9, 91.0]}),
    ({}, {"type": "Point", "coordinates": [-87.9]}),
    ({}, {"type": "Point", "coordinates": [-87.9, 43.0], "bbox": [-87.9, 43.0, -87.9, 43.0]}),
    ({}, {"type": "Point", "coordinates": [-87.9, True]}),
    ({}, {"type": "LineString", "coordinates": [[-87.9, 43.0], [-87.8, 43.1]]}),
    ({}, None),
]


def both(props: dict[str, Any], geometry: Any) -> tuple[Valid | None, Any]:
    body = {**BASE, **props}
    raws = [RawFeature(0, 1, copy.deepcopy(body), copy.deepcopy(geometry)) for _ in range(2)]
    for raw in raws:
        positions(raw)  # what validate_chunk does to every feature first
    return fast_feature(raws[0], PROGRAM), validate_feature(raws[1], PROGRAM)


@pytest.mark.parametrize(("props", "geometry"), CASES)
def test_fast_path_declines_or_agrees_with_the_models(props: dict[str, Any], geometry: Any) -> None:
    fast, slow = both(props, geometry)
    if fast is not None:
        assert isinstance(slow, Valid), f"the fast path accepted what the models refuse: {slow}"
        assert fast == slow


def test_fast_path_takes_the_plain_features() -> None:
    taken = [both(p, g)[0] is not None for p, g in CASES]
    assert sum(taken) >= 25  # the common shapes do take the fast path
    plain = {
        "owner_kind": "business",
        "business_name": "Business 7",
        "contact_email": "owner7@import.example.org",
        "direction_deg": 271,
        "fov_deg": 110,
        "range_m": 25.0,
        "placement": "outdoor",
        "retention_days": 30,
        "recording": "motion",
        "live_mode": "on_alert",
    }
    assert both(plain, POINT)[0] is not None


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 4000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["outdoor", "indoor", "motion", "never", "on_alert", "business", "a@example.org", " x"]),
    st.lists(st.text(max_size=3), max_size=3),
)
KEYS = st.sampled_from(
    [
        "owner_kind",
        "business_name",
        "contact_email",
        "email",
        "name",
        "direction_deg",
        "fov_deg",
        "range_m",
        "placement",
        "retention_days",
        "recording",
        "live_mode",
        "shares_history",
        "covers",
        "label",
        "schedule",
        "preferred_method",
        "contact_hours",
        "address",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), st.floats(-200, 200), st.floats(-100, 100))
def test_fast_path_agrees_on_random_features(props: dict[str, Any], lon: float, lat: float) -> None:
    fast, slow = both(props, {"type": "Point", "coordinates": [lon, lat]})
    if fast is not None:
        assert isinstance(slow, Valid) and fast == slow
