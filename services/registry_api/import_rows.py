"""From an imported feature to the rows a job stages: the feature's properties read as a single registration's
body and validated by the very model a single registration is (`RegistrationCreate`), then sealed and shaped
for COPY. No database here: the job runner does the look-ups and the writing.

A feature's properties carry what a `RegistrationCreate` carries, with the registration's location in the
feature's geometry and the integrator's own `external_id`. Contact, terms and a single camera may also be
given flat (`contact_email`, `terms_version`, `direction_deg`, ...), which is what a CSV row always does.
"""

from __future__ import annotations

import gc
import math
import os
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from services.registry_api.import_parsing import RawFeature, Reprojection
from services.registry_api.schemas import (
    CameraFields,
    ContactMethod,
    LiveMode,
    OwnerKind,
    Placement,
    Recording,
    RegistrationCreate,
    _common_email,
    _plain_text,
)
from shared.auth import OWNER_PREFIX, hash_secret
from shared.crypto import keyring
from shared.keystore import DataKey

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
class Cam:
    """One validated camera: what a `CameraIn` holds once validated (its live mode and endpoint are validated
    but never imported: see `stage_rows`)."""

    lon: float
    lat: float
    label: str | None = None
    direction_deg: int | None = None
    fov_deg: int | None = None
    range_m: float | None = None
    placement: str | None = None
    covers: list[str] | None = None
    retention_days: int | None = None
    recording: str | None = None
    schedule: str | None = None
    shares_history: bool | None = None


@dataclass(slots=True)
class Reg:
    """One validated registration: the values a validated `RegistrationCreate` holds, flattened."""

    lon: float
    lat: float
    owner_kind: str
    business_name: str | None
    address: str | None
    name: str | None
    email: str | None
    phone: str | None
    preferred_method: str | None
    hours: str | None
    notes: str | None
    terms_version: str | None
    terms_accepted_at: datetime | None
    cameras: list[Cam]


@dataclass(slots=True)
class Valid:
    ordinal: int
    line: int | None
    external_id: str
    body: Reg
    share_ids: list[uuid.UUID]


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
            out = fast_feature(raw, program) or validate_feature(raw, program)
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
    return Valid(raw.ordinal, raw.line, external_id, _flatten(model), share_ids)


def _flatten(m: RegistrationCreate) -> Reg:
    lon, lat = m.location.coordinates[0], m.location.coordinates[1]
    cams = []
    for c in m.cameras or [None]:  # type: ignore[list-item]
        if c is None:
            cams.append(Cam(lon, lat))
            continue
        loc = c.location.coordinates if c.location is not None else (lon, lat)
        cams.append(
            Cam(
                loc[0],
                loc[1],
                c.label,
                c.direction_deg,
                c.fov_deg,
                c.range_m,
                c.placement,
                c.covers,
                c.retention_days,
                c.recording,
                c.schedule,
                c.shares_history,
            )
        )
    contact, terms = m.contact, m.terms
    return Reg(
        lon,
        lat,
        m.owner_kind,
        m.business_name,
        m.address,
        contact.name,
        contact.email,
        contact.phone,
        contact.preferred_method,
        contact.hours,
        m.notes_for_investigators,
        terms.version if terms else None,
        terms.accepted_at if terms else None,
        cams,
    )


# --- the fast path ---------------------------------------------------------------------------------------
#
# Most imported features are plain: flat contact and one flat camera, every value well-formed. Building the
# pydantic models costs more than everything else an import does per feature, so such a feature is read here
# with plain checks that give exactly the values the models would. Anything this path is not sure about (a
# member it does not handle, a value the models would refuse or change in a way not copied here) goes to
# `validate_feature`, which also words the rejections. tests/imports prove both paths agree.

