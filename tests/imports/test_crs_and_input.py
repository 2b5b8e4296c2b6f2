"""Projected input lands at the right WGS84 points; bad input ends in a clear job error or a 4xx, never a 500."""

from __future__ import annotations

import codecs
import uuid
from typing import Any

import httpx
import orjson
import pytest
from pyproj import Transformer

from tests.conftest import Token
from tests.imports.conftest import (
    CSV,
    GEOJSON,
    SEQ,
    Importer,
    collection,
    feature,
    feature_at,
    report,
    sequence,
    spread,
)
from tests.registry.conftest import NewAgency


def test_state_plane_csv_lands_at_the_right_wgs84_points(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    # A box in Manhattan: EPSG:2263 is New York Long Island State Plane, US feet.
    a = new_agency()
    db.execute(
        "UPDATE registry.agencies SET jurisdiction = ST_Multi(ST_MakeEnvelope(-74.05, 40.68, -73.90, 40.82, 4326))"
        " WHERE id = $1",
        uuid.UUID(a.id),
    )
    to_sp = Transformer.from_crs("EPSG:4326", "EPSG:2263", always_xy=True)
    points = [(-73.9857, 40.7484), (-74.0445, 40.6892 + 0.001), (-73.9680, 40.7851)]
    rows = ["external_id,x,y,email"]
    for i, (lon, lat) in enumerate(points):
        x, y = to_sp.transform(lon, lat)
        rows.append(f"sp-{i},{x:.3f},{y:.3f},sp{i}@example.org")
    job = run_import(a, ("\n".join(rows) + "\n").encode(), CSV, crs="EPSG:2263")
    assert job["status"] == "succeeded" and job["counts"]["created"] == 3, job
    got = db.fetch(
        "SELECT external_id, ST_X(location) AS lon, ST_Y(location) AS lat FROM registry.registrations"
        " WHERE agency_id = $1 ORDER BY external_id",
        uuid.UUID(a.id),
    )
    for r, (lon, lat) in zip(got, points, strict=True):
        assert abs(r["lon"] - lon) < 1e-7 and abs(r["lat"] - lat) < 1e-7


def test_legacy_crs_member_is_honoured_and_a_conflicting_one_refused(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    a = new_agency()
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    lon, lat = a.inside()
    x, y = to_merc.transform(lon, lat)
    body = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
        "features": [feature(x, y, "merc-1")],
    }
    job = run_import(a, orjson.dumps(body))
    assert job["status"] == "succeeded", job
    r = db.fetch(
        "SELECT ST_X(location) AS lon, ST_Y(location) AS lat FROM registry.registrations WHERE agency_id = $1",
        uuid.UUID(a.id),
    )[0]
    assert abs(r["lon"] - lon) < 1e-7 and abs(r["lat"] - lat) < 1e-7
    job = run_import(a, orjson.dumps(body), crs="EPSG:2263")
    assert job["status"] == "failed" and "EPSG::3857" in job["error"], job


def test_unknown_crs_and_wrong_content_type_are_4xx_problems(
    registry: httpx.Client, new_agency: NewAgency, auth: Token
) -> None:
    a = new_agency()
    h = auth("integrator", a.slug)
    r = registry.post(
        "/v1/imports", content=b"{}", params={"crs": "EPSG:999999"}, headers={**h, "Content-Type": GEOJSON}
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert "EPSG:999999" in r.json()["detail"]
    r = registry.post("/v1/imports", content=b"<xml/>", headers={**h, "Content-Type": "application/xml"})
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = registry.post("/v1/imports", content=b"", headers={**h, "Content-Type": GEOJSON})
    assert r.status_code == 400
    r = registry.post(
        "/v1/imports", content=b"{}", params={"mode": "some"}, headers={**h, "Content-Type": GEOJSON}
    )
    assert r.status_code == 400


def test_malformed_json_mid_stream_fails_the_job_with_its_line_and_writes_nothing(
    new_agency: NewAgency, run_import: Importer, db: Any
) -> None:
    a = new_agency()
    good = b",\n".join(orjson.dumps(f) for f in spread(a, 50))
    body = b'{"type":"FeatureCollection","features":[\n' + good + b',\n{"type": "Feature", "geometry": {]\n]}'
    job = run_import(a, body, mode="valid")
    assert job["status"] == "failed" and "line 52" in job["error"] and "malformed JSON" in job["error"], job
    assert (
        db.fetchval("SELECT count(*) FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id)) == 0
    )


def test_nan_a_huge_record_and_a_broken_record_are_rejected_features_in_a_sequence(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, auth: Token
) -> None:
    a = new_agency()
    good = spread(a, 3)
    body = (
        sequence(good[:1])
        + b'\x1e{"type":"Feature","geometry":{"type":"Point","coordinates":[NaN, 1]},"properties":{}}\n'
        + b'\x1e{"type":"Feature","properties":{"external_id":"x","notes_for_investigators":"'
        + b"a" * (2 << 20)
        + b'"}}\n'
        + b"\x1e{not json}\n"
        + sequence(good[1:])
    )
    job = run_import(a, body, SEQ, mode="valid")
    assert (
        job["status"] == "succeeded" and job["counts"]["created"] == 3 and job["counts"]["rejected"] == 3
    ), job
    reasons = {r["index"]: r["reason"] for r in report(registry, auth, a, job)["rejected"]}
    assert sorted(reasons) == [1, 2, 3] and "larger than" in reasons[2] and "JSON" in reasons[3]


def test_nan_in_a_feature_collection_rejects_that_feature(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, auth: Token
) -> None:
    a = new_agency()
    lon, lat = a.inside()
    body = (
        collection([feature(lon, lat, "n-1")])[:-2]
        + b',{"type":"Feature","geometry":{"type":"Point","coordinates":[NaN,'
        + str(lat).encode()
        + b']},"properties":{"external_id":"n-2","contact_email":"a@example.org"}}]}'
    )
    job = run_import(a, body, mode="valid")
    assert job["status"] == "succeeded" and job["counts"]["created"] == 1, job
    rej = report(registry, auth, a, job)["rejected"]
    assert [r["index"] for r in rej] == [1] and "NaN" in rej[0]["reason"]


def test_csv_without_needed_columns_or_with_unknown_ones_fails_clearly(
    new_agency: NewAgency, run_import: Importer
) -> None:
    a = new_agency()
    job = run_import(a, b"id,lon,lat\n1,2,3\n", CSV)
    assert job["status"] == "failed" and "external_id" in job["error"], job
    job = run_import(a, b"external_id,lon,lat,email,colour\n1,2,3,a@example.org,blue\n", CSV)
    assert job["status"] == "failed" and "colour" in job["error"], job
    job = run_import(a, b"external_id,x,y,email\n1,2,3,a@example.org\n", CSV)
    assert job["status"] == "failed" and "crs" in job["error"], job
    job = run_import(a, b"\xff\xfe\x00garbage", CSV)
    assert job["status"] == "failed" and "UTF-8" in job["error"], job


def test_a_feature_that_is_not_a_feature_collection_fails_clearly(
    new_agency: NewAgency, run_import: Importer
) -> None:
    a = new_agency()
    job = run_import(a, orjson.dumps(feature_at(a.inside(), "single")))
    assert job["status"] == "failed" and "not a FeatureCollection" in job["error"], job
    job = run_import(a, b"[1, 2]")
    assert job["status"] == "failed" and "FeatureCollection" in job["error"], job


def _newline_delimited(features: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(f) + b"\n" for f in features)


def _csv(features: list[dict[str, Any]]) -> bytes:
    rows = ["external_id,lon,lat,email"]
    for f in features:
        lon, lat = f["geometry"]["coordinates"]
        rows.append(f"{f['properties']['external_id']},{lon},{lat},{f['properties']['contact_email']}")
    return ("\r\n".join(rows) + "\r\n").encode()


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        (GEOJSON, collection),
        (SEQ, sequence),  # RFC 8142: RS before each record
        (SEQ, _newline_delimited),  # one Feature per line
        (CSV, _csv),
    ],
    ids=["feature-collection", "rs-sequence", "newline-delimited", "csv"],
)
def test_every_reader_accepts_a_leading_utf8_bom(
    new_agency: NewAgency, run_import: Importer, db: Any, content_type: str, encode: Any
) -> None:
    a = new_agency()
    features = spread(a, 3, prefix=f"bom-{uuid.uuid4().hex[:6]}")
    job = run_import(a, codecs.BOM_UTF8 + encode(features), content_type)
    assert job["status"] == "succeeded", job
    assert job["counts"]["read"] == 3 and job["counts"]["created"] == 3 and job["counts"]["rejected"] == 0, (
        job
    )
    stored = db.fetch(
        "SELECT external_id FROM registry.registrations WHERE agency_id = $1 ORDER BY external_id",
        uuid.UUID(a.id),
    )
    assert [r["external_id"] for r in stored] == sorted(f["properties"]["external_id"] for f in features)
