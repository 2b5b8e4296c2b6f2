"""The query shapes the bench measures and the seeded query set of each: the same queries go to the raw driver,
to geo_query and to tipg, so every figure in a row of the table answers the same questions.

A query is one incident point drawn from the data, with what each shape derives from it: a 500 m radius, the 20
nearest, a hexagon of 1 km² around it, a 714 m square bbox (about 0.5 km², where the dense metro holds about
700 cameras), and a route of travel from it of 1 to 5 km (two to ten 500 m legs, east and north in turn, a car's
path along a street grid: a few turns; the length cycles with the query's index, 3 km on average) with a 40 m
buffer (the cameras that see the street).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.data import KM_PER_DEG_LAT, METRO, REGIONS, Layout

RADIUS_M = 500.0
NEAREST_K = 20
POLYGON_KM2 = 1.0
BBOX_SIDE_M = 714.0
ROUTE_LEG_M, ROUTE_BUFFER_M = 500.0, 40.0
ROUTE_MIN_LEGS, ROUTE_MAX_LEGS = 2, 10  # 1 to 5 km
ROUTE_START = "2026-11-20T22:15:00Z"


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    limit: int | None = None  # the page size asked for (None: the shape's own count, e.g. k)
    cad: bool = False  # the CAD path (docs/performance.md, cad_p99_ms)
    vs_tipg: bool = False  # tipg answers it too


NEAREST = Shape("nearest", f"nearest K, k = {NEAREST_K}", cad=True)
RADIUS = Shape("radius", "radius 500 m, limit 1,000", limit=1000)
RADIUS_CAD = Shape("radius_cad", "radius 500 m, limit 100 (CAD)", limit=100, cad=True)
POLYGON = Shape("polygon", "polygon 1 km², limit 1,000", limit=1000)
BBOX100 = Shape("bbox100", "bbox 0.5 km², limit 100", limit=100, vs_tipg=True)
BBOX1000 = Shape("bbox1000", "bbox 0.5 km², limit 1,000", limit=1000)
ROUTE = Shape("route", "route 1–5 km, buffer 40 m, limit 1,000", limit=1000)
SHAPES = (NEAREST, RADIUS, RADIUS_CAD, POLYGON, BBOX100, BBOX1000, ROUTE)

# What is measured on each layout: everything on the dense metro (the anchors' data set); the CAD path and bbox on
# the realistic layout, which is what a CAD meets in practice.
PLAN: tuple[tuple[Layout, Shape], ...] = (
    (METRO, NEAREST),
    (METRO, RADIUS),
    (METRO, POLYGON),
    (METRO, BBOX100),
    (METRO, BBOX1000),
    (METRO, ROUTE),
    (REGIONS, NEAREST),
    (REGIONS, RADIUS_CAD),
    (REGIONS, BBOX100),
    (REGIONS, ROUTE),
)


@dataclass(frozen=True)
class Query:
    lon: float
    lat: float
    legs: int = (ROUTE_MIN_LEGS + ROUTE_MAX_LEGS) // 2  # the route's 500 m legs

    def _deg(self) -> tuple[float, float]:
        return 1 / (KM_PER_DEG_LAT * 1000 * math.cos(math.radians(self.lat))), 1 / (KM_PER_DEG_LAT * 1000)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        dlon, dlat = self._deg()
        h = BBOX_SIDE_M / 2
        return (
            round(self.lon - h * dlon, 6),
            round(self.lat - h * dlat, 6),
            round(self.lon + h * dlon, 6),
            round(self.lat + h * dlat, 6),
        )

    @property
    def hexagon(self) -> dict[str, object]:
        """A regular hexagon of POLYGON_KM2 around the point, counter-clockwise (RFC 7946), as GeoJSON."""
        dlon, dlat = self._deg()
        r = math.sqrt(2 * POLYGON_KM2 * 1e6 / (3 * math.sqrt(3)))  # circumradius in metres
        ring = [
            [
                round(self.lon + r * math.cos(math.radians(a)) * dlon, 6),
                round(self.lat + r * math.sin(math.radians(a)) * dlat, 6),
            ]
            for a in range(0, 360, 60)
        ]
        ring.append(ring[0])
        return {"type": "Polygon", "coordinates": [ring]}

    @property
    def route(self) -> list[list[float]]:
        """The route's vertices: from the point, `legs` legs of ROUTE_LEG_M, east and north in turn."""
        dlon, dlat = self._deg()
        out = [[self.lon, self.lat]]
        for i in range(self.legs):
            lon, lat = out[-1]
            out.append([lon + ROUTE_LEG_M * dlon, lat] if i % 2 == 0 else [lon, lat + ROUTE_LEG_M * dlat])
        return [[round(lon, 6), round(lat, 6)] for lon, lat in out]


def route_legs(index: int) -> int:
    """The legs of the index-th query's route: ROUTE_MIN_LEGS to ROUTE_MAX_LEGS in turn (1 to 5 km)."""
    return ROUTE_MIN_LEGS + index % (ROUTE_MAX_LEGS - ROUTE_MIN_LEGS + 1)


def queries(points: list[tuple[float, float]]) -> list[Query]:
    return [Query(lon, lat, route_legs(i)) for i, (lon, lat) in enumerate(points)]
