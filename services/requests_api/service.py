"""Footage requests: creation within the agency's caps, what an agency and an owner may see of them, and the
transitions with their consequences (targets notified, owners told, the agency told of answers), each in one
transaction with its history, its outbox messages and its audit record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import shapely
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.requests_api import geo_client, outbox
from services.requests_api.config import config
from services.requests_api.owner_texts import EVIDENCE_SEALED_COLUMNS, open_evidence, open_notes
from services.requests_api.registry_client import AgencyPolicy
from services.requests_api.schemas import RequestCreate
from services.requests_api.states import (
    AGENCY_VISIBLE_EVENT,
    REQUEST_TRANSITIONS,
    TARGET_OPEN,
    TARGET_TRANSITIONS,
    Actor,
    allowed_actions,
    cascade_targets,
    check,
    record_creation,
    shared_at_some_point,
    sharing,
    transition_request,
    transition_target,
    write_request_event,
)
from shared.audit import AuditEvent, append_session
from shared.auth import Principal
from shared.concurrency import check_if_match
from shared.crypto import keyring
from shared.errors import Problem, invalid
from shared.geojson import WGS84, geodesic_area_m2

SERVICE = "requests_api"

CIRCLE_SEGMENTS = 72

REQUEST_COLUMNS = """
    r.id, r.agency, r.agency_name, r.case_number, r.category, r.state,
    ST_AsGeoJSON(r.incident_point, 7) AS incident, ST_AsGeoJSON(ST_ForcePolygonCCW(r.area), 7) AS area,
    r.area_kind, r.radius_m, r.area_m2, r.window_start, r.window_end, r.message, r.due_at, r.requires_approval,
    r.evidence_retention_days, r.legal_hold, r.created_by, r.creator_email_enc, r.version, r.created_at,
    r.updated_at, r.sent_at, r.finished_at, r.route
