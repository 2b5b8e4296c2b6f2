"""Registrations: the one-call registration (by the owner, or by an advocate on the owner's behalf), and the
owner's self-service with the management credential: read, update, cameras, pause/withdraw, sharing,
re-confirmation and deletion (which removes the personal data for real)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, BackgroundTasks, Response

from services.registry_api import abuse, idempotency
from services.registry_api.auditing import audit, audit_event, owner_actor
from services.registry_api.database import SessionDep, db
from services.registry_api.dependencies import (
    IF_MATCH_REQUIRED,
    NO_STORE,
    IdempotencyKey,
    IfMatch,
    RequiredIfMatch,
)
from services.registry_api.notices import send_quietly
from services.registry_api.repository import cameras as camera_repo
from services.registry_api.repository import registrations as repo
from services.registry_api.repository.agencies import (
    agencies_by_slugs,
    agency_by_slug,
    check_in_jurisdiction,
    outside_jurisdiction,
)
from services.registry_api.repository.live_windows import close_open_windows, narrow_open_windows
from services.registry_api.repository.sharing import recompute_visibility, replace_shares
from services.registry_api.schemas import (
    CameraIn,
    CameraPatch,
    RegistrationCreate,
    RegistrationCreated,
    RegistrationFeature,
    RegistrationPatch,
)
from services.registry_api.sealing import (
    email_index,
    new_registration_key,
    owner_text_key,
    reg_context,
    seal,
    seal_owner_text,
    unseal,
)
from services.registry_api.shapes import build_feature
from shared import idempotency as shared_idempotency
from shared.audit import append_asyncpg
from shared.auth import (
    TOKEN_OPTIONAL,
    CurrentOwner,
    OptionalPrincipal,
    Principal,
    format_owner_credential,
    new_owner_credential,
)
from shared.concurrency import check_if_match, etag
from shared.crypto import keyring
from shared.db import pooled
from shared.errors import Problem, invalid, problem_responses
from shared.geojson import GeoJSONResponse, Point
from shared.keystore import DataKey, keystore, open_with
from shared.links import CREATED_ID, link

router = APIRouter(
    prefix="/v1/registrations",
    tags=["registrations"],
    default_response_class=GeoJSONResponse,
    dependencies=[abuse.RememberClient],
)

GEOJSON = "application/geo+json"
ADVOCATE_ROLES = ("advocate", "agency_admin")

FEATURE_EXAMPLE: dict[str, Any] = {
    "type": "Feature",
    "id": "6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f",
    "geometry": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "properties": {
        "agency": "milwaukee-pd",
        "status": "active",
        "owner_kind": "business",
        "business_name": "Water Street Bakery",
        "address": "123 N Water St, Milwaukee, WI",
        "contact": {
            "name": "Dana Rivera",
            "email": "dana@example.org",
            "phone": None,
            "preferred_method": "email",
        },
        "shared_with": ["milwaukee-pd"],
        "source": "owner",
        "cameras": [
            {
                "id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "location": {"type": "Point", "coordinates": [-87.90655, 43.03895]},
                "label": "front door",
                "direction_deg": 90,
                "fov_deg": 110,
                "range_m": 20,
                "placement": "outdoor",
                "covers": ["street", "sidewalk"],
                "retention_days": 30,
                "recording": "motion",
                "shares_history": True,
                "live_mode": "never",
            }
        ],
        "last_confirmed_at": "2026-11-21T15:00:00Z",
        "reconfirm_due_at": "2027-11-21T15:00:00Z",
        "version": 1,
        "created_at": "2026-11-21T15:00:00Z",
        "updated_at": "2026-11-21T15:00:00Z",
    },
}
CREATED_EXAMPLE = {
    **FEATURE_EXAMPLE,
    "credential": "cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3...secret",
    "credential_delivery": "response",
}


def _feature_responses(status: int, example: dict[str, Any], *problems: int) -> dict[int | str, Any]:
    return {status: {"content": {GEOJSON: {"example": example}}}, **problem_responses(*problems)}


def _with_links(responses: dict[int | str, Any], status: int, links: dict[str, Any]) -> dict[int | str, Any]:
    responses[status]["links"] = links
    return responses


# What the owner does next with a new registration (the credential in the answer is theirs to send).
_OWNER = "Bearer {$response.body#/credential}"
REGISTRATION_LINKS = {
    "ReadRegistration": link(
        "read_registration_v1_registrations__registration_id__get",
        "Read the registration",
        registration_id=CREATED_ID,
        **{"header.Authorization": _OWNER},
    ),
    "UpdateRegistration": link(
        "update_registration_v1_registrations__registration_id__patch",
        "Change the registration",
        registration_id=CREATED_ID,
        **{"header.Authorization": _OWNER, "header.If-Match": "$response.header.ETag"},
    ),
    "DeleteRegistration": link(
        "delete_registration_v1_registrations__registration_id__delete",
        "Delete the registration and its cameras",
        registration_id=CREATED_ID,
        **{"header.Authorization": _OWNER, "header.If-Match": "$response.header.ETag"},
    ),
    "AddCamera": link(
        "add_camera_v1_registrations__registration_id__cameras_post",
        "Add a camera",
        registration_id=CREATED_ID,
        **{"header.Authorization": _OWNER},
    ),
    "UpdateFirstCamera": link(
        "update_camera_v1_registrations__registration_id__cameras__camera_id__patch",
        "Change its first camera",
        registration_id=CREATED_ID,
        camera_id="$response.body#/properties/cameras/0/id",
        **{"header.Authorization": _OWNER, "header.If-Match": "$response.header.ETag"},
    ),
    "RemoveFirstCamera": link(
        "remove_camera_v1_registrations__registration_id__cameras__camera_id__delete",
        "Remove its first camera",
        registration_id=CREATED_ID,
        camera_id="$response.body#/properties/cameras/0/id",
        **{"header.Authorization": _OWNER, "header.If-Match": "$response.header.ETag"},
    ),
}


def _feature(body: dict[str, Any], version: int, status: int = 200, **headers: str) -> GeoJSONResponse:
    return GeoJSONResponse(body, status_code=status, headers={"ETag": etag(version), **NO_STORE, **headers})


# --- registration ----------------------------------------------------------------------------------------


@router.post(
    "",
    summary="Register cameras in one call (owner, or an advocate on the owner's behalf)",
    status_code=201,
    response_model=RegistrationCreated,
    responses=_with_links(_feature_responses(201, CREATED_EXAMPLE, 403, 409), 201, REGISTRATION_LINKS),
    openapi_extra=TOKEN_OPTIONAL,
    description=(
        "Anyone may register without an account: the answer carries a management credential, shown once. "
        "Agency staff with the advocate role register on an owner's behalf (recorded as such); the owner "
        "then receives the credential by email, or, without an email, the advocate reads it to them. "
        "Every camera must lie in the program agency's jurisdiction."
    ),
)
async def create_registration(
    body: RegistrationCreate,
    principal: OptionalPrincipal,
    background: BackgroundTasks,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if principal is not None and not principal.has(*ADVOCATE_ROLES):
        raise Problem(
            403,
            "Agency users register on an owner's behalf with the advocate role; owners register without a token.",
        )
    if principal is not None and principal.agency != body.agency:
        raise Problem(
            403,
            f"Advocates register owners with their own agency's program ('{principal.agency}'), not '{body.agency}'.",
        )
    scope = shared_idempotency.principal_key(principal)
    digest = shared_idempotency.request_hash(body.model_dump(mode="json")) if idempotency_key else b""
    pool = await db.pool()
    async with pooled(pool) as conn:
        try:
            response, mail = await _register(conn, body, principal, idempotency_key, scope, digest)
        except asyncpg.IntegrityConstraintViolationError:
            # A concurrent request with the same key committed first (its key is now taken): answer as it did.
            if idempotency_key:
                stored = await idempotency.lookup(conn, idempotency_key, scope, digest)
                if stored is not None:
                    return _replay(stored)
            raise
    if mail is not None:
        background.add_task(send_quietly, *mail)
    return response


# A stored answer that repeats an owner's free texts is sealed once more under the registration's data key:
# REPLAY_SEALED | registration id (16 bytes) | sealed under the data key. Without the key (the registration was
# deleted, its stored answers with it) there is nothing to replay.
REPLAY_SEALED = b"\x01"


def _seal_replay(data_key: DataKey, rid: uuid.UUID, sealed: bytes) -> bytes:
    inner = data_key.seal(sealed.hex(), f"registration:{rid}:replay")
    assert inner is not None
    return REPLAY_SEALED + rid.bytes + inner


async def _open_replay(check: Any) -> Any:
    """The check's row with its stored answer's body as shared/idempotency sealed it."""
    body = bytes(check["body"])
    if body[:1] != REPLAY_SEALED:
        return check
    rid = uuid.UUID(bytes=body[1:17])
    inner = open_with(await keystore("registry_api").key(rid), body[17:], f"registration:{rid}:replay")
    if inner is None:
        raise Problem(404, f"No registration {rid}.")
    return {**check, "body": bytes.fromhex(inner)}


def _replay(stored: shared_idempotency.Stored) -> Response:
    return GeoJSONResponse(
        stored.body,
        status_code=stored.status,
        headers={**stored.headers, **NO_STORE, "Idempotent-Replayed": "true"},
    )


NEW_STATUS, NEW_VERSION = "active", 1


def _refuse_live_sharing_by_proxy(cameras: list[CameraIn]) -> None:
    """Live sharing is a mode only the owner sets (an advocate registering on the owner's behalf may not, just as
    an import may not): the owner turns it on later with their own credential."""
    for i, camera in enumerate(cameras):
        if camera.live_mode not in (None, "never"):
            raise invalid(
                f"/body/cameras/{i}/live_mode",
                "only the owner can turn on live sharing, with their own credential after registering",
            )
        if camera.live_endpoint is not None:
            raise invalid(
                f"/body/cameras/{i}/live_endpoint",
                "only the owner can register a live-stream endpoint, with their own credential after registering",
            )


async def _register(
    conn: asyncpg.Connection,
    body: RegistrationCreate,
    principal: Principal | None,
    key: str | None,
    scope: str,
    digest: bytes,
) -> tuple[Response, tuple[str, str, str] | None]:
    """Two round trips: the checks (and a stored answer to replay), then one statement that writes everything;
    an advocate's registration and its audit record commit in one transaction."""
    cameras = body.cameras or [CameraIn()]
    points = [("/body/location", body.location)]
    points += [(f"/body/cameras/{i}/location", c.location) for i, c in enumerate(cameras) if c.location]
    args = {
        "slug": body.agency,
        "pts": [p.geojson() for _, p in points],
        "shares": body.share_with,
        "key": key,
        "principal": scope,
        "window_s": float(shared_idempotency.replay_window_s()),
    }
    check = await repo.check_new_registration(conn, args)
    if check["request_hash"] is not None:
        assert key is not None
        if bytes(check["request_hash"]) == digest:
            check = await _open_replay(check)
        return _replay(shared_idempotency.replayed(check, key, scope, digest)), None
    if principal is not None:
        _refuse_live_sharing_by_proxy(cameras)
    _refuse_unchecked(check, body, points)
    share_ids = sorted({check["id"], *check["share_ids"]})
    share_slugs = sorted({check["slug"], *check["share_slugs"]})

    contact = body.contact
    # The owner's free texts are sealed under the registration's own data key: a registration with any takes its
    # id and key together from the key store's batch of fresh ones (shared/keystore.py).
    texts = {
        "business_name": body.business_name,
        "contact_hours": contact.hours,
        "notes_for_investigators": body.notes_for_investigators,
    }
    data_key: DataKey | None = None
    if any(v is not None for v in texts.values()):
        rid, data_key = await new_registration_key()
    else:
        rid = uuid.uuid4()
    cred = new_owner_credential(rid)
    terms_at = (body.terms.accepted_at or datetime.now(UTC)) if body.terms else None
    advocate = principal is not None
    row = _feature_row(rid, check, body, principal, terms_at, share_slugs)
    cams = [camera_repo.camera_params(uuid.uuid4(), c, c.location or body.location) for c in cameras]
    for c, given in zip(cams, cameras, strict=True):
        point = given.location or body.location
        c["lon"], c["lat"] = point.coordinates[0], point.coordinates[1]
    feature = build_feature(row, cams)
    credential = format_owner_credential(cred)
    mail = None
    if advocate and contact.email:
        # The advocate never holds the owner's credential when it can reach the owner directly.
        out = {**feature, "credential": None, "credential_delivery": "email"}
        mail = (
            contact.email,
            f"Your camera registration with {check['name']}",
            _advocate_mail(check["name"], rid, credential),
        )
    else:
        out = {**feature, "credential": credential, "credential_delivery": "response"}
    location = f"/v1/registrations/{rid}"
    response = _feature(out, NEW_VERSION, 201, Location=location)
    # So is the stored answer that repeats them, else a backup of this database would keep them readable.
    sealed_texts = {
        c: seal_owner_text(data_key, rid, c, v) if data_key is not None else None for c, v in texts.items()
    }
    sealed, headers = (
        shared_idempotency.seal(
            shared_idempotency.Stored(
                201, bytes(response.body), {"etag": etag(NEW_VERSION), "location": location}
            ),
            key,
            scope,
        )
        if key
        else (None, None)
    )
    if sealed is not None and data_key is not None:
        sealed = _seal_replay(data_key, rid, sealed)
    values = {
        **_registration_values(rid, check, body, row, sealed_texts, cred.secret_hash, share_ids),
        **_camera_values(cams),
        **_replay_values(key, scope, digest, sealed, headers, rid),
    }
    await _store(conn, values, principal, check["slug"], rid, len(cameras))
    return response, mail


