"""From an imported feature to the rows a job stages: the feature's properties read as a single registration's
body and validated by the very model a single registration is (`RegistrationCreate`), then sealed and shaped
for COPY. No database here: the job runner does the look-ups and the writing.

A feature's properties carry what a `RegistrationCreate` carries, with the registration's location in the
feature's geometry and the integrator's own `external_id`. Contact, terms and a single camera may also be
given flat (`contact_email`, `terms_version`, `direction_deg`, ...), which is what a CSV row always does.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from services.registry_api.import_parsing import RawFeature, Reprojection
from services.registry_api.schemas import CameraFields, RegistrationCreate, _plain_text
from services.registry_api.service import camera_context
from shared.auth import format_owner_credential, new_owner_credential
from shared.crypto import keyring

REGISTRATION_KEYS = (
    "owner_kind",
    "business_name",
    "address",
    "notes_for_investigators",
    "share_with",
    "contact",
    "cameras",
    "terms",
)
CONTACT_ALIASES = {
    "contact_name": "name",
    "name": "name",
    "contact_email": "email",
    "email": "email",
    "contact_phone": "phone",
    "phone": "phone",
    "contact_phone_region": "phone_region",
    "phone_region": "phone_region",
    "contact_preferred_method": "preferred_method",
    "preferred_method": "preferred_method",
    "contact_hours": "hours",
}
TERMS_ALIASES = {"terms_version": "version", "terms_accepted_at": "accepted_at"}
CAMERA_KEYS = tuple(k for k in CameraFields.model_fields)
KNOWN_PROPERTIES = frozenset(
    {"external_id", "agency", *REGISTRATION_KEYS, *CONTACT_ALIASES, *TERMS_ALIASES, *CAMERA_KEYS}
)
# A CSV row is flat: no nested contact, cameras or terms.
CSV_COLUMNS = KNOWN_PROPERTIES - {"contact", "cameras", "terms", "agency"}
_KINDS = {
    **{k: "registration" for k in REGISTRATION_KEYS},
    **{k: "contact" for k in CONTACT_ALIASES},
    **{k: "terms" for k in TERMS_ALIASES},
    **{k: "camera" for k in CAMERA_KEYS},
}
MAX_EXTERNAL_ID = 200


@dataclass(slots=True)
class Rejection:
    ordinal: int
    line: int | None
    external_id: str | None
    pointer: str
    reason: str


@dataclass(slots=True)
class Valid:
    ordinal: int
    line: int | None
    external_id: str
    body: RegistrationCreate
    share_ids: list[uuid.UUID]
    pointers: list[tuple[str, tuple[float, float]]]  # (pointer, lon/lat) of each point, for the jurisdiction


@dataclass
class Program:
    """What every row of a job is checked against: the integrator's agency and the agencies there are."""

    agency_id: uuid.UUID
    slug: str
    agencies: dict[str, uuid.UUID]
    csv: bool
    reprojection: Reprojection = field(default_factory=lambda: Reprojection(None))


@dataclass(slots=True)
class _Source:
    """How a feature gave its members, to point the report at what the integrator wrote."""

    prefix: str
    contact: dict[str, str] | None = None  # canonical member -> flat property, when given flat
    terms: dict[str, str] | None = None
    camera_flat: bool = False
    geometry: str = "/geometry"
    csv_xy: tuple[str, str] = ("lon", "lat")

    def pointer(self, loc: Sequence[Any], reason: str) -> str:
        head = loc[0] if loc else ""
        rest = [str(p) for p in loc[1:]]
        if head == "location":
            if self.prefix == "/":
                return "/" + (self.csv_xy[1] if "latitude" in reason else self.csv_xy[0])
            return self.geometry + "".join(f"/{p}" for p in rest)
        if head == "contact" and self.contact is not None:
            if rest and rest[0] in self.contact:
                return self.prefix + self.contact[rest[0]] + "".join(f"/{p}" for p in rest[1:])
            return self.prefix + ("email" if self.prefix == "/" else "contact_email")
        if head == "terms" and self.terms is not None and rest and rest[0] in self.terms:
            return self.prefix + self.terms[rest[0]]
        if head == "cameras" and self.camera_flat and rest:
            return self.prefix + "/".join(rest[1:])
        return self.prefix + "/".join(str(p) for p in loc)


def _reason(err: Any) -> str:
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def _external_id(raw: RawFeature, props: dict[str, Any]) -> tuple[str | None, str | None]:
    value = props.get("external_id", raw.feature_id)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, "give each registration your own id in the property external_id (a string)"
    text = str(value).strip()
    if not text or len(text) > MAX_EXTERNAL_ID:
        return None, f"external_id is 1 to {MAX_EXTERNAL_ID} characters"
    try:
        _plain_text(text)
    except ValueError as exc:
        return None, str(exc)
    return text, None