"""
TARGET_COLUMNS = (
    "t.id, t.request_id, t.registration_id, t.state, t.cameras, t.footage_until, t.distance_m, t.notified_at,"
    " t.answered_at, t.version, t.window_start, t.window_end"
)


def now() -> datetime:
    return datetime.now(UTC)


def agency_role(principal: Principal) -> str:
    return "supervisor" if principal.has("supervisor") else "investigator"


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.sub, agency_role(principal), principal.agency)


def owner_actor(registration_id: uuid.UUID) -> Actor:
    # The registration id is the owner's pseudonym: after deletion nothing links it to a person.
    return Actor(f"owner:{registration_id}", "owner")


async def audit(
    session: AsyncSession,
    action: str,
    actor: Actor,
    *,
    agency: str | None,
    subject_type: str,
    subject_id: uuid.UUID | str,
    case_number: str | None = None,
    area_geojson: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await append_session(
        session,
        AuditEvent(
            service=SERVICE,
            actor=actor.sub,
            actor_role=actor.role,
            action=action,
            agency=agency,
            subject_type=subject_type,
            subject_id=str(subject_id),
            case_number=case_number,
            area_geojson=area_geojson,
            details=details or {},
        ),
    )


# --- geometry --------------------------------------------------------------------------------------------


def circle(lon: float, lat: float, radius_m: float) -> dict[str, Any]:
    """A geodesic circle as a Polygon (counter-clockwise), RFC 7946 positions."""
    azimuths = [360.0 * i / CIRCLE_SEGMENTS for i in range(CIRCLE_SEGMENTS)]
    lons, lats, _ = WGS84.fwd(
        [lon] * CIRCLE_SEGMENTS, [lat] * CIRCLE_SEGMENTS, azimuths, [radius_m] * CIRCLE_SEGMENTS
    )
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lons, lats, strict=True)]
    ring.reverse()  # fwd walks clockwise (north, east, ...); the right-hand rule wants counter-clockwise
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


# --- creation --------------------------------------------------------------------------------------------


# The longest a camera's footage can still exist: the longest retention an owner may declare for a camera
# (registry_api's cameras hold retention_days of 0 to 3650). A window that ended before then asks every owner
# for footage none of them can have.
MAX_FOOTAGE_AGE = timedelta(days=3650)


def _check_window(body: RequestCreate, policy: AgencyPolicy) -> None:
    start, end = body.window.start.astimezone(UTC), body.window.end.astimezone(UTC)
    if end <= start:
        raise invalid("/body/window/end", "the window must end after it starts")
    if end < now() - MAX_FOOTAGE_AGE:
        raise invalid(
            "/body/window/end",
            f"the window ended more than {MAX_FOOTAGE_AGE.days} days ago, longer than any camera keeps footage",
            code="too_old",
            params={"days": MAX_FOOTAGE_AGE.days},
        )
    hours = (end - start).total_seconds() / 3600
    if hours > policy.max_request_window_hours + 1e-9:
        raise invalid(
            "/body/window",
            f"spans {hours:g} hours; {policy.name}'s policy allows at most {policy.max_request_window_hours:g}",
        )
    if start > now() + timedelta(minutes=5):
        raise invalid("/body/window/start", "the incident window starts in the future", code="in_future")


def _due(body: RequestCreate, policy: AgencyPolicy) -> datetime:
    if body.due_at is None:
        return now() + timedelta(days=policy.default_request_expiry_days)
    due = body.due_at.astimezone(UTC)
    if due < now() + timedelta(hours=1):
        raise invalid("/body/due_at", "must be at least an hour from now")
    if due > now() + timedelta(days=365):
        raise invalid("/body/due_at", "must be within a year")
    return due


def _area(body: RequestCreate, policy: AgencyPolicy) -> tuple[str, dict[str, Any], float]:
    if (body.radius_m is None) == (body.area is None):
        raise invalid(
            "/body/area",
            "give one of radius_m (a circle around the incident), area (a polygon) or route (a path of travel)",
        )
    lon, lat = body.incident.coordinates[0], body.incident.coordinates[1]
    if body.radius_m is not None:
        geom = circle(lon, lat, body.radius_m)
        pointer, kind = "/body/radius_m", "radius"
    else:
        assert body.area is not None
        geom = body.area.model_dump(exclude_none=True)
        pointer, kind = "/body/area", "polygon"
    area = geodesic_area_m2(shapely.geometry.shape(geom))
    if area > policy.max_request_area_m2:
        raise invalid(
            pointer,
            f"covers {area:,.0f} m²; {policy.name}'s policy allows at most {policy.max_request_area_m2:,.0f} m²",
        )
    return kind, geom, area


async def _along(
    body: RequestCreate, route: dict[str, Any], policy: AgencyPolicy, authorization: str
) -> tuple[str, dict[str, Any], float, list[geo_client.Camera]]:
    """A route as the request's area: its cameras (each with its own window, inside the request's), and its
    buffer as the area, within the policy's cap; the route's times must lie inside the request's window."""
    if body.radius_m is not None or body.area is not None:
        raise invalid("/body/route", "give one of radius_m, area or route")
    if body.camera_ids:
        raise invalid("/body/camera_ids", "a route asks the owners along it: leave camera_ids out")
    answer = await geo_client.cameras_along(authorization, body.case_number, route)
    start, end = body.window.start.astimezone(UTC), body.window.end.astimezone(UTC)
    if answer.starts_at < start or answer.ends_at > end:
        raise invalid(
            "/body/route",
            f"the route runs from {geo_client.iso(answer.starts_at)} to {geo_client.iso(answer.ends_at)}, outside"
            " the request's window",
        )
    for c in answer.cameras:
        if c.window is not None:
            c.window = (max(c.window[0], start), min(c.window[1], end))
    area = geodesic_area_m2(shapely.geometry.shape(answer.area))
    if area > policy.max_request_area_m2:
        raise invalid(
            "/body/route/buffer_m",
            f"the route's buffer covers {area:,.0f} m²; {policy.name}'s policy allows at most"
            f" {policy.max_request_area_m2:,.0f} m²",
        )
    return "route", answer.area, area, answer.cameras