def _refuse_unchecked(check: Any, body: RegistrationCreate, points: list[tuple[str, Any]]) -> None:
    """A registration the checks refuse: no such program, a location outside its jurisdiction, an unknown
    agency to share with."""
    if check["id"] is None:
        raise invalid(
            "/body/agency",
            f"no agency program '{body.agency}' (see GET /v1/agencies/covering)",
            code="unknown_agency",
        )
    if check["outside"]:
        raise outside_jurisdiction(check, points, check["outside"])
    unknown = [(i, s) for i, s in enumerate(body.share_with) if s not in check["share_slugs"]]
    if unknown:
        raise invalid(
            f"/body/share_with/{unknown[0][0]}", f"no agency '{unknown[0][1]}'", code="unknown_agency"
        )


def _feature_row(
    rid: uuid.UUID,
    check: Any,
    body: RegistrationCreate,
    principal: Principal | None,
    terms_at: datetime | None,
    share_slugs: list[str],
) -> dict[str, Any]:
    """The new registration as its Feature shows it (contact details sealed under the keyring)."""
    now = check["now"]
    contact = body.contact
    return {
        "id": rid,
        "agency": check["slug"],
        "status": NEW_STATUS,
        "version": NEW_VERSION,
        "owner_kind": body.owner_kind,
        "business_name": body.business_name,
        "lon": body.location.coordinates[0],
        "lat": body.location.coordinates[1],
        "address_enc": seal(body.address, reg_context(rid, "address")),
        "contact_name_enc": seal(contact.name, reg_context(rid, "name")),
        "contact_email_enc": seal(contact.email, reg_context(rid, "email")),
        "contact_phone_enc": seal(contact.phone, reg_context(rid, "phone")),
        "preferred_contact_method": contact.preferred_method,
        "contact_hours": contact.hours,
        "notes_for_investigators": body.notes_for_investigators,
        "terms_version": body.terms.version if body.terms else None,
        "terms_accepted_at": terms_at,
        "source": "advocate" if principal is not None else "owner",
        "registered_by": principal.sub if principal else None,
        "shared_with": share_slugs,
        "last_confirmed_at": now,
        "reconfirm_due_at": now + timedelta(days=check["reconfirm_after_days"]),
        "created_at": now,
        "updated_at": now,
    }


