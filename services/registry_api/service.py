"""registry_api's queries and rules: agencies and jurisdictions, registrations and their cameras, sharing and
the `cameras.visible_to` invariant, sealing of personal data, If-Match, and the audit records of changes.

The invariant geo_query relies on: `cameras.visible_to` is the agency ids of the registration's shares while
the registration is active and empty otherwise, and `cameras.owner_kind` mirrors the registration's. Every
function here that changes status, sharing, owner kind or cameras calls `recompute_visibility` before the
transaction commits; it, and the import's merge, run the database's `registry.sync_cameras` for that.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.registry_api import abuse
from services.registry_api.schemas import NOTICE_FIELDS, CameraFields
from shared.audit import AuditEvent, append_session
from shared.auth import OwnerCredential, Principal, credential_matches
from shared.crypto import keyring
from shared.errors import InvalidParam, Problem
from shared.geojson import Point
from shared.keystore import DataKey, keystore, open_with
from shared.mail import get_mailer

SERVICE = "registry_api"
log = logging.getLogger("canvass.registry")
POINT_SQL = "ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON({})), 4326)"


def coords(lon: float, lat: float) -> list[float]:
    return [round(lon, 7), round(lat, 7)]


def point_out(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": coords(lon, lat)}


# --- ETags -----------------------------------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(version: int, if_match: str | None, *, required: bool) -> None:
    """412 when the client's copy is stale, 428 when an update names no version at all (an empty header names
    none either)."""
    if if_match is None or not if_match.strip():
        if required:
            raise Problem(
                428,
                'This update needs an If-Match header with the ETag you last read (e.g. If-Match: "3"), '
                "so it cannot overwrite a change you have not seen.",
            )
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    wanted = etag(version)
    if not any(t.removeprefix("W/") == wanted for t in tags):
        raise Problem(
            412,
            f"The resource changed since you read it: its ETag is now {wanted}. Read it again and retry.",
            headers={"ETag": wanted},
        )


# --- agencies --------------------------------------------------------------------------------------------

AGENCY_COLUMNS = """
    a.id, a.slug, a.name, a.version,
    ST_AsGeoJSON(ST_ForcePolygonCCW(a.jurisdiction), 7) AS jurisdiction,
    a.max_request_area_m2, a.max_request_window_hours, a.default_request_expiry_days, a.requires_approval,
    a.evidence_retention_days, a.max_search_radius_m, a.reconfirm_after_days,
    a.privacy_notice, a.privacy_notice_url, a.disclosure_delay_days
"""

POLICY_COLUMNS = (
    "max_request_area_m2",
    "max_request_window_hours",
    "default_request_expiry_days",
    "requires_approval",
    "evidence_retention_days",
    "max_search_radius_m",
    "reconfirm_after_days",
    "disclosure_delay_days",
)


def agency_feature(row: RowMapping, *, with_policy: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"slug": row["slug"], "name": row["name"]}
    # Public, like the name: a resident reads what a program does with a registration before joining it.
    props |= {k: row[k] for k in NOTICE_FIELDS if row[k] is not None}
    props["disclosure_delay_days"] = row["disclosure_delay_days"]  # public: known before registering
    if with_policy:
        props["policy"] = {k: row[k] for k in POLICY_COLUMNS}
        props["version"] = row["version"]
    return {
        "type": "Feature",
        "id": str(row["id"]),
        "geometry": orjson.Fragment(row["jurisdiction"]),
        "properties": props,
    }


async def agency_by_slug(session: AsyncSession, slug: str, *, lock: bool = False) -> RowMapping | None:
    sql = f"SELECT {AGENCY_COLUMNS} FROM registry.agencies a WHERE a.slug = :slug"  # noqa: S608 - composed from constants; values are bound
    if lock:
        sql += " FOR UPDATE"
    return (await session.execute(text(sql), {"slug": slug})).mappings().first()


async def agencies_by_slugs(
    session: AsyncSession, slugs: Sequence[str], pointer: str
) -> dict[str, uuid.UUID]:
    """Agency ids for slugs; a 422 naming every slug that is no agency."""
    if not slugs:
        return {}
    rows = (
        await session.execute(
            text("SELECT slug, id FROM registry.agencies WHERE slug = ANY(:slugs)"), {"slugs": list(slugs)}
        )
    ).all()
    found = {r[0]: r[1] for r in rows}
    missing = [(i, s) for i, s in enumerate(slugs) if s not in found]
    if missing:
        errors = [InvalidParam(pointer=f"{pointer}/{i}", reason=f"no agency '{s}'") for i, s in missing]
        raise Problem(
            422,
            "; ".join(f"{e.pointer}: {e.reason}" for e in errors),
            kind="validation",
            title="Request validation failed",
            errors=errors,
        )
    return found


async def check_in_jurisdiction(
    session: AsyncSession, agency: RowMapping, points: Sequence[tuple[str, Point]]
) -> None:
    """Every point must lie in the agency's jurisdiction (boundary included)."""
    if not points:
        return
    rows = (
        await session.execute(
            text(OUTSIDE_SQL.format(agency=":agency")),
            {"pts": [p.geojson() for _, p in points], "agency": agency["id"]},
        )
    ).scalar_one()
    if rows:
        raise outside_jurisdiction(agency, points, rows)