def validate_chunk(raws: Sequence[RawFeature], program: Program) -> tuple[list[Valid], list[Rejection]]:
    """Each feature validated as a single registration's body would be; positions reprojected in one call."""
    xs: list[float] = []
    ys: list[float] = []
    slots: list[list[float]] = []
    for raw in raws:
        if raw.error is None:
            for pos in _positions(raw):
                xs.append(pos[0])
                ys.append(pos[1])
                slots.append(pos)
    if program.reprojection.transformer is not None and xs:
        lons, lats = program.reprojection(xs, ys)
        for pos, lon, lat in zip(slots, lons, lats, strict=True):
            pos[0], pos[1] = lon, lat
    valid: list[Valid] = []
    rejected: list[Rejection] = []
    # A chunk allocates hundreds of thousands of small acyclic objects (freed by reference counting); the
    # cyclic collector would scan the whole heap again and again meanwhile, tripling the time per feature.
    gc.disable()
    try:
        for raw in raws:
            out = validate_feature(raw, program)
            if isinstance(out, Valid):
                valid.append(out)
            else:
                rejected.extend(out)
    finally:
        gc.enable()
    return valid, rejected


def _positions(raw: RawFeature) -> list[list[float]]:
    """The numeric [x, y(, z)] positions of a feature (its geometry and camera locations), to reproject in
    place; anything malformed is left to the validation to describe."""
    out = []
    for geom in (raw.geometry, *_camera_geometries(raw.properties)):
        if isinstance(geom, dict) and geom.get("type") == "Point":
            c = geom.get("coordinates")
            if (
                isinstance(c, list)
                and 2 <= len(c) <= 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c)
            ):
                c = [float(v) for v in c]
                geom["coordinates"] = c
                out.append(c)
    return out


def _camera_geometries(props: dict[str, Any] | None) -> list[Any]:
    cams = props.get("cameras") if props else None
    if not isinstance(cams, list):
        return []
    return [c.get("location") for c in cams if isinstance(c, dict)]


def validate_feature(raw: RawFeature, program: Program) -> Valid | list[Rejection]:
    src = _Source(prefix="/" if program.csv else "/properties/")
    props = dict(raw.properties or {})
    external_id, why = _external_id(raw, props)
    if raw.error is not None:
        return [Rejection(raw.ordinal, raw.line, external_id, raw.error[0] or "/", raw.error[1])]
    if raw.properties is None and not program.csv:
        return [
            Rejection(
                raw.ordinal,
                raw.line,
                None,
                "/properties",
                "a feature needs properties: at least external_id and a contact email or phone",
            )
        ]
    problems: list[tuple[str, str]] = []
    if why is not None:
        problems.append((src.prefix + "external_id", why))
    props.pop("external_id", None)
    agency = props.pop("agency", program.slug)
    if agency != program.slug:
        problems.append((src.prefix + "agency", f"imports land in your agency's program ('{program.slug}')"))
    body: dict[str, Any] = {"agency": program.slug, "location": raw.geometry}
    if raw.geometry is None:
        problems.append(
            (src.geometry, "a registration's feature has a Point geometry: where the property is")
        )
    flat_contact: dict[str, Any] = {}
    flat_terms: dict[str, Any] = {}
    flat_camera: dict[str, Any] = {}
    for k, v in props.items():
        kind = _KINDS.get(k)
        if kind is None:
            problems.append(
                (src.prefix + k, "Extra inputs are not permitted (not a property of a registration)")
            )
        elif kind == "registration":
            body[k] = v
        elif kind == "camera":
            flat_camera[k] = v
        elif kind == "contact":
            flat_contact[k] = v
        else:
            flat_terms[k] = v
    if flat_contact:
        if "contact" in props:
            problems.append(
                (src.prefix + "contact", "give the contact as an object or as flat properties, not both")
            )
        contact: dict[str, Any] = {}
        src.contact = {}
        for k, v in flat_contact.items():
            canonical = CONTACT_ALIASES[k]
            if canonical in contact:
                problems.append((src.prefix + k, f"{canonical} is given twice"))
            contact[canonical] = v
            src.contact[canonical] = k
        body["contact"] = contact
    if flat_terms:
        if "terms" in props:
            problems.append(
                (src.prefix + "terms", "give the terms as an object or as flat properties, not both")
            )
        body["terms"] = {TERMS_ALIASES[k]: v for k, v in flat_terms.items()}
        src.terms = {TERMS_ALIASES[k]: k for k in flat_terms}
    if flat_camera:
        if "cameras" in props:
            problems.append(
                (src.prefix + "cameras", "give cameras as a list or one camera's flat properties, not both")
            )
        body["cameras"] = [flat_camera]
        src.camera_flat = True
    if program.csv:
        src.csv_xy = ("x", "y") if program.reprojection.transformer is not None else ("lon", "lat")
    try:
        model = RegistrationCreate.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            reason = _reason(err)
            problems.append((src.pointer(err.get("loc", ()), reason), reason))
        model = None
    if model is not None:
        unknown = [(i, s) for i, s in enumerate(model.share_with) if s not in program.agencies]
        if unknown:  # the single registration names the first unknown agency
            i, s = unknown[0]
            problems.append((src.prefix + f"share_with/{i}", f"no agency '{s}'"))
    if problems or model is None:
        return [Rejection(raw.ordinal, raw.line, external_id, p, r) for p, r in problems]
    assert external_id is not None
    share_ids = sorted({program.agency_id, *(program.agencies[s] for s in model.share_with)})
    points = [(src.geometry if not program.csv else "/" + src.csv_xy[0], _lonlat(model.location.coordinates))]
    for i, cam in enumerate(model.cameras or []):
        if cam.location is not None:
            pointer = src.prefix + f"cameras/{i}/location"
            points.append((pointer, _lonlat(cam.location.coordinates)))
    return Valid(raw.ordinal, raw.line, external_id, model, share_ids, points)