def _registration_values(
    rid: uuid.UUID,
    check: Any,
    body: RegistrationCreate,
    row: dict[str, Any],
    sealed_texts: dict[str, bytes | None],
    credential_hash: bytes,
    share_ids: list[uuid.UUID],
) -> dict[str, Any]:
    """The registration's parameters of the one statement that writes it (repo.insert_registration)."""
    contact = body.contact
    return {
        "id": rid,
        "agency_id": check["id"],
        "reg_status": NEW_STATUS,
        "version": NEW_VERSION,
        "owner_kind": body.owner_kind,
        "business_name": sealed_texts["business_name"],
        "location": body.location.geojson(),
        "address_enc": row["address_enc"],
        "name_enc": row["contact_name_enc"],
        "email_enc": row["contact_email_enc"],
        "phone_enc": row["contact_phone_enc"],
        "email_index": email_index(contact.email),
        "key_id": keyring().current,
        "preferred": contact.preferred_method,
        "hours": sealed_texts["contact_hours"],
        "notes": sealed_texts["notes_for_investigators"],
        "terms_version": row["terms_version"],
        "terms_at": row["terms_accepted_at"],
        "credential_hash": credential_hash,
        "now": check["now"],
        "source": row["source"],
        "registered_by": row["registered_by"],
        "share_ids": share_ids,
    }