_FAST_TEXT = {  # property -> (max length, min length) of the models' stripped plain-text types
    "business_name": (200, 0),
    "address": (300, 0),
    "notes_for_investigators": (2000, 0),
    "contact_name": (200, 0),
    "name": (200, 0),
    "contact_hours": (200, 0),
    "label": (100, 0),
    "schedule": (200, 0),
}
_FAST_INT = {"direction_deg": (0, 359), "fov_deg": (1, 360), "retention_days": (0, 3650)}
_OWNER_KINDS = frozenset(get_args(OwnerKind))
_PLACEMENTS = frozenset(get_args(Placement))
_RECORDINGS = frozenset(get_args(Recording))
_LIVE_MODES = frozenset(get_args(LiveMode))
_METHODS = frozenset(get_args(ContactMethod))
_FAST_KEYS = frozenset(
    {
        "external_id",
        "owner_kind",
        "contact_email",
        "email",
        "contact_preferred_method",
        "preferred_method",
        "range_m",
        "placement",
        "recording",
        "live_mode",
        "shares_history",
        "covers",
        *_FAST_TEXT,
        *_FAST_INT,
    }
)


class _NotFast(Exception):
    pass


def _text(value: Any, limits: tuple[int, int]) -> str | None:
    if value is None:
        return None
    # Unchanged by stripping (Python's whitespace includes the models'), short enough, plain: the models keep
    # such a string as it is.
    if type(value) is not str or value != value.strip() or not limits[1] <= len(value) <= limits[0]:
        raise _NotFast
    if not value.isascii() or "\x00" in value:
        try:
            _plain_text(value)
        except ValueError:
            raise _NotFast from None
    return value


def _one_of(value: Any, allowed: frozenset[str]) -> str | None:
    if value is None:
        return None
    if type(value) is not str or value not in allowed:
        raise _NotFast
    return value


def fast_feature(raw: RawFeature, program: Program) -> Valid | None:
    """The feature's Valid row when every member is one this path reads and is well-formed, else None."""
    props = raw.properties
    geom = raw.geometry
    if raw.error is not None or props is None or type(geom) is not dict or len(geom) != 2:
        return None
    if geom.get("type") != "Point":
        return None
    c = geom.get("coordinates")
    if type(c) is not list or not 2 <= len(c) <= 3:
        return None
    lon, lat = c[0], c[1]
    # _positions made every numeric coordinate a float already; anything else is not fast
    if type(lon) is not float or type(lat) is not float or (len(c) == 3 and type(c[2]) is not float):
        return None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or not all(map(math.isfinite, c)):
        return None
    if not _FAST_KEYS.issuperset(props):
        return None
    external_id = props.get("external_id", raw.feature_id)
    if type(external_id) is not str or not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        return None
    if external_id != external_id.strip() or not external_id.isascii() or "\x00" in external_id:
        return None
    try:
        # Aliases of one member given twice, or null where the models want a value: the slow path says so.
        email = props.get("contact_email")
        if "email" in props:
            if "contact_email" in props:
                return None
            email = props["email"]
        if type(email) is not str or len(email) > 254 or "\x00" in email:
            return None
        email = _common_email(email.strip())
        if email is None:
            return None
        if "contact_name" in props and "name" in props:
            return None
        if "contact_preferred_method" in props and "preferred_method" in props:
            return None
        get = props.get
        owner_kind = get("owner_kind", "residential")
        if type(owner_kind) is not str or owner_kind not in _OWNER_KINDS:
            return None
        ints = []
        for key in ("direction_deg", "fov_deg", "retention_days"):
            v = get(key)
            if v is not None:
                lo, hi = _FAST_INT[key]
                if type(v) is not int or not lo <= v <= hi:
                    return None
            ints.append(v)
        range_m = get("range_m")
        if range_m is not None:
            if type(range_m) is int:
                range_m = float(range_m)
            if type(range_m) is not float or not 0 < range_m <= 1000:
                return None
        shares_history = get("shares_history")
        if shares_history is not None and type(shares_history) is not bool:
            return None
        covers = get("covers")
        if covers is not None:
            if type(covers) is not list or len(covers) > 12:
                return None
            covers = [_text(x, (60, 1)) for x in covers]
            if None in covers:
                return None
        _one_of(get("live_mode"), _LIVE_MODES)  # validated as a single registration's, never imported
        cam = Cam(
            lon,
            lat,
            _text(get("label"), (100, 0)),
            ints[0],
            ints[1],
            range_m,
            _one_of(get("placement"), _PLACEMENTS),
            covers,
            ints[2],
            _one_of(get("recording"), _RECORDINGS),
            _text(get("schedule"), (200, 0)),
            shares_history,
        )
        reg = Reg(
            lon,
            lat,
            owner_kind,
            _text(get("business_name"), (200, 0)),
            _text(get("address"), (300, 0)),
            _text(get("contact_name", get("name")), (200, 0)),
            email,
            None,
            _one_of(get("contact_preferred_method", get("preferred_method")), _METHODS),
            _text(get("contact_hours"), (200, 0)),
            _text(get("notes_for_investigators"), (2000, 0)),
            None,
            None,
            [cam],
        )
    except _NotFast:
        return None
    return Valid(raw.ordinal, raw.line, external_id, reg, [program.agency_id])