# The 1-based positions of the points (GeoJSON texts) outside agency `{agency}`'s jurisdiction.
OUTSIDE_SQL = (
    "SELECT ARRAY(SELECT p.i FROM unnest(CAST(:pts AS text[])) WITH ORDINALITY AS p(g, i)"
    " JOIN registry.agencies j ON j.id = {agency}"
    " WHERE NOT ST_Covers(j.jurisdiction, ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(p.g)), 4326)) ORDER BY p.i)"
)


def outside_jurisdiction(
    agency: Mapping[Any, Any], points: Sequence[tuple[str, Point]], outside: Sequence[int]
) -> Problem:
    """A 422 that names the agency, the offending points and where the person can register instead."""
    errors = []
    for i in outside:
        pointer, point = points[i - 1]
        lon, lat = point.coordinates[0], point.coordinates[1]
        errors.append(
            InvalidParam(
                pointer=pointer,
                reason=(
                    f"[{lon}, {lat}] lies outside the jurisdiction of {agency['name']} ({agency['slug']}); "
                    "its program accepts only cameras inside its jurisdiction"
                ),
            )
        )
    first = points[outside[0] - 1][1]
    return Problem(
        422,
        f"{agency['name']} ({agency['slug']}) cannot accept this registration: "
        + "; ".join(f"{e.pointer} {e.reason}" for e in errors)
        + f". Find the programs covering a point at /v1/agencies/covering?lon={first.coordinates[0]}"
        f"&lat={first.coordinates[1]}.",
        kind="outside-jurisdiction",
        title="Outside the agency's jurisdiction",
        errors=errors,
        agency=agency["slug"],
    )


async def agency_for_principal(session: AsyncSession, principal: Principal) -> RowMapping:
    row = await agency_by_slug(session, principal.agency or "")
    if row is None:
        raise Problem(403, f"The token's agency '{principal.agency}' is not registered with Canvass.")
    return row


# The visibility rule of geo_query's search, which every agency-facing read of registrations here applies too: a
# registration is the agency's to see through a camera whose `visible_to` names the agency (active and shared
# with it: the invariant above) and that lies in the agency's jurisdiction. `{me}` is a row with the agency's
# `id` and `jurisdiction` (read once, as a copy: see agency_access), `{reg}` the registration's id.
SEEN_BY_SQL = (
    "EXISTS (SELECT 1 FROM registry.cameras c WHERE c.registration_id = {reg}"
    " AND {me}.id = ANY(c.visible_to) AND ST_Covers({me}.jurisdiction, c.geom))"
)


# --- sealing ---------------------------------------------------------------------------------------------


def seal(value: str | None, context: str) -> bytes | None:
    return keyring().seal(value, context)


def unseal(value: bytes | None, context: str) -> str | None:
    return keyring().open(value, context)


def reg_context(rid: uuid.UUID, column: str) -> str:
    return f"registration:{rid}:{column}"


# What an owner writes that no search reads in SQL: sealed under the registration's data key, in the key store
# apart from this database (shared/keystore.py), and shredded with it when the registration is deleted. The
# column of each is `<name>_enc`; a row read through `with_owner_texts` carries the opened text under `<name>`.
OWNER_TEXTS = ("business_name", "contact_hours", "notes_for_investigators")


async def new_registration_key() -> tuple[uuid.UUID, DataKey]:
    """The id of a new registration with owner texts, and its data key (already in the key store)."""
    return await keystore(SERVICE).fresh()