def _camera_values(cams: list[dict[str, Any]]) -> dict[str, Any]:
    """The cameras' parameters of that statement: one array per column."""
    return {
        "covers": orjson.dumps([c["covers"] for c in cams]).decode(),
        "c_id": [c["id"] for c in cams],
        "c_geom": [c["geom"] for c in cams],
        "c_label": [c["label"] for c in cams],
        "c_direction": [c["direction_deg"] for c in cams],
        "c_fov": [c["fov_deg"] for c in cams],
        "c_range": [c["range_m"] for c in cams],
        "c_placement": [c["placement"] for c in cams],
        "c_retention": [c["retention_days"] for c in cams],
        "c_recording": [c["recording"] for c in cams],
        "c_schedule": [c["schedule"] for c in cams],
        "c_history": [c["shares_history"] for c in cams],
        "c_live_mode": [c["live_mode"] for c in cams],
        "c_live_endpoint": [c["live_endpoint_enc"] for c in cams],
    }


def _replay_values(
    key: str | None, scope: str, digest: bytes, sealed: bytes | None, headers: Any, rid: uuid.UUID
) -> dict[str, Any]:
    """The stored answer's parameters of that statement (none kept without an Idempotency-Key)."""
    return {
        "key": key,
        "principal": scope,
        "digest": digest,
        "status": 201,
        "body": sealed,
        "headers": headers,
        "sweep": idempotency.KEYS.sweep_due(),
        "window_s": float(shared_idempotency.replay_window_s()),
        "owner": rid,
    }