async def create_request(
    session: AsyncSession,
    body: RequestCreate,
    principal: Principal,
    authorization: str,
    policy: AgencyPolicy,
) -> uuid.UUID:
    _check_window(body, policy)
    due = _due(body, policy)
    lon, lat = body.incident.coordinates[0], body.incident.coordinates[1]
    incident_at = body.window.start.astimezone(UTC)
    route = body.route.model_dump(mode="json", exclude_none=True) if body.route is not None else None
    if route is not None:
        kind, geom, area_m2, cameras = await _along(body, route, policy, authorization)
    else:
        kind, geom, area_m2 = _area(body, policy)
    if route is not None:
        pass  # found along the route, each with its own window (`_along`)
    elif body.camera_ids:
        ids = list(dict.fromkeys(body.camera_ids))
        cameras = await geo_client.cameras_by_id(
            authorization, body.case_number, incident_at, (lon, lat), ids
        )
        outside = [c for c in cameras if not _inside(c, geom, body.radius_m)]
        if outside:
            raise invalid("/body/camera_ids", f"camera {outside[0].id} lies outside the request's area")
        unwilling = [c for c in cameras if not c.shares_history]
        if unwilling:
            raise invalid(
                "/body/camera_ids",
                f"camera {unwilling[0].id}'s owner does not share recorded footage: it cannot be asked for it",
            )
    elif body.radius_m is not None:
        cameras = await geo_client.cameras_in(
            authorization, body.case_number, incident_at, (lon, lat), radius_m=body.radius_m
        )
    else:
        cameras = await geo_client.cameras_in(
            authorization, body.case_number, incident_at, (lon, lat), area_geojson=geom
        )
    # An owner is asked only about cameras they registered as willing to share recorded footage; an owner
    # with none is not asked at all.
    cameras = geo_client.willing(cameras)
    drafts = geo_client.group_by_owner(cameras)
    if len(drafts) > config().max_targets:
        raise invalid(
            "/body/area", f"reaches {len(drafts)} owners; a request may reach at most {config().max_targets}"
        )

    rid = uuid.uuid4()
    email = principal.claims.get("email")
    creator_email = email if isinstance(email, str) and "@" in email and len(email) <= 320 else None
    await session.execute(
        text(
            """
                INSERT INTO requests.requests (id, agency, agency_name, case_number, category, incident_point,
                    area_kind, radius_m, area, area_m2, window_start, window_end, message, due_at,
                    requires_approval, evidence_retention_days, created_by, creator_email_enc, route)
                VALUES (:id, :agency, :agency_name, :case_number, :category,
                    ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :area_kind, :radius_m,
                    ST_SetSRID(ST_GeomFromGeoJSON(:area), 4326), :area_m2, :start, :end, :message, :due,
                    :requires_approval, :retention, :created_by, :email_enc, CAST(:route AS jsonb))
                """
        ),
        {
            "id": rid,
            "agency": policy.slug,
            "agency_name": policy.name,
            "case_number": body.case_number,
            "category": body.category,
            "lon": lon,
            "lat": lat,
            "area_kind": kind,
            "radius_m": body.radius_m,
            "area": orjson.dumps(geom).decode(),
            "area_m2": area_m2,
            "start": body.window.start,
            "end": body.window.end,
            "message": body.message,
            "due": due,
            "requires_approval": policy.requires_approval,
            "retention": policy.evidence_retention_days,
            "created_by": principal.sub,
            "email_enc": keyring().seal(creator_email, f"request:{rid}:creator_email"),
            "route": orjson.dumps(route).decode() if route is not None else None,
        },
    )
    if drafts:
        await session.execute(
            text(
                "INSERT INTO requests.targets (request_id, registration_id, cameras, footage_until, distance_m,"
                " window_start, window_end)"
                " VALUES (:rid, :reg, CAST(:cameras AS jsonb), :until, :distance, :wstart, :wend)"
            ),
            [
                {
                    "rid": rid,
                    "reg": d.registration_id,
                    "cameras": orjson.dumps([c.out() for c in d.cameras]).decode(),
                    "until": d.footage_until,
                    "distance": d.distance_m,
                    "wstart": d.window[0] if d.window else None,
                    "wend": d.window[1] if d.window else None,
                }
                for d in drafts
            ],
        )
    actor = actor_of(principal)
    await record_creation(session, rid, actor)
    await audit(
        session,
        "request.create",
        actor,
        agency=policy.slug,
        subject_type="request",
        subject_id=rid,
        case_number=body.case_number,
        area_geojson=orjson.dumps(geom).decode(),
        details={
            "area_m2": round(area_m2, 1),
            "targets": len(drafts),
            "cameras": len(cameras),
            "window": [body.window.start.isoformat(), body.window.end.isoformat()],
        },
    )
    return rid


