"""GeoJSON (RFC 7946) models, input validation and the `application/geo+json` responses.

Input geometries are checked the way a person would want to be told about them: finite numbers, longitude and
latitude in range, two or three numbers per position, closed rings with at least four positions, and a valid
(non self-crossing) shape; either winding is accepted. Output polygons follow the right-hand rule; output
coordinates are rounded to 7 decimals (about 1 cm) in SQL.

Every geometry in a contract is typed (so a generated client gets `{type: "Point"; coordinates: number[]}`, not a
free object): the input models below, whose published schema states the shape their validators enforce (positions
of 2 or 3 numbers, rings of at least 4 positions, at least one ring or polygon), and the `*Geometry` models of
responses, with the same schemas and no validation (the services build those bodies themselves).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import orjson
import shapely
from fastapi.responses import JSONResponse as _StarletteJSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pyproj import Geod
from shapely.geometry import shape

GEOJSON_MEDIA_TYPE = "application/geo+json"
MAX_POSITIONS = 20_000  # per input geometry; larger areas belong in a bulk import, not a query


def _position(value: Any) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise ValueError("a position is an array [longitude, latitude]")
    if len(value) < 2:
        raise ValueError("a position needs two numbers: [longitude, latitude]")
    if len(value) > 3:
        raise ValueError("a position has two or three numbers: [longitude, latitude(, altitude)]")
    out: list[float] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("coordinates must be numbers")
        f = float(v)
        if not math.isfinite(f):
            raise ValueError("coordinates must be finite numbers (no NaN or Infinity)")
        out.append(f)
    lon, lat = out[0], out[1]
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180] (positions are [longitude, latitude])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (positions are [longitude, latitude])")
    return out


# The JSON Schemas of the coordinate arrays: what the validators below enforce, said in the contract.
POSITION_SCHEMA: dict[str, Any] = {
    "type": "array",
    "prefixItems": [
        {"type": "number", "minimum": -180, "maximum": 180, "description": "longitude"},
        {"type": "number", "minimum": -90, "maximum": 90, "description": "latitude"},
    ],
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 3,
}
RING_SCHEMA: dict[str, Any] = {"type": "array", "items": POSITION_SCHEMA, "minItems": 4}
POLYGON_SCHEMA: dict[str, Any] = {"type": "array", "items": RING_SCHEMA, "minItems": 1}
MULTIPOLYGON_SCHEMA: dict[str, Any] = {"type": "array", "items": POLYGON_SCHEMA, "minItems": 1}

# What an answer's positions are said to be: the same shape without the ranges of each member (a client's type
# generator makes a tuple of `prefixItems`, which the answers' [lon, lat] or [lon, lat, z] need not be held to).
OUT_POSITION_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 3,
}
OUT_RING_SCHEMA: dict[str, Any] = {"type": "array", "items": OUT_POSITION_SCHEMA, "minItems": 4}
OUT_POLYGON_SCHEMA: dict[str, Any] = {"type": "array", "items": OUT_RING_SCHEMA, "minItems": 1}
OUT_MULTIPOLYGON_SCHEMA: dict[str, Any] = {"type": "array", "items": OUT_POLYGON_SCHEMA, "minItems": 1}
OUT_LINESTRING_SCHEMA: dict[str, Any] = {"type": "array", "items": OUT_POSITION_SCHEMA, "minItems": 2}

Position = Annotated[list[float], BeforeValidator(_position), WithJsonSchema(POSITION_SCHEMA)]


def _ring(ring: list[list[float]], where: str) -> None:
    if len(ring) < 4:
        raise ValueError(f"{where} has {len(ring)} positions; a linear ring needs at least 4")
    if ring[0][:2] != ring[-1][:2]:
        raise ValueError(f"{where} is not closed: its first and last positions must be the same")


def _flat(ring: list[list[float]]) -> list[list[float]]:
    """A ring's positions without their altitude: an area is where on the ground, and the database's areas are
    two-dimensional (GeoJSON allows a third number, which drawing tools and GIS exports may send)."""
    return [p[:2] for p in ring]


class _Geometry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bbox: Annotated[list[Annotated[float, Strict()]], Field(min_length=4, max_length=6)] | None = Field(
        None, description="Optional RFC 7946 bounding box"
    )

    def to_shapely(self) -> Any:
        return shape(self.model_dump(exclude_none=True))

    def geojson(self) -> str:
        return orjson.dumps(self.model_dump(exclude_none=True)).decode()


def _check_valid(geom: _Geometry) -> None:
    g = geom.to_shapely()
    if g.is_empty:
        raise ValueError("the geometry is empty")
    if not shapely.is_valid(g):
        raise ValueError(f"invalid geometry: {shapely.is_valid_reason(g)}")


class Point(_Geometry):
    type: Literal["Point"]
    coordinates: Position = Field(examples=[[-87.9065, 43.0389]])


class Polygon(_Geometry):
    type: Literal["Polygon"]
    coordinates: Annotated[list[list[Position]], WithJsonSchema(POLYGON_SCHEMA)] = Field(
        examples=[[[[-87.91, 43.03], [-87.90, 43.03], [-87.90, 43.04], [-87.91, 43.04], [-87.91, 43.03]]]]
    )

    @field_validator("coordinates")
    @classmethod
    def _rings(cls, v: list[list[list[float]]]) -> list[list[list[float]]]:
        if not v:
            raise ValueError("a Polygon needs at least one ring")
        if sum(len(r) for r in v) > MAX_POSITIONS:
            raise ValueError(f"too many positions (more than {MAX_POSITIONS})")
        for i, ring in enumerate(v):
            _ring(ring, f"ring {i}")
        return [_flat(ring) for ring in v]

    @model_validator(mode="after")
    def _valid(self) -> Any:
        _check_valid(self)
        return self


class MultiPolygon(_Geometry):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[list[list[Position]]], WithJsonSchema(MULTIPOLYGON_SCHEMA)]

    @field_validator("coordinates")
    @classmethod
    def _polys(cls, v: list[list[list[list[float]]]]) -> list[list[list[list[float]]]]:
        if not v:
            raise ValueError("a MultiPolygon needs at least one polygon")
        if sum(len(r) for p in v for r in p) > MAX_POSITIONS:
            raise ValueError(f"too many positions (more than {MAX_POSITIONS})")
        for j, poly in enumerate(v):
            if not poly:
                raise ValueError(f"polygon {j} has no rings")
            for i, ring in enumerate(poly):
                _ring(ring, f"polygon {j} ring {i}")
        return [[_flat(ring) for ring in poly] for poly in v]

    @model_validator(mode="after")
    def _valid(self) -> Any:
        _check_valid(self)
        return self


Area = Annotated[Polygon | MultiPolygon, Field(discriminator="type")]


# ------------------------------------------------------------------------------------- response geometries


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: Annotated[list[float], WithJsonSchema(OUT_POSITION_SCHEMA)] = Field(
        examples=[[-87.9065, 43.0389]]
    )


class LineStringGeometry(BaseModel):
    type: Literal["LineString"]
    coordinates: Annotated[list[list[float]], WithJsonSchema(OUT_LINESTRING_SCHEMA)]


class PolygonGeometry(BaseModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[list[list[float]]], WithJsonSchema(OUT_POLYGON_SCHEMA)]


class MultiPolygonGeometry(BaseModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[list[list[list[float]]]], WithJsonSchema(OUT_MULTIPOLYGON_SCHEMA)]


AreaGeometry = Annotated[PolygonGeometry | MultiPolygonGeometry, Field(discriminator="type")]

WGS84 = Geod(ellps="WGS84")


def geodesic_area_m2(geom: Any) -> float:
    """Area of a shapely Polygon or MultiPolygon on the WGS84 ellipsoid, in m², whatever each ring's winding."""
    polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    total = 0.0
    for poly in polys:
        area = abs(WGS84.polygon_area_perimeter(*poly.exterior.xy)[0])
        for hole in poly.interiors:
            area -= abs(WGS84.polygon_area_perimeter(*hole.xy)[0])
        total += area
    return total


class JSONResponse(_StarletteJSONResponse):
    """JSON serialised with orjson. A JSONResponse subclass, so FastAPI documents the route's response model."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode()
        return orjson.dumps(content)


class GeoJSONResponse(JSONResponse):
    """A GeoJSON body, serialised with orjson (or passed through when already built as text, e.g. in SQL)."""

    media_type = GEOJSON_MEDIA_TYPE