async def _store(
    conn: asyncpg.Connection,
    values: dict[str, Any],
    principal: Principal | None,
    agency: str,
    rid: uuid.UUID,
    n_cameras: int,
) -> None:
    """Write the registration in its one statement; an advocate's with its audit record, in one transaction."""
    if principal is None:
        # An owner's own registration is not an agency action, so not an audit event (and the audit chain's
        # single writer would otherwise cap registrations per second): one statement, committed on its own.
        await repo.insert_registration(conn, values)
    else:
        # Agency staff acting for an owner is audited, in the transaction that writes the registration.
        async with conn.transaction():
            await repo.insert_registration(conn, values)
            await append_asyncpg(
                conn,
                audit_event(
                    "registration.create",
                    actor=principal.sub,
                    role="advocate",
                    agency=agency,
                    subject_id=rid,
                    details={"source": "advocate", "cameras": n_cameras},
                ),
            )


def _advocate_mail(agency_name: str, rid: uuid.UUID, credential: str) -> str:
    return (
        f"{agency_name} registered your security camera(s) with its community camera program, as you asked on "
        "the phone.\n\n"
        "Registration gives nobody access to your cameras. You can see, change, pause or delete your "
        "registration at any time with this management credential (keep it private; it is shown only once):\n\n"
        f"    {credential}\n\n"
        f"Registration: {rid}\n"
        "If you did not ask for this, delete the registration with the credential above.\n"
    )