def _lonlat(c: Sequence[float]) -> tuple[float, float]:
    return (c[0], c[1])


# --- sealing ---------------------------------------------------------------------------------------------


class Sealer:
    """`KeyRing.seal` and `blind_index` with the cipher and index key built once per job, not once per value:
    the same format and associated data (tests open the values with `keyring().open`)."""

    def __init__(self) -> None:
        ring = keyring()
        assert ring.current is not None
        self.kid = ring.current
        self.prefix = ring.current.encode() + b"\x00"
        self.aead = AESGCM(ring.keys[ring.current])
        self.index_key = hashlib.sha256(b"blind-index:" + ring.keys[ring.current]).digest()

    def seal(self, plaintext: str | None, context: str) -> bytes | None:
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        return self.prefix + nonce + self.aead.encrypt(nonce, plaintext.encode(), context.encode())

    def blind_index(self, value: str | None) -> bytes | None:
        if not value:
            return None
        return hmac.new(self.index_key, value.strip().lower().encode(), hashlib.sha256).digest()


def credential_context(rid: uuid.UUID) -> str:
    return f"import-credential:{rid}"


def stage_rows(
    valid: Sequence[Valid], existing: dict[str, uuid.UUID], sealer: Sealer, credentials: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """COPY records for the staging tables (columns in `STAGE_COLUMNS`, `STAGE_CAMERA_COLUMNS` order)."""
    regs: list[tuple[Any, ...]] = []
    cams: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)
    seal = sealer.seal
    default_camera = [CameraFields()]
    gc.disable()  # see validate_chunk
    try:
        for v in valid:
            b = v.body
            known = existing.get(v.external_id)
            rid = known or uuid.uuid4()
            ctx = f"registration:{rid}:"  # reg_context(rid, column), built once per row
            cred = new_owner_credential(rid)
            contact = b.contact
            delivery = None
            credential_enc = None
            if known is None and credentials != "none":
                delivery = "email" if credentials == "email" and contact.email else "report"
                credential_enc = seal(format_owner_credential(cred), credential_context(rid))
            coords = b.location.coordinates
            terms = b.terms
            regs.append(
                (
                    v.ordinal,
                    v.line,
                    v.external_id,
                    rid,
                    known is not None,
                    b.owner_kind,
                    b.business_name,
                    coords[0],
                    coords[1],
                    seal(b.address, ctx + "address") if b.address is not None else None,
                    seal(contact.name, ctx + "name") if contact.name is not None else None,
                    seal(contact.email, ctx + "email") if contact.email is not None else None,
                    seal(contact.phone, ctx + "phone") if contact.phone is not None else None,
                    sealer.blind_index(contact.email),
                    sealer.kid,
                    contact.preferred_method,
                    contact.hours,
                    b.notes_for_investigators,
                    terms.version if terms else None,
                    (terms.accepted_at or now) if terms else None,
                    cred.secret_hash,
                    credential_enc,
                    delivery,
                    v.share_ids,
                )
            )
            for i, cam in enumerate(b.cameras or default_camera):
                cid = uuid.uuid4()
                loc = (getattr(cam, "location", None) or b.location).coordinates
                endpoint = cam.live_endpoint
                cams.append(
                    (
                        v.ordinal,
                        i,
                        cid,
                        rid,
                        loc[0],
                        loc[1],
                        cam.label,
                        cam.direction_deg,
                        cam.fov_deg,
                        cam.range_m,
                        cam.placement,
                        cam.covers or [],
                        cam.retention_days,
                        cam.recording,
                        cam.schedule,
                        True if cam.shares_history is None else cam.shares_history,
                        cam.live_mode or "never",
                        seal(endpoint, camera_context(cid)) if endpoint is not None else None,
                    )
                )
    finally:
        gc.enable()
    return regs, cams


STAGE_COLUMNS = (
    "ordinal",
    "line",
    "external_id",
    "id",
    "existing",
    "owner_kind",
    "business_name",
    "lon",
    "lat",
    "address_enc",
    "contact_name_enc",
    "contact_email_enc",
    "contact_phone_enc",
    "contact_email_index",
    "key_id",
    "preferred_contact_method",
    "contact_hours",
    "notes_for_investigators",
    "terms_version",
    "terms_accepted_at",
    "credential_hash",
    "credential_enc",
    "delivery",
    "share_ids",
)
STAGE_CAMERA_COLUMNS = (
    "ordinal",
    "i",
    "id",
    "registration_id",
    "lon",
    "lat",
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
    "live_endpoint_enc",
)