def _inside(cam: geo_client.Camera, geom: dict[str, Any], radius_m: float | None) -> bool:
    if radius_m is not None:
        return cam.distance_m is not None and cam.distance_m <= radius_m + 0.5
    if cam.lon is None or cam.lat is None:
        return False
    return bool(shapely.geometry.shape(geom).covers(shapely.geometry.Point(cam.lon, cam.lat)))


# --- reading ---------------------------------------------------------------------------------------------


# Held for an update of the request's own columns: FOR NO KEY UPDATE, not FOR UPDATE, so the rows that only
# reference the request (an owner's answer writing its event or evidence while holding its target) take their
# key-share lock without waiting, and a write holding the request may then lock its targets without a deadlock.
LOCKED = " FOR NO KEY UPDATE OF r"


async def request_row(
    session: AsyncSession, request_id: uuid.UUID, agency: str | None, *, lock: bool = False
) -> RowMapping:
    """The request, if it belongs to the agency; another agency's request is a 404 (its existence is not
    theirs to know). `lock`: the row is held until the transaction ends (see `request_for_update`)."""
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {REQUEST_COLUMNS} FROM requests.requests r WHERE r.id = :id{LOCKED if lock else ''}"  # noqa: S608 - composed from constants; values are bound
                ),
                {"id": request_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None or (agency is not None and row["agency"] != agency):
        raise Problem(404, f"No request {request_id}.")
    return row


async def request_for_update(
    session: AsyncSession, request_id: uuid.UUID, agency: str | None, if_match: str | None
) -> RowMapping:
    """The request an If-Match-guarded write is about to change, held until the transaction ends, its If-Match
    checked against the row as held: no concurrent write can move the version between the check and the
    write, so of two writes naming the same ETag one goes through and the other is a 412. Every such write of a
    request comes through here, and takes the request's row before any of its targets' (the order the
    expiry's transitions take them in too)."""
    row = await request_row(session, request_id, agency, lock=True)
    check_if_match(row["version"], if_match, required=True, noun="request")
    return row


async def summaries(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    rows = (
        (
            await session.execute(
                text(
                    f"""
                    SELECT request_id, count(*) FILTER (WHERE state <> 'dropped') AS targets,
                           coalesce(sum(jsonb_array_length(cameras) + cameras_erased)
                                        FILTER (WHERE state <> 'dropped'), 0) AS cameras,
                           count(*) FILTER (WHERE state = 'dropped') AS dropped,
                           count(*) FILTER (WHERE notified_at IS NOT NULL) AS notified,
                           count(*) FILTER (WHERE {sharing("state")}) AS accepted,
                           count(*) FILTER (WHERE state IN ('uploaded', 'completed')) AS uploaded
                    FROM requests.targets WHERE request_id = ANY(:ids) GROUP BY request_id
                    """  # noqa: S608 - composed from constants; values are bound
                ),
                {"ids": ids},
            )
        )
        .mappings()
        .all()
    )
    out = {
        i: {
            "targets": 0,
            "cameras": 0,
            "notified": 0,
            "accepted": 0,
            "uploaded": 0,
            "not_fulfilled": 0,
            "dropped": 0,
        }
        for i in ids
    }
    for r in rows:
        out[r["request_id"]] = {
            "targets": r["targets"],
            "cameras": int(r["cameras"]),
            "notified": r["notified"],
            "accepted": r["accepted"],
            "uploaded": r["uploaded"],
            "not_fulfilled": r["notified"] - r["accepted"],
            "dropped": r["dropped"],
        }
    return out


async def target_rows(
    session: AsyncSession, request_id: uuid.UUID, *, shared_only: bool = False
) -> list[RowMapping]:
    """The request's targets, most urgent first; with shared_only, only those whose owner accepted at some point
    (every sharing state passes through an accept): what the agency may see one by one once it is sent."""
    sql = f"SELECT {TARGET_COLUMNS} FROM requests.targets t WHERE t.request_id = :rid"  # noqa: S608 - composed from constants; values are bound
    if shared_only:
        sql += f" AND {shared_at_some_point('t')}"
    sql += " ORDER BY t.footage_until NULLS LAST, t.distance_m NULLS LAST, t.id"
    return list((await session.execute(text(sql), {"rid": request_id})).mappings().all())


def route_of(row: RowMapping) -> dict[str, Any]:
    value = row["route"]
    return value if isinstance(value, dict) else orjson.loads(value)


def window_of_cameras(cameras: list[dict[str, Any]]) -> tuple[datetime, datetime] | None:
    """The span of stored cameras' own windows (along a route): what their owner is asked for."""
    windows: list[tuple[datetime, datetime] | None] = []
    for c in cameras:
        w = c.get("window")
        start, end = (
            (geo_client.parse_time(w["start"]), geo_client.parse_time(w["end"])) if w else (None, None)
        )
        windows.append((start, end) if start is not None and end is not None else None)
    return geo_client.window_of(windows)


def target_window(t: RowMapping) -> dict[str, Any] | None:
    return {"start": t["window_start"], "end": t["window_end"]} if t["window_start"] is not None else None


def cameras_of(target: RowMapping) -> list[dict[str, Any]]:
    value = target["cameras"]
    return value if isinstance(value, list) else orjson.loads(value)


def target_out(t: RowMapping) -> dict[str, Any]:
    cameras = cameras_of(t)
    return {
        "id": t["id"],
        "registration_id": t["registration_id"],
        "state": t["state"],
        "footage_until": t["footage_until"],
        "distance_m": t["distance_m"],
        "window": target_window(t),
        "cameras": cameras,
        "notified_at": t["notified_at"],
        "answered_at": t["answered_at"],
    }


async def request_out(session: AsyncSession, row: RowMapping, role: str) -> dict[str, Any]:
    summary = (await summaries(session, [row["id"]]))[row["id"]]
    # Before the request is sent, the investigator sees every owner it would reach; afterwards only the owners
    # who chose to share (and stay shown if their footage then proves unavailable or the request ends): who
    # declined, ignored it or had no video is never shown (silent decline).
    targets = await target_rows(session, row["id"], shared_only=row["sent_at"] is not None)
    return {
        "id": row["id"],
        "agency": row["agency"],
        "case_number": row["case_number"],
        "category": row["category"],
        "state": row["state"],
        "incident": orjson.Fragment(row["incident"]),
        "area": orjson.Fragment(row["area"]),
        "area_kind": row["area_kind"],
        "radius_m": row["radius_m"],
        "route": route_of(row) if row["route"] is not None else None,
        "area_m2": round(row["area_m2"], 1),
        "window": {"start": row["window_start"], "end": row["window_end"]},
        "message": row["message"],
        "due_at": row["due_at"],
        "requires_approval": row["requires_approval"],
        "legal_hold": row["legal_hold"],
        "evidence_retention_days": row["evidence_retention_days"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "sent_at": row["sent_at"],
        "finished_at": row["finished_at"],
        "version": row["version"],
        "summary": summary,
        "targets": [target_out(t) for t in targets],
        "allowed_actions": [
            a for a in allowed_actions(REQUEST_TRANSITIONS, row["state"], role) if a != "expire"
        ],
    }


async def history(session: AsyncSession, request_id: uuid.UUID) -> list[dict[str, Any]]:
    """The request's history as its agency may see it (`AGENCY_VISIBLE_EVENT`). Nothing else of it shows, not
    even as a count or a gap: events are numbered by their position in this history, not by their row id (a
    gap in ids would count the hidden ones)."""
    rows = (
        (
            await session.execute(
                text(
                    "SELECT row_number() OVER (ORDER BY e.id) AS position, e.at, e.target_id, e.actor,"  # noqa: S608 - composed from constants; values are bound
                    " e.actor_role, e.action, e.from_state, e.to_state, e.note, e.note_enc,"
                    " t.registration_id AS owner_registration_id"
                    " FROM requests.events e LEFT JOIN requests.targets t ON t.id = e.target_id"
                    f" WHERE e.request_id = :rid AND {AGENCY_VISIBLE_EVENT} ORDER BY e.id"
                ),
                {"rid": request_id},
            )
        )
        .mappings()
        .all()
    )
    notes = await open_notes(rows)
    return [
        {
            "id": r["position"],
            "at": r["at"],
            "subject": "request" if r["target_id"] is None else "target",
            "target_id": r["target_id"],
            "actor": r["actor"],
            "actor_role": r["actor_role"],
            "action": r["action"],
            "from_state": r["from_state"],
            "to_state": r["to_state"],
            "note": note,
        }
        for r, note in zip(rows, notes, strict=True)
    ]


# --- transitions -----------------------------------------------------------------------------------------


async def transition(
    session: AsyncSession,
    row: RowMapping,
    action: str,
    actor: Actor,
    note: str | None,
    authorization: str,
) -> None:
    """Take an agency action on a request, with its consequences, in the caller's transaction. The request's
    own event is written last, after every change it stands for."""
    rid, state = row["id"], row["state"]
    # The table first (409 for a transition it lacks, 403 for a role it does not name): what follows only
    # narrows a transition the caller's role may take.
    check(REQUEST_TRANSITIONS, "request", state, action, actor.role)
    if (state, action) in REQUEST_TRANSITIONS:
        if action in ("approve", "reject") and actor.sub == row["created_by"]:
            raise Problem(403, "A supervisor other than the request's creator must approve or reject it.")
        if state == "draft" and action == "send" and row["requires_approval"]:
            raise Problem(
                409,
                "This agency's policy requires a supervisor's approval before a request reaches owners: submit it.",
                kind="approval-required",
                title="Approval required",
            )
        if action in ("send", "approve"):
            await _check_sendable(session, row, authorization, actor)
    await transition_request(session, rid, state, action, actor, note, event=False)
    if action == "approve":
        await write_request_event(session, rid, state, action, actor, note)
        # Approval sends the request at once: nothing else stands between it and the owners.
        await transition_request(session, rid, "approved", "send", actor, None, event=False)
        await _send(session, row, actor)
        await write_request_event(session, rid, "approved", "send", actor, "sent on approval")
        return
    if action == "send":
        await _send(session, row, actor)
    elif action == "cancel" and row["sent_at"] is not None:
        moved = await cascade_targets(
            session, rid, dict.fromkeys(TARGET_OPEN, "expire"), _on_behalf(actor), "request cancelled"
        )
        for t in moved:
            if t["from"] != "pending":
                target = await _target(session, t["id"])
                await outbox.enqueue_owner(session, row, target, "request_cancelled")
    elif action in ("close",):
        await cascade_targets(
            session,
            rid,
            {**dict.fromkeys(TARGET_OPEN, "expire"), "uploaded": "complete"},
            _on_behalf(actor),
            "request closed",
        )
    await write_request_event(session, rid, state, action, actor, note)


async def _check_sendable(session: AsyncSession, row: RowMapping, authorization: str, actor: Actor) -> None:
    if row["due_at"] <= now():
        raise Problem(409, "The request's due date has passed; create a new request.", kind="conflict")
    await _resolve_again(session, row, authorization, actor)
    n = (
        await session.execute(
            text("SELECT count(*) FROM requests.targets WHERE request_id = :r AND state = 'pending'"),
            {"r": row["id"]},
        )
    ).scalar_one()
    if n == 0:
        raise Problem(409, "The request reaches no owner: there is nobody to send it to.", kind="conflict")


async def _resolve_again(session: AsyncSession, row: RowMapping, authorization: str, actor: Actor) -> None:
    """The owners chosen when the draft was made are asked again of geo_query (as the caller sees them now),
    just before the request reaches them: an owner who since paused, withdrew, deleted their registration,
    stopped sharing with the agency, removed the camera or no longer shares its recorded footage is no longer in
    the answer and is dropped (recorded, never contacted, not counted as reached); an owner who still has some of
    the cameras is asked about those only. Who was dropped is never shown, only how many."""
    point = orjson.loads(row["incident"])["coordinates"]
    lon, lat = float(point[0]), float(point[1])
    incident_at = row["window_start"].astimezone(UTC)
    if row["area_kind"] == "route":
        found = (await geo_client.cameras_along(authorization, row["case_number"], route_of(row))).cameras
    elif row["area_kind"] == "radius":
        found = await geo_client.cameras_in(
            authorization, row["case_number"], incident_at, (lon, lat), radius_m=row["radius_m"]
        )
    else:
        found = await geo_client.cameras_in(
            authorization, row["case_number"], incident_at, (lon, lat), area_geojson=orjson.loads(row["area"])
        )
    reachable = {(c.registration_id, str(c.id)) for c in geo_client.willing(found)}
    targets = (
        (
            await session.execute(
                text(
                    "SELECT id, registration_id, cameras FROM requests.targets"
                    " WHERE request_id = :rid AND state = 'pending' ORDER BY id FOR UPDATE"
                ),
                {"rid": row["id"]},
            )
        )
        .mappings()
        .all()
    )
    for t in targets:
        cameras = cameras_of(t)
        # A deleted owner's target has no cameras left (erased): it is dropped like any owner no longer found.
        kept = [c for c in cameras if (t["registration_id"], c["camera_id"]) in reachable]
        if not kept:
            await transition_target(
                session, row["id"], t["id"], "pending", "drop", _on_behalf(actor), "no longer reachable"
            )
        elif len(kept) < len(cameras):
            await session.execute(
                text(
                    "UPDATE requests.targets SET cameras = CAST(:cameras AS jsonb), footage_until = :until,"
                    " distance_m = :distance, window_start = coalesce(:wstart, window_start),"
                    " window_end = coalesce(:wend, window_end), updated_at = now() WHERE id = :id"
                ),
                {
                    "id": t["id"],
                    "cameras": orjson.dumps(kept).decode(),
                    "until": min(
                        (u for c in kept if (u := geo_client.parse_time(c["footage_until"])) is not None),
                        default=None,
                    ),
                    "distance": min(
                        (c["distance_m"] for c in kept if c["distance_m"] is not None), default=None
                    ),
                    **dict(zip(("wstart", "wend"), window_of_cameras(kept) or (None, None), strict=True)),
                },
            )


async def _target(session: AsyncSession, target_id: uuid.UUID) -> RowMapping:
    return (
        (
            await session.execute(
                text(f"SELECT {TARGET_COLUMNS} FROM requests.targets t WHERE t.id = :id"),  # noqa: S608 - composed from constants; values are bound
                {"id": target_id},
            )
        )
        .mappings()
        .one()
    )


def _on_behalf(actor: Actor) -> Actor:
    """Targets move as a consequence of a request's transition: by the system, on the person's behalf."""
    return Actor(actor.sub, "system", actor.agency)


async def _send(session: AsyncSession, row: RowMapping, actor: Actor) -> None:
    """Every target is notified: its state moves and its message enters the outbox, in this transaction."""
    moved = await cascade_targets(session, row["id"], {"pending": "notify"}, _on_behalf(actor), None)
    for t in moved:
        await outbox.enqueue_owner(session, row, await _target(session, t["id"]), "request")


async def expire(session: AsyncSession, row: RowMapping, actor: Actor) -> None:
    """The worker's expiry of a request past its due date."""
    rid, state = row["id"], row["state"]
    await transition_request(session, rid, state, "expire", actor, None, event=False)
    await cascade_targets(
        session,
        rid,
        {**dict.fromkeys(TARGET_OPEN, "expire"), "uploaded": "complete"},
        actor,
        "request expired",
    )
    await write_request_event(session, rid, state, "expire", actor, "due date passed")
    if state == "sent":
        summary = (await summaries(session, [rid]))[rid]
        await outbox.enqueue_agency(session, row, "request.expired", summary)


# --- owners ----------------------------------------------------------------------------------------------


async def owner_target(
    session: AsyncSession, request_id: uuid.UUID, registration_id: uuid.UUID
) -> RowMapping:
    """The owner's target in a request that reached them; anything else is a 404."""
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {TARGET_COLUMNS} FROM requests.targets t JOIN requests.requests r ON r.id = t.request_id"  # noqa: S608 - composed from constants; values are bound
                    " WHERE t.request_id = :rid AND t.registration_id = :reg AND t.notified_at IS NOT NULL"
                ),
                {"rid": request_id, "reg": registration_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise Problem(404, f"No request {request_id} reached your registration.")
    return row


async def owner_view(session: AsyncSession, req: RowMapping, target: RowMapping) -> dict[str, Any]:
    cameras = cameras_of(target)
    answers = allowed_actions(TARGET_TRANSITIONS, target["state"], "owner")
    if req["state"] != "sent":
        answers = []
    evidence = (
        (
            await session.execute(
                text(
                    "SELECT e.id, e.sha256, e.size_bytes, e.media_type, e.uploaded_at,"  # noqa: S608 - composed from constants; values are bound
                    f" {EVIDENCE_SEALED_COLUMNS} FROM requests.evidence e JOIN requests.targets t ON t.id = e.target_id"
                    " WHERE e.target_id = :tid AND e.deleted_at IS NULL ORDER BY e.uploaded_at, e.id"
                ),
                {"tid": target["id"]},
            )
        )
        .mappings()
        .all()
    )
    return {
        "request_id": req["id"],
        "target_id": target["id"],
        "agency": req["agency"],
        "agency_name": req["agency_name"],
        "category": req["category"],
        "message": req["message"],
        "window": target_window(target) or {"start": req["window_start"], "end": req["window_end"]},
        "due_at": req["due_at"],
        "request_state": req["state"],
        "state": target["state"],
        "cameras": cameras,
        "footage_until": target["footage_until"],
        "allowed_answers": [a for a in answers if a in ("accept", "decline", "unavailable")],
        "evidence": [
            {k: e[k] for k in ("id", "sha256", "size_bytes", "media_type", "filename", "uploaded_at")}
            for e in await open_evidence(evidence)
        ],
    }