# --- owner self-service ----------------------------------------------------------------------------------


@router.get(
    "/{registration_id}",
    summary="Read your registration (owner credential)",
    response_model=RegistrationFeature,
    responses=_feature_responses(200, FEATURE_EXAMPLE, 401, 429, 404),
)
async def read_registration(registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep) -> Response:
    row = await repo.owned_registration(session, registration_id, owner)
    return _feature(await repo.registration_feature(session, row), row["version"])


@router.patch(
    "/{registration_id}",
    summary="Update your registration: details, contact, pause or withdraw, sharing (If-Match required)",
    response_model=RegistrationFeature,
    responses=_feature_responses(200, FEATURE_EXAMPLE, 401, 429, 404, 412, 428),
    openapi_extra=IF_MATCH_REQUIRED,
)
async def update_registration(
    registration_id: uuid.UUID,
    body: RegistrationPatch,
    owner: CurrentOwner,
    session: SessionDep,
    if_match: RequiredIfMatch,
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=True)
    rid = row["id"]
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    put = changes.__setitem__
    if body.location is not None:
        agency = await agency_by_slug(session, row["agency"])
        assert agency is not None
        await check_in_jurisdiction(session, agency, [("/body/location", body.location)])
    if "address" in given:
        put("address_enc", seal(body.address, reg_context(rid, "address")))
    if body.contact is not None and _merge_contact(row, body, put):
        # A code mailed to the old address must not open the registration once the owner has left that mailbox.
        await repo.forget_resets(session, rid)
    for column in ("owner_kind", "status"):
        if column in given:
            put(column, getattr(body, column))
    texts: dict[str, str | None] = {
        c: getattr(body, c) for c in ("business_name", "notes_for_investigators") if c in given
    }
    if body.contact is not None and "hours" in body.contact.model_fields_set:
        texts["contact_hours"] = body.contact.hours
    if any(v is not None for v in texts.values()):
        data_key = await owner_text_key(rid)
        for column, value in texts.items():
            put(column + "_enc", seal_owner_text(data_key, rid, column, value))
    else:  # cleared: nothing to seal
        for column in texts:
            put(column + "_enc", None)
    if "terms" in given:
        put("terms_version", body.terms.version if body.terms else None)
        put("terms_accepted_at", (body.terms.accepted_at or datetime.now(UTC)) if body.terms else None)
    if body.share_with is not None:
        further = await agencies_by_slugs(session, body.share_with, "/body/share_with")
        await replace_shares(session, rid, row["agency_id"], list(further.values()))
    if changes or body.location is not None:
        put("key_id", keyring().current)
    await repo.update_registration(session, rid, changes, location=body.location)
    if given & {"status", "owner_kind", "share_with"}:
        await recompute_visibility(session, rid)
    if body.status in ("paused", "withdrawn"):
        await close_open_windows(session, rid)
    elif body.share_with is not None:
        await narrow_windows(session, row)
    await audit(
        session,
        "registration.update",
        actor=owner_actor(rid),
        role="owner",
        agency=row["agency"],
        subject_id=rid,
        details={"fields": sorted(given), **({"status": body.status} if body.status else {})},
    )
    feature, version = await repo.fresh_feature(session, rid)
    await session.commit()
    return _feature(feature, version)


def _merge_contact(row: Any, body: RegistrationPatch, put: Any) -> bool:
    """Stage the contact's changes; whether the email address changed."""
    rid = row["id"]
    patch = body.contact
    assert patch is not None
    given = patch.model_fields_set
    current = {
        "name": unseal(row["contact_name_enc"], reg_context(rid, "name")),
        "email": unseal(row["contact_email_enc"], reg_context(rid, "email")),
        "phone": unseal(row["contact_phone_enc"], reg_context(rid, "phone")),
    }
    merged = {k: (getattr(patch, k) if k in given else v) for k, v in current.items()}
    if merged["email"] is None and merged["phone"] is None:
        raise invalid(
            "/body/contact",
            "an email or a phone number must remain, so the agency can reach you",
            code="contact_required",
        )
    for k in ("name", "email", "phone"):
        if k in given:
            put(f"contact_{k}_enc", seal(merged[k], reg_context(rid, k)))
    if "email" in given:
        put("contact_email_index", email_index(merged["email"]))
    if "preferred_method" in given:
        put("preferred_contact_method", patch.preferred_method)
    return "email" in given and merged["email"] != current["email"]