# --- sealing and staging ---------------------------------------------------------------------------------


def credential_context(rid: uuid.UUID | str) -> str:
    return f"import-credential:{rid}"


def _new_ids(n: int) -> list[str]:
    """n random (version 4) UUIDs at once, as text (asyncpg's COPY reads it in C): uuid.uuid4() per row costs
    more than sealing a value."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


def needs_data_key(v: Valid) -> bool:
    """Whether the upload gives this registration a text sealed under its data key (shared/keystore.py)."""
    b = v.body
    return b.business_name is not None or b.hours is not None or b.notes is not None


def stage_rows(
    valid: Sequence[Valid],
    existing: dict[str, uuid.UUID],
    credentials: str,
    stored: Mapping[str, Mapping[str, Any]] | None = None,
    keys: Mapping[uuid.UUID, DataKey] | None = None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[uuid.UUID, DataKey]]:
    """COPY records for the staging tables (columns in `STAGE_COLUMNS`, `STAGE_CAMERA_COLUMNS` order), and the
    data keys made for new registrations, which the caller puts in the key store (one round trip a chunk)
    before the rows are merged.

    `stored` holds the sealed address, business name and notes of each existing registration, and `keys` the
    data keys of those registrations: a value the upload gives unchanged is staged as that very ciphertext
    (sealing anew would give other bytes), so the merge sees that nothing changed and leaves the registration
    as it was. The owner's free texts are sealed under the registration's data key, the address under the
    service's key ring (as a single registration's are).

    An import never sets live sharing: the live mode and endpoint of its cameras are validated (as a single
    registration's would be) but not stored, since only the owner may turn live sharing on (new cameras start
    at 'never'; an updated registration's cameras keep the owner's setting, see MERGE_* in import_jobs)."""
    regs: list[tuple[Any, ...]] = []
    cams: list[tuple[Any, ...]] = []
    now = datetime.now(UTC)
    ring = keyring()
    seal = ring.seal
    index = ring.blind_index
    kid = ring.current
    n_cams = sum(len(v.body.cameras) for v in valid)
    ids = _new_ids(len(valid) + n_cams)
    next_id = iter(ids).__next__
    new_keys: dict[uuid.UUID, DataKey] = {}
    no_row: Mapping[str, Any] = {}
    gc.disable()  # see validate_chunk
    try:
        for v in valid:
            b = v.body
            known = existing.get(v.external_id)
            rid = next_id() if known is None else str(known)
            ctx = f"registration:{rid}:"  # reg_context(rid, column), built once per row
            secret = secrets.token_urlsafe(32)
            delivery = None
            credential_enc = None
            # The credential belongs to the owner: whoever has an email gets it by mail, whatever the
            # integrator asked for; only an owner the registry cannot reach has it in the report.
            if known is None and (b.email or credentials != "none"):
                delivery = "email" if b.email else "report"
                credential_enc = seal(
                    f"{OWNER_PREFIX}{rid.replace('-', '')}_{secret}", credential_context(rid)
                )
            # A registration's contact belongs to its owner once it exists (the credential is re-issued to
            # it): a re-import never changes it, so it is not even staged.
            contact = known is None
            email = b.email if contact else None
            name = b.name if contact else None
            phone = b.phone if contact else None
            before = (stored or {}).get(v.external_id, no_row)
            data_key: DataKey | None = None
            if known is not None:
                data_key = (keys or {}).get(known)
            elif needs_data_key(v):
                data_key = new_keys[uuid.UUID(rid)] = DataKey.generate()
            if data_key is None and needs_data_key(v):
                raise RuntimeError(f"no data key for registration {rid}")
            regs.append(
                (
                    v.ordinal,
                    v.line,
                    v.external_id,
                    rid,
                    known is not None,
                    b.owner_kind,
                    _sealed_text(
                        data_key, b.business_name, ctx + "business_name", before.get("business_name_enc")
                    ),
                    b.lon,
                    b.lat,
                    _sealed_address(b.address, ctx + "address", before.get("address_enc"))
                    if known is not None
                    else (seal(b.address, ctx + "address") if b.address is not None else None),
                    seal(name, ctx + "name") if name is not None else None,
                    seal(email, ctx + "email") if email is not None else None,
                    seal(phone, ctx + "phone") if phone is not None else None,
                    index(email) if email else None,
                    kid,
                    b.preferred_method if contact else None,
                    _sealed_text(data_key, b.hours, ctx + "contact_hours", None) if contact else None,
                    _sealed_text(
                        data_key,
                        b.notes,
                        ctx + "notes_for_investigators",
                        before.get("notes_for_investigators_enc"),
                    ),
                    b.terms_version,
                    (b.terms_accepted_at or now) if b.terms_version is not None else None,
                    hash_secret(secret),
                    credential_enc,
                    delivery,
                    v.share_ids,
                )
            )
            for i, cam in enumerate(b.cameras):
                cams.append(
                    (
                        v.ordinal,
                        i,
                        next_id(),
                        rid,
                        cam.lon,
                        cam.lat,
                        cam.label,
                        cam.direction_deg,
                        cam.fov_deg,
                        cam.range_m,
                        cam.placement,
                        cam.covers or [],
                        cam.retention_days,
                        cam.recording,
                        cam.schedule,
                        cam.shares_history,
                    )
                )
    finally:
        gc.enable()
    return regs, cams, new_keys


def _sealed_text(key: DataKey | None, value: str | None, context: str, stored: bytes | None) -> bytes | None:
    """An owner's text as the registration will hold it, under its data key: the stored ciphertext when it
    opens to the same text."""
    if value is None:
        return None
    assert key is not None
    if stored is not None and key.open(stored, context) == value:
        return bytes(stored)
    return key.seal(value, context)


def _sealed_address(address: str | None, context: str, stored: bytes | None) -> bytes | None:
    """The address as the registration will hold it: the stored ciphertext when it opens to the same text."""
    if address is None:
        return None
    ring = keyring()
    if stored is not None:
        try:
            if ring.open(stored, context) == address:
                return bytes(stored)
        except (KeyError, InvalidTag):  # sealed under a key no longer in the ring: seal anew
            pass
    return ring.seal(address, context)


STAGE_COLUMNS = (
    "ordinal",
    "line",
    "external_id",
    "id",
    "existing",
    "owner_kind",
    "business_name_enc",
    "lon",
    "lat",
    "address_enc",
    "contact_name_enc",
    "contact_email_enc",
    "contact_phone_enc",
    "contact_email_index",
    "key_id",
    "preferred_contact_method",
    "contact_hours_enc",
    "notes_for_investigators_enc",
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
)
