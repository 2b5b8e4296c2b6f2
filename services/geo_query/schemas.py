"""The shapes geo_query publishes: the polygon search body, the camera Feature and FeatureCollection (documented;
the bodies themselves are assembled by PostgreSQL), and the OGC API – Features documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.geojson import Area, Point, PointGeometry
from shared.vocabulary import LiveMode, Placement, Recording

EXAMPLE_FEATURE: dict[str, Any] = {
    "type": "Feature",
    "id": "5b0e3f5e-8d44-4d39-9c52-2b1f0d3a9f10",
    "geometry": {"type": "Point", "coordinates": [-73.98571, 40.74844]},
    "properties": {
        "registration_id": "0c6a7f4e-1b2d-4c3e-8f9a-0b1c2d3e4f50",
        "label": "Front door",
        "owner_kind": "business",
        "placement": "outdoor",
        "direction_deg": 180,
        "fov_deg": 110,
        "range_m": 25.0,
        "covers": ["sidewalk", "street"],
        "retention_days": 14,
        "recording": "continuous",
        "shares_history": True,
        "live_mode": "never",
        "schedule": None,
        "registered_at": "2026-10-02T18:20:11Z",
        "distance_m": 42.17,
        "bearing_deg": 213.4,
        "footage_until": "2026-12-04T22:15:00Z",
        "footage_likely_available": True,
    },
}


class AreaSearch(BaseModel):
    """Cameras inside an area (either winding; a polygon crossing the antimeridian is sent as a MultiPolygon split
    at it, RFC 7946 §3.1.9)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "area": {
                        "type": "Polygon",
                        "coordinates": [
                            [
                                [-73.99, 40.745],
                                [-73.98, 40.745],
                                [-73.98, 40.752],
                                [-73.99, 40.752],
                                [-73.99, 40.745],
                            ]
                        ],
                    },
                    "point": {"type": "Point", "coordinates": [-73.9857, 40.7484]},
                }
            ]
        },
    )

    area: Area = Field(description="A GeoJSON Polygon or MultiPolygon in WGS84; its area is capped by policy")
    point: Point | None = Field(
        None,
        description="The incident location: adds `distance_m`/`bearing_deg` to each camera and enables `facing`",
    )


class Contact(BaseModel):
    """The owner's contact details: present only for investigators and supervisors who gave a case number."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    preferred_method: str | None = None
    hours: str | None = None
    notes: str | None = None


class CameraProperties(BaseModel):
    registration_id: uuid.UUID
    label: str | None
    owner_kind: str
    placement: Placement | None
    direction_deg: int | None = Field(description="Compass direction the camera faces (0 = north, clockwise)")
    fov_deg: int | None = Field(description="Horizontal field of view in degrees (360 = all around)")
    range_m: float | None
    covers: list[str]
    retention_days: int | None = Field(description="Days of footage the owner keeps")
    recording: Recording | None
    schedule: str | None = Field(None, description="When a scheduled camera records, in the owner's words")
    shares_history: bool
    live_mode: LiveMode
    registered_at: datetime = Field(
        description="When the camera was added to the registry (RFC 3339, UTC): the OGC `datetime` property"
    )
    distance_m: float | None = Field(None, description="Geodesic distance (WGS84) from the query point")
    bearing_deg: float | None = Field(
        None, description="Azimuth from the query point to the camera, clockwise"
    )
    footage_until: str | None = Field(None, description="incident_at + retention_days (RFC 3339)")
    footage_likely_available: bool | None = Field(
        None, description="Whether footage of incident_at is likely still kept (now < footage_until)"
    )
    contact: Contact | None = None


class CameraFeature(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_FEATURE]})

    type: Literal["Feature"]
    id: uuid.UUID
    geometry: PointGeometry
    properties: CameraProperties


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class CameraCollection(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "FeatureCollection",
                    "features": [EXAMPLE_FEATURE],
                    "numberReturned": 1,
                    "numberMatched": 1,
                    "timeStamp": "2026-11-21T10:00:00Z",
                    "links": [
                        {
                            "href": "https://canvass.example/v1/cameras/radius?lon=-73.9857&lat=40.7484&radius_m=300",
                            "rel": "self",
                            "type": "application/geo+json",
                        }
                    ],
                }
            ]
        }
    )

    type: Literal["FeatureCollection"]
    features: list[CameraFeature]
    numberReturned: int
    numberMatched: int | None = Field(
        None, description="Given when it is cheap (one page) or asked for (count)"
    )
    timeStamp: str
    links: list[Link]


# ----------------------------------------------------------------------------------------- OGC documents


_LINK: dict[str, Any] = {
    "href": "https://canvass.example/v1/ogc/conformance",
    "rel": "conformance",
    "type": "application/json",
}
_COLLECTION_EXAMPLE: dict[str, Any] = {
    "id": "cameras",
    "title": "Registered cameras",
    "description": "Community cameras in the agency's jurisdiction whose owners share them with the agency.",
    "itemType": "feature",
    "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
    "extent": {
        "spatial": {
            "bbox": [[-74.03, 40.69, -73.93, 40.79]],
            "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        }
    },
    "links": [
        {
            "href": "https://canvass.example/v1/ogc/collections/cameras/items",
            "rel": "items",
            "type": "application/geo+json",
        }
    ],
}


class LandingPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"title": "Canvass camera registry", "description": "Registered cameras", "links": [_LINK]}
            ]
        }
    )

    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"conformsTo": ["http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"]}]
        }
    )

    conformsTo: list[str]


class SpatialExtent(BaseModel):
    bbox: list[list[float]]
    crs: str


class Extent(BaseModel):
    spatial: SpatialExtent


class CollectionInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_COLLECTION_EXAMPLE]})

    id: str
    title: str
    description: str
    itemType: str
    crs: list[str]
    extent: Extent | None = None
    links: list[Link]


class Collections(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"links": [_LINK], "collections": [_COLLECTION_EXAMPLE]}]}
    )

    links: list[Link]
    collections: list[CollectionInfo]