@router.delete(
    "/{registration_id}",
    summary="Delete your registration and every piece of personal data in it, for real",
    status_code=204,
    responses={
        204: {
            "description": "Deleted: the registration, its cameras, shares, live windows and replays are gone",
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id, as in the service's logs",
                    "schema": {"type": "string"},
                    "example": "d9095b48f0b547d3b3e13f2a2a86d0d5",
                }
            },
        },
        **problem_responses(401, 429, 404, 412, 503),
    },
)
async def delete_registration(
    registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep, if_match: IfMatch = None
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=False)
    # The feed from which requests_api erases what the owner wrote in its requests' histories.
    await repo.record_deletion(session, row["id"])
    await repo.delete_registration(session, row)
    # Crypto-shredding: with its data key destroyed, what the owner wrote can no longer be opened in any copy of
    # this database (its files, WAL, replicas, backups). Destroyed before the deletion commits: a key store out
    # of reach fails the deletion (503; the owner retries) rather than leave the texts readable in backups.
    await keystore("registry_api").destroy([row["id"]])
    # The audit record comes last, as in every audited write: the chain's head is the last lock taken and is
    # held only for the append and the commit. Taken before the deletion's other locks, it deadlocked with a
    # writer that holds one of them and then appends its own record (a notification being marked sent holds
    # the row of its id, which the deletion removes with the registration; a jurisdiction change, the agency's
    # coverage lock, which the deletion's cameras are counted out under); and held across a wait for the feed's
    # reader or the key store's round trip, it would make every service's audited writes wait with it.
    await audit(
        session,
        "registration.delete",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=row["agency"],
        subject_id=row["id"],
    )
    await session.commit()
    return Response(status_code=204)


@router.post(
    "/{registration_id}/confirmation",
    summary="Re-confirm your registration is still accurate (the annual check)",
    response_model=RegistrationFeature,
    responses=_feature_responses(200, FEATURE_EXAMPLE, 401, 429, 404, 412),
)
async def reconfirm(
    registration_id: uuid.UUID, owner: CurrentOwner, session: SessionDep, if_match: IfMatch = None
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=False)
    await repo.reconfirm(session, row["id"])
    await audit(
        session,
        "registration.reconfirm",
        actor=owner_actor(row["id"]),
        role="owner",
        agency=row["agency"],
        subject_id=row["id"],
    )
    feature, version = await repo.fresh_feature(session, row["id"])
    await session.commit()
    return _feature(feature, version)


# --- cameras ---------------------------------------------------------------------------------------------


@router.post(
    "/{registration_id}/cameras",
    summary="Add a camera to your registration (answers with the registration)",
    status_code=201,
    response_model=RegistrationFeature,
    responses=_with_links(
        _feature_responses(201, FEATURE_EXAMPLE, 401, 429, 404, 412),
        201,
        {
            "ReadRegistration": link(
                "read_registration_v1_registrations__registration_id__get",
                "Read the registration with the new camera",
                registration_id="$request.path.registration_id",
            )
        },
    ),
)
async def add_camera(
    registration_id: uuid.UUID,
    body: CameraIn,
    owner: CurrentOwner,
    session: SessionDep,
    if_match: IfMatch = None,
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=False)
    agency = await agency_by_slug(session, row["agency"])
    assert agency is not None
    if body.location is not None:
        await check_in_jurisdiction(session, agency, [("/body/location", body.location)])
        location = body.location
    else:
        location = Point(type="Point", coordinates=[row["lon"], row["lat"]])
    if await camera_repo.camera_count(session, row["id"]) >= camera_repo.MAX_CAMERAS:
        raise Problem(
            409,
            f"A registration holds at most {camera_repo.MAX_CAMERAS} cameras; register another location separately.",
        )
    cid = uuid.uuid4()
    await camera_repo.insert_cameras(session, row["id"], [camera_repo.camera_params(cid, body, location)])
    await recompute_visibility(session, row["id"])
    await repo.touch(session, row["id"])
    feature, version = await repo.fresh_feature(session, row["id"])
    await session.commit()
    return _feature(feature, version, 201, Location=f"/v1/registrations/{row['id']}/cameras/{cid}")


