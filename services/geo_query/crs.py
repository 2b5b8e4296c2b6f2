"""Coordinate reference systems at the edge: a `crs`/`bbox-crs` given as an EPSG code or an OGC URI is turned into a
pyproj transformer to WGS84 (lon/lat order), and input literals are transformed with it. The indexed column is
never transformed, so the spatial index keeps working whatever CRS the caller speaks.

Only codes and URIs are accepted (no PROJ strings or WKT): a caller names a CRS, it does not define one.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from shared.errors import Problem, invalid

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG_URI = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/(\d{1,6})$")
_EPSG_URN = re.compile(r"^urn:ogc:def:crs:EPSG:[0-9.]*:(\d{1,6})$", re.IGNORECASE)
_EPSG_CODE = re.compile(r"^(?:EPSG:)?(\d{1,6})$", re.IGNORECASE)
_CRS84 = {
    CRS84.lower(),
    "https://www.opengis.net/def/crs/ogc/1.3/crs84",
    "ogc:crs84",
    "crs84",
    "urn:ogc:def:crs:ogc:1.3:crs84",
}


def epsg_code(value: str, pointer: str) -> int | None:
    """The EPSG code a `crs` parameter names, or None for CRS84 (WGS84 longitude/latitude)."""
    v = value.strip()
    if v.lower() in _CRS84:
        return None
    for pattern in (_EPSG_URI, _EPSG_URN, _EPSG_CODE):
        m = pattern.match(v)
        if m:
            code = int(m.group(1))
            return None if code == 4326 else code
    raise invalid(
        pointer,
        "not a CRS this service understands: give an EPSG code ('2263', 'EPSG:2263') or an OGC URI"
        " ('http://www.opengis.net/def/crs/EPSG/0/2263')",
        status=400,
    )


AREA_MARGIN_DEG = 1.0  # how far outside its published area of use a CRS's coordinates are still believed


@lru_cache(maxsize=64)
def _transformer(code: int) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(code), 4326, always_xy=True)


@lru_cache(maxsize=64)
def _area_of_use(code: int) -> tuple[float, float, float, float] | None:
    area = CRS.from_epsg(code).area_of_use
    if area is None or area.west > area.east:
        return None
    m = AREA_MARGIN_DEG
    return area.west - m, area.south - m, area.east + m, area.north + m


def transformer(code: int, pointer: str) -> Transformer:
    try:
        return _transformer(code)
    except CRSError as exc:
        raise invalid(pointer, f"EPSG:{code} is not a known coordinate reference system", status=400) from exc


def _check_lonlat(lon: float, lat: float, pointer: str, code: int) -> tuple[float, float]:
    """Projections give numbers far outside their zone, but not meaningful ones: refuse what lands off the map or
    well outside the CRS's area of use (a State Plane easting in the wrong zone, feet taken for metres)."""
    area = _area_of_use(code)
    inside = math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
    if inside and area is not None:
        inside = area[0] <= lon <= area[2] and area[1] <= lat <= area[3]
    if not inside:
        raise invalid(pointer, f"the coordinates are outside the area where EPSG:{code} is used", status=400)
    return lon, lat


def to_lonlat(x: float, y: float, code: int, pointer: str) -> tuple[float, float]:
    """Transform one position from EPSG:`code` (x/east first) to WGS84 longitude/latitude."""
    try:
        lon, lat = transformer(code, pointer).transform(x, y)
    except Problem:
        raise
    except Exception as exc:  # pyproj raises ProjError (and friends) for positions it cannot transform
        raise invalid(pointer, f"the coordinates cannot be transformed from EPSG:{code}", status=400) from exc
    return _check_lonlat(float(lon), float(lat), pointer, code)


def bounds_to_lonlat(
    box: tuple[float, float, float, float], code: int, pointer: str
) -> tuple[float, float, float, float]:
    """Transform a bounding box, densifying its edges so the WGS84 box contains the whole projected box."""
    try:
        w, s, e, n = transformer(code, pointer).transform_bounds(*box, densify_pts=21)
    except Problem:
        raise
    except Exception as exc:
        raise invalid(pointer, f"the bbox cannot be transformed from EPSG:{code}", status=400) from exc
    _check_lonlat(float(w), float(s), pointer, code)
    _check_lonlat(float(e), float(n), pointer, code)
    return float(w), float(s), float(e), float(n)