async def owner_text_key(rid: uuid.UUID) -> DataKey:
    """The registration's data key, created if it has none yet (before the first text is sealed under it)."""
    return (await keystore(SERVICE).ensure([rid]))[rid]


def seal_owner_text(key: DataKey, rid: uuid.UUID, column: str, value: str | None) -> bytes | None:
    return key.seal(value, reg_context(rid, column))


def open_owner_texts(row: Mapping[Any, Any], key: DataKey | None) -> dict[str, Any]:
    """The row with each owner text opened under the registration's key (None once the key is destroyed)."""
    rid = row["id"]
    return {**row, **{c: open_with(key, row[c + "_enc"], reg_context(rid, c)) for c in OWNER_TEXTS}}


async def with_owner_texts(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The row with its owner texts opened: one round trip to the key store, only when there is one to open."""
    if all(row[c + "_enc"] is None for c in OWNER_TEXTS):
        return open_owner_texts(row, None)
    return open_owner_texts(row, await keystore(SERVICE).key(row["id"]))


def camera_context(cid: uuid.UUID) -> str:
    return f"camera:{cid}:live_endpoint"


def email_index(email: str | None) -> bytes | None:
    return keyring().blind_index(email) if email else None


def email_indexes(email: str) -> list[bytes]:
    """What to look an email up by: its index under each key of the ring (rows indexed before a rotation too)."""
    return keyring().blind_indexes(email)


def external_id_index(agency_id: uuid.UUID, external_id: str) -> bytes:
    """How a deleted imported registration's external id is remembered (registry.import_tombstones)."""
    return keyring().exact_index(external_id, f"import-tombstone:{agency_id}")


def external_id_indexes(agency_id: uuid.UUID, external_id: str) -> list[bytes]:
    """Each form a tombstone of this external id may have been stored in: under each key of the ring."""
    return keyring().exact_indexes(external_id, f"import-tombstone:{agency_id}")


# --- registrations ---------------------------------------------------------------------------------------

REGISTRATION_SQL = """
SELECT r.id, r.agency_id, a.slug AS agency, a.name AS agency_name, r.status, r.owner_kind, r.business_name_enc,
       ST_X(r.location) AS lon, ST_Y(r.location) AS lat,
       r.address_enc, r.contact_name_enc, r.contact_email_enc, r.contact_phone_enc,
       r.preferred_contact_method, r.contact_hours_enc, r.notes_for_investigators_enc,
       r.terms_version, r.terms_accepted_at, r.source, r.registered_by, r.external_id, r.credential_hash,
       r.last_confirmed_at, r.last_confirmed_at + make_interval(days => a.reconfirm_after_days) AS reconfirm_due_at,
       r.version, r.created_at, r.updated_at,
       ARRAY(SELECT sa.slug FROM registry.registration_shares s
             JOIN registry.agencies sa ON sa.id = s.agency_id
             WHERE s.registration_id = r.id ORDER BY sa.slug) AS shared_with
FROM registry.registrations r JOIN registry.agencies a ON a.id = r.agency_id
WHERE r.id = :id
"""

CAMERAS_SQL = """
SELECT id, ST_X(geom) AS lon, ST_Y(geom) AS lat, label, direction_deg, fov_deg, range_m, placement, covers,
       retention_days, recording, schedule, shares_history, live_mode, live_endpoint_enc
FROM registry.cameras WHERE registration_id = :id ORDER BY created_at, id
"""


async def registration_row(
    session: AsyncSession, rid: uuid.UUID, *, lock: bool = False, texts: bool = True
) -> dict[str, Any] | None:
    """The registration with its owner texts opened (see `with_owner_texts`; `texts=False`: not opened, for a
    caller that does not show them and need not wait for the key store), or None."""
    sql = REGISTRATION_SQL + (" FOR UPDATE OF r" if lock else "")
    row = (await session.execute(text(sql), {"id": rid})).mappings().first()
    if row is None:
        return None
    return await with_owner_texts(row) if texts else dict(row)


def not_found(rid: uuid.UUID) -> Problem:
    return Problem(404, f"No registration {rid}.")


async def owned_registration(
    session: AsyncSession, rid: uuid.UUID, cred: OwnerCredential, *, lock: bool = False
) -> dict[str, Any]:
    """The registration the credential manages. Another registration's id is a 404 (a credential opens one
    registration and says nothing about others); a wrong or revoked secret is a 401, whether or not the
    registration exists, so a guessed credential learns nothing; and it counts towards the guess limits (a 429
    past the client's: see abuse)."""
    if cred.registration_id != rid:
        raise not_found(rid)
    await abuse.attempt()
    row = await registration_row(session, rid, lock=lock)
    if row is None or not credential_matches(row["credential_hash"], cred):
        raise Problem(
            401,
            "The management credential is not valid for this registration (it may have been rotated).",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    await abuse.succeeded()
    return row


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


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


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


async def registration_feature(session: AsyncSession, row: Mapping[str, Any]) -> dict[str, Any]:
    cameras = (await session.execute(text(CAMERAS_SQL), {"id": row["id"]})).mappings().all()
    return build_feature(row, cameras)


async def fresh_feature(session: AsyncSession, rid: uuid.UUID) -> tuple[dict[str, Any], int]:
    row = await registration_row(session, rid)
    assert row is not None
    return await registration_feature(session, row), row["version"]


async def recompute_visibility(session: AsyncSession, rid: uuid.UUID) -> None:
    """Restore the invariant geo_query relies on (see the module docstring), in the caller's transaction, with
    the database's `registry.sync_cameras`: the one statement every writer (this API, the import) runs."""
    await session.execute(text("SELECT registry.sync_cameras(ARRAY[CAST(:id AS uuid)])"), {"id": rid})


async def replace_shares(
    session: AsyncSession, rid: uuid.UUID, program_agency: uuid.UUID, further: Sequence[uuid.UUID]
) -> None:
    ids = sorted({program_agency, *further})
    await session.execute(
        text(
            "DELETE FROM registry.registration_shares WHERE registration_id = :id AND NOT agency_id = ANY(:ids)"
        ),
        {"id": rid, "ids": ids},
    )
    await session.execute(
        text(
            "INSERT INTO registry.registration_shares (registration_id, agency_id)"
            " SELECT :id, unnest(CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING"
        ),
        {"id": rid, "ids": ids},
    )


CAMERA_COLUMNS = (
    "label",
    "direction_deg",
    "fov_deg",
    "range_m",
    "placement",
    "covers",
    "retention_days",
    "recording",
    "schedule",
    "shares_history",
    "live_mode",
)


def camera_params(cid: uuid.UUID, camera: CameraFields, location: Point) -> dict[str, Any]:
    return {
        "id": cid,
        "geom": location.geojson(),
        "label": camera.label,
        "direction_deg": camera.direction_deg,
        "fov_deg": camera.fov_deg,
        "range_m": camera.range_m,
        "placement": camera.placement,
        "covers": camera.covers or [],
        "retention_days": camera.retention_days,
        "recording": camera.recording,
        "schedule": camera.schedule,
        "shares_history": True if camera.shares_history is None else camera.shares_history,
        "live_mode": camera.live_mode or "never",
        "live_endpoint_enc": seal(camera.live_endpoint, camera_context(cid)),
    }


async def insert_cameras(session: AsyncSession, rid: uuid.UUID, cameras: list[dict[str, Any]]) -> None:
    """Insert cameras; their visibility is set by `recompute_visibility`, which the caller runs next."""
    cols = ", ".join(CAMERA_COLUMNS)
    vals = ", ".join(f":{c}" for c in CAMERA_COLUMNS)
    await session.execute(
        text(
            "INSERT INTO registry.cameras"  # noqa: S608 - composed from constants; values are bound
            f" (id, registration_id, geom, owner_kind, live_endpoint_enc, created_at, {cols})"
            f" VALUES (:id, :rid, {POINT_SQL.format(':geom')},"
            " (SELECT owner_kind FROM registry.registrations WHERE id = :rid), :live_endpoint_enc,"
            # clock_timestamp, not now(): cameras list in the order they were given, even within one request
            " clock_timestamp(),"
            f" {vals})"
        ),
        [dict(c, rid=rid) for c in cameras],
    )


async def bump_version(session: AsyncSession, rid: uuid.UUID) -> int:
    return (
        await session.execute(
            text(
                "UPDATE registry.registrations SET version = version + 1, updated_at = now()"
                " WHERE id = :id RETURNING version"
            ),
            {"id": rid},
        )
    ).scalar_one()


# Which camera live modes may join a live window opened for each reason.
MODES_FOR = {"alert": ["on_alert"], "emergency": ["on_alert", "emergency"]}

# An open window keeps only the agencies its registration is still shared with, and only the cameras whose live
# mode still allows its reason and that still have an endpoint; one left with no agency or no camera closes.
# What a window loses it never gets back: a later re-share or mode change opens nothing (a new window does).
NARROW_WINDOWS_SQL = """
WITH narrowed AS (
    SELECT w.id,
           ARRAY(SELECT a FROM unnest(w.agency_ids) a
                 WHERE EXISTS (SELECT 1 FROM registry.registration_shares s
                               WHERE s.registration_id = w.registration_id AND s.agency_id = a)
                 ORDER BY a) AS agency_ids,
           ARRAY(SELECT c FROM unnest(w.camera_ids) c
                 WHERE EXISTS (SELECT 1 FROM registry.cameras k
                               WHERE k.id = c AND k.registration_id = w.registration_id
                                 AND k.live_endpoint_enc IS NOT NULL
                                 AND k.live_mode = ANY(CASE w.reason WHEN 'alert' THEN CAST(:alert AS text[])
                                                       ELSE CAST(:emergency AS text[]) END))
                 ORDER BY c) AS camera_ids
    FROM registry.live_windows w
    WHERE w.registration_id = :id AND w.closed_at IS NULL AND w.expires_at > now()
    FOR UPDATE OF w
)
UPDATE registry.live_windows w
SET agency_ids = n.agency_ids, camera_ids = n.camera_ids,
    closed_at = CASE WHEN cardinality(n.agency_ids) = 0 OR cardinality(n.camera_ids) = 0 THEN now() END
FROM narrowed n
WHERE w.id = n.id AND (w.agency_ids <> n.agency_ids OR w.camera_ids <> n.camera_ids)
RETURNING w.id, w.closed_at IS NOT NULL AS closed
"""


async def narrow_open_windows(session: AsyncSession, rid: uuid.UUID) -> list[tuple[uuid.UUID, bool]]:
    """After a change of sharing or of a camera's live mode or endpoint (in the caller's transaction): each open
    window loses for good what the change took away (see NARROW_WINDOWS_SQL). The windows changed, and whether
    each closed."""
    rows = await session.execute(
        text(NARROW_WINDOWS_SQL),
        {"id": rid, "alert": MODES_FOR["alert"], "emergency": MODES_FOR["emergency"]},
    )
    return [(r[0], r[1]) for r in rows]


async def close_open_windows(session: AsyncSession, rid: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        text(
            "UPDATE registry.live_windows SET closed_at = now()"
            " WHERE registration_id = :id AND closed_at IS NULL AND expires_at > now() RETURNING id"
        ),
        {"id": rid},
    )
    return [r[0] for r in rows]


# --- audit -----------------------------------------------------------------------------------------------


def owner_actor(rid: uuid.UUID) -> str:
    # The registration id is the owner's pseudonym: after deletion nothing links it to a person.
    return f"owner:{rid}"


def audit_event(
    action: str,
    *,
    actor: str,
    role: str,
    agency: str | None = None,
    subject_type: str = "registration",
    subject_id: uuid.UUID | str | None = None,
    case_number: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        service=SERVICE,
        actor=actor,
        actor_role=role,
        action=action,
        agency=agency,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        case_number=case_number,
        details=details or {},
    )


async def audit(
    session: AsyncSession,
    action: str,
    *,
    actor: str,
    role: str,
    agency: str | None = None,
    subject_type: str = "registration",
    subject_id: uuid.UUID | str | None = None,
    case_number: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit record in the session's transaction (it commits with the change it records)."""
    await append_session(
        session,
        audit_event(
            action,
            actor=actor,
            role=role,
            agency=agency,
            subject_type=subject_type,
            subject_id=subject_id,
            case_number=case_number,
            details=details,
        ),
    )


def principal_role(principal: Principal, preferred: Sequence[str]) -> str:
    for r in preferred:
        if r in principal.roles:
            return r
    return sorted(principal.roles)[0] if principal.roles else "none"


async def send_quietly(to: str, subject: str, body: str) -> None:
    """Send after the answer (a background task): a mail failure leaves the committed change standing, and the
    owner can always have the credential re-issued."""
    try:
        await get_mailer().send(to, subject, body)
    except Exception as exc:
        log.warning("could not send mail: %s", type(exc).__name__)