@router.patch(
    "/{registration_id}/cameras/{camera_id}",
    summary="Change a camera: where it points, what it keeps, its live mode and endpoint (If-Match required)",
    response_model=RegistrationFeature,
    responses=_feature_responses(200, FEATURE_EXAMPLE, 401, 429, 404, 412, 428),
    openapi_extra=IF_MATCH_REQUIRED,
)
async def update_camera(
    registration_id: uuid.UUID,
    camera_id: uuid.UUID,
    body: CameraPatch,
    owner: CurrentOwner,
    session: SessionDep,
    if_match: RequiredIfMatch,
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=True)
    await _camera_of(session, row["id"], camera_id)
    given = body.model_fields_set
    for name in ("live_mode", "shares_history", "location"):
        if name in given and getattr(body, name) is None:
            raise invalid(f"/body/{name}", f"{name} cannot be null")
    if body.location is not None:
        agency = await agency_by_slug(session, row["agency"])
        assert agency is not None
        await check_in_jurisdiction(session, agency, [("/body/location", body.location)])
    changes = {c: getattr(body, c) for c in camera_repo.CAMERA_COLUMNS if c in given}
    if "covers" in given:
        changes["covers"] = body.covers or []
    await camera_repo.update_camera(
        session,
        camera_id,
        changes,
        location=body.location,
        live_endpoint=(body.live_endpoint,) if "live_endpoint" in given else None,
    )
    if given & {"live_mode", "live_endpoint"}:
        await narrow_windows(session, row)
    await repo.touch(session, row["id"])
    feature, version = await repo.fresh_feature(session, row["id"])
    await session.commit()
    return _feature(feature, version)


@router.delete(
    "/{registration_id}/cameras/{camera_id}",
    summary="Remove a camera from your registration (answers with the registration)",
    response_model=RegistrationFeature,
    responses=_feature_responses(200, FEATURE_EXAMPLE, 401, 429, 404, 409, 412),
)
async def remove_camera(
    registration_id: uuid.UUID,
    camera_id: uuid.UUID,
    owner: CurrentOwner,
    session: SessionDep,
    if_match: IfMatch = None,
) -> Response:
    row = await repo.owned_registration(session, registration_id, owner, lock=True)
    check_if_match(row["version"], if_match, required=False)
    await _camera_of(session, row["id"], camera_id)
    if await camera_repo.camera_count(session, row["id"]) <= 1:
        raise Problem(
            409, "This is the registration's last camera: pause, withdraw or delete the registration instead."
        )
    await camera_repo.remove_camera(session, row["id"], camera_id)
    feature, version = await repo.fresh_feature(session, row["id"])
    await session.commit()
    return _feature(feature, version)


async def narrow_windows(session: Any, row: Any) -> None:
    """Open live windows lose what the owner's change took away, for good; each change is audited."""
    for wid, closed in await narrow_open_windows(session, row["id"]):
        await audit(
            session,
            "live_window.close" if closed else "live_window.narrow",
            actor=owner_actor(row["id"]),
            role="owner",
            agency=row["agency"],
            subject_type="live_window",
            subject_id=wid,
            details={"registration_id": str(row["id"])},
        )


async def _camera_of(session: Any, rid: uuid.UUID, cid: uuid.UUID) -> None:
    if not await camera_repo.has_camera(session, rid, cid):
        raise Problem(404, f"Registration {rid} has no camera {cid}.")
