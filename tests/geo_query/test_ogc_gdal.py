"""GDAL's OGC API – Features driver (OAPIF: what ogr2ogr, QGIS's GDAL layers and most GIS scripts use) reads
geo_query's collection with an agency's token: the layer and its schema, a bbox filter, paging through `next` links,
and nothing without a token."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import Suite, Token
from tests.geo_query.conftest import Registry

BBOX = (-73.99, 40.72, -73.96, 40.75)


def _gdal(argv: list[str], token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GDAL_", "CPL_"))}
    if token is not None:
        env["GDAL_HTTP_HEADERS"] = f"Authorization: {token}"
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def test_ogrinfo_describes_the_collection(suite: Suite, auth: Token, registry_data: Registry) -> None:
    token = auth("investigator", registry_data.x.slug)["Authorization"]
    r = _gdal(["ogrinfo", "-ro", "-so", f"OAPIF:{suite.geo.url}/v1/ogc", "cameras"], token)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Layer name: cameras" in out and "Geometry: Point" in out
    assert f"Feature Count: {len(registry_data.visible(registry_data.x))}" in out
    assert "Extent: (-74.030000, 40.690000) - (-73.930000, 40.790000)" in out
    assert 'ID["EPSG",4326]' in out
    for field in ("registration_id: String", "direction_deg: Integer", "live_mode: String"):
        assert field in out, out


def test_ogr2ogr_copies_a_bbox_page_by_page(
    suite: Suite, auth: Token, registry_data: Registry, tmp_path: Path
) -> None:
    token = auth("investigator", registry_data.x.slug)["Authorization"]
    out = tmp_path / "cameras.geojson"
    w, s, e, n = BBOX
    r = _gdal(
        [
            "ogr2ogr",
            "-f",
            "GeoJSON",
            str(out),
            f"OAPIF:{suite.geo.url}/v1/ogc",
            "cameras",
            "-oo",
            "PAGE_SIZE=7",  # several pages, followed by their next links
            "-spat",
            str(w),
            str(s),
            str(e),
            str(n),
        ],
        token,
    )
    assert r.returncode == 0, r.stderr
    features = json.loads(out.read_text())["features"]
    expected = {
        str(c.id): c
        for c in registry_data.visible(registry_data.x, lambda c: w <= c.lon <= e and s <= c.lat <= n)
    }
    assert len(expected) > 7  # more than one page
    got = {f["properties"]["id"]: f for f in features}
    assert len(features) == len(got) and set(got) == set(expected)
    for cid, f in got.items():
        lon, lat = f["geometry"]["coordinates"]
        assert (round(lon, 6), round(lat, 6)) == (round(expected[cid].lon, 6), round(expected[cid].lat, 6))


def test_gdal_without_a_token_reads_nothing(suite: Suite, registry_data: Registry) -> None:
    r = _gdal(["ogrinfo", "-ro", "-so", f"OAPIF:{suite.geo.url}/v1/ogc", "cameras"], None)
    assert r.returncode != 0
    assert "HTTP error code : 401" in r.stderr and "needs an agency bearer token" in r.stderr, r.stderr
    assert "Feature Count" not in r.stdout
