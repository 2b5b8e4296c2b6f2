"""The shapes of registry_api's answers: an agency's Feature, the owner's Feature of a registration (everything,
opened), a camera, a contact, a point and an instant, from the rows the repository reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import RowMapping

from services.registry_api.schemas import NOTICE_FIELDS, POLICY_FIELDS
from services.registry_api.sealing import camera_context, reg_context, unseal


def coords(lon: float, lat: float) -> list[float]:
    return [round(lon, 7), round(lat, 7)]


def point_out(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": coords(lon, lat)}


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def agency_feature(row: RowMapping, *, with_policy: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"slug": row["slug"], "name": row["name"]}
    # Public, like the name: a resident reads what a program does with a registration before joining it.
    props |= {k: row[k] for k in NOTICE_FIELDS if row[k] is not None}
    props["disclosure_delay_days"] = row["disclosure_delay_days"]  # public: known before registering
    if with_policy:
        props["policy"] = {k: row[k] for k in POLICY_FIELDS}
        props["version"] = row["version"]
    return {
        "type": "Feature",
        "id": str(row["id"]),
        # None when read without it (skipGeometry): GeoJSON's unlocated Feature.
        "geometry": orjson.Fragment(row["jurisdiction"]) if row["jurisdiction"] is not None else None,
        "properties": props,
    }


def contact_out(row: Mapping[Any, Any]) -> dict[str, Any]:
    rid = row["id"]
    return {
        "name": unseal(row["contact_name_enc"], reg_context(rid, "name")),
        "email": unseal(row["contact_email_enc"], reg_context(rid, "email")),
        "phone": unseal(row["contact_phone_enc"], reg_context(rid, "phone")),
        "preferred_method": row["preferred_contact_method"],
        "hours": row["contact_hours"],
    }


def camera_out(c: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "id": str(c["id"]),
        "location": point_out(c["lon"], c["lat"]),
        "label": c["label"],
        "direction_deg": c["direction_deg"],
        "fov_deg": c["fov_deg"],
        "range_m": c["range_m"],
        "placement": c["placement"],
        "covers": list(c["covers"] or []),
        "retention_days": c["retention_days"],
        "recording": c["recording"],
        "schedule": c["schedule"],
        "shares_history": c["shares_history"],
        "live_mode": c["live_mode"],
        "live_endpoint": unseal(c["live_endpoint_enc"], camera_context(c["id"])),
    }


def build_feature(row: Mapping[Any, Any], cameras: Sequence[Mapping[Any, Any]]) -> dict[str, Any]:
    """The owner's view of their registration: everything, decrypted."""
    rid = row["id"]
    terms = (
        {"version": row["terms_version"], "accepted_at": iso(row["terms_accepted_at"])}
        if row["terms_version"]
        else None
    )
    return {
        "type": "Feature",
        "id": str(rid),
        "geometry": point_out(row["lon"], row["lat"]),
        "properties": {
            "agency": row["agency"],
            "status": row["status"],
            "owner_kind": row["owner_kind"],
            "business_name": row["business_name"],
            "address": unseal(row["address_enc"], reg_context(rid, "address")),
            "contact": contact_out(row),
            "notes_for_investigators": row["notes_for_investigators"],
            "terms": terms,
            "shared_with": list(row["shared_with"]),
            "source": row["source"],
            "registered_by": row["registered_by"],
            "cameras": [camera_out(c) for c in cameras],
            "last_confirmed_at": iso(row["last_confirmed_at"]),
            "reconfirm_due_at": iso(row["reconfirm_due_at"]),
            "version": row["version"],
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        },
    }
