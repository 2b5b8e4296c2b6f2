"""An imported feature validated as a registration: its properties read as a single registration's body and
validated by the very model a single registration is (`RegistrationCreate`), or, for the plain features most
uploads hold, by a fast path that checks the same limits (`services/registry_api/validation.py`) without building
the models. No database here: `staging` seals the valid ones into rows, the runner looks up and writes.

A feature's properties carry what a `RegistrationCreate` carries, with the registration's location in the
feature's geometry and the integrator's own `external_id`. Contact, terms and a single camera may also be
given flat (`contact_email`, `terms_version`, `direction_deg`, ...), which is what a CSV row always does.
"""

from __future__ import annotations

import gc
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, get_args

from pydantic import ValidationError

from services.registry_api import validation as limits
from services.registry_api.imports.formats import RawFeature, Reprojection, parse_job_crs, same_crs
from services.registry_api.imports.jobs import JobFailed
from services.registry_api.schemas import (
    CameraFields,
    ContactMethod,
    LiveMode,
    OwnerKind,
    Placement,
    Recording,
    RegistrationCreate,
)
from services.registry_api.validation import common_email, plain_text

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
    if not limits.EXTERNAL_ID.fits(text):
        bounds = limits.EXTERNAL_ID
        return None, f"external_id is {bounds.min_length} to {bounds.max_length} characters"
    try:
        plain_text(text)
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
            for pos in positions(raw):
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


def positions(raw: RawFeature) -> list[list[float]]:
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
    body = _body(raw, props, program, src, problems)
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


def _body(
    raw: RawFeature, props: dict[str, Any], program: Program, src: _Source, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    """The body of a single registration the feature's properties say, its flat members gathered into the
    contact, terms and camera they belong to; `src` learns how they were given (for the report's pointers)."""
    body: dict[str, Any] = {"agency": program.slug, "location": raw.geometry}
    if raw.geometry is None:
        problems.append(
            (src.geometry, "a registration's feature has a Point geometry: where the property is")
        )
    flat: dict[str, dict[str, Any]] = {"contact": {}, "terms": {}, "camera": {}}
    for k, v in props.items():
        kind = _KINDS.get(k)
        if kind is None:
            problems.append(
                (src.prefix + k, "Extra inputs are not permitted (not a property of a registration)")
            )
        elif kind == "registration":
            body[k] = v
        else:
            flat[kind][k] = v
    if flat["contact"]:
        if "contact" in props:
            problems.append(
                (src.prefix + "contact", "give the contact as an object or as flat properties, not both")
            )
        contact: dict[str, Any] = {}
        src.contact = {}
        for k, v in flat["contact"].items():
            canonical = CONTACT_ALIASES[k]
            if canonical in contact:
                problems.append((src.prefix + k, f"{canonical} is given twice"))
            contact[canonical] = v
            src.contact[canonical] = k
        body["contact"] = contact
    if flat["terms"]:
        if "terms" in props:
            problems.append(
                (src.prefix + "terms", "give the terms as an object or as flat properties, not both")
            )
        body["terms"] = {TERMS_ALIASES[k]: v for k, v in flat["terms"].items()}
        src.terms = {TERMS_ALIASES[k]: k for k in flat["terms"]}
    if flat["camera"]:
        if "cameras" in props:
            problems.append(
                (src.prefix + "cameras", "give cameras as a list or one camera's flat properties, not both")
            )
        body["cameras"] = [flat["camera"]]
        src.camera_flat = True
    if program.csv:
        src.csv_xy = ("x", "y") if program.reprojection.transformer is not None else ("lon", "lat")
    return body


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

_FAST_TEXT = {  # property -> the bounds of the models' stripped plain text it is
    "business_name": limits.BUSINESS_NAME,
    "address": limits.ADDRESS,
    "notes_for_investigators": limits.NOTES_FOR_INVESTIGATORS,
    "contact_name": limits.CONTACT_NAME,
    "name": limits.CONTACT_NAME,
    "contact_hours": limits.CONTACT_HOURS,
    "label": limits.LABEL,
    "schedule": limits.SCHEDULE,
}
_FAST_INT = {
    "direction_deg": limits.DIRECTION_DEG,
    "fov_deg": limits.FOV_DEG,
    "retention_days": limits.RETENTION_DAYS,
}
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


def _text(value: Any, limit: limits.TextLimit) -> str | None:
    if value is None:
        return None
    # Unchanged by stripping (Python's whitespace includes the models'), short enough, plain: the models keep
    # such a string as it is.
    if type(value) is not str or value != value.strip() or not limit.fits(value):
        raise _NotFast
    if not value.isascii() or "\x00" in value:
        try:
            plain_text(value)
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
    if raw.error is not None or props is None or not _FAST_KEYS.issuperset(props):
        return None
    external_id = props.get("external_id", raw.feature_id)
    if type(external_id) is not str or not limits.EXTERNAL_ID.fits(external_id):
        return None
    if external_id != external_id.strip() or not external_id.isascii() or "\x00" in external_id:
        return None
    # Aliases of one member given twice: the slow path says so.
    if "contact_name" in props and "name" in props:
        return None
    if "contact_preferred_method" in props and "preferred_method" in props:
        return None
    try:
        lon, lat = _fast_point(raw.geometry)
        get = props.get
        owner_kind = get("owner_kind", "residential")
        if type(owner_kind) is not str or owner_kind not in _OWNER_KINDS:
            return None
        reg = Reg(
            lon,
            lat,
            owner_kind,
            _text(get("business_name"), limits.BUSINESS_NAME),
            _text(get("address"), limits.ADDRESS),
            _text(get("contact_name", get("name")), limits.CONTACT_NAME),
            _fast_email(props),
            None,
            _one_of(get("contact_preferred_method", get("preferred_method")), _METHODS),
            _text(get("contact_hours"), limits.CONTACT_HOURS),
            _text(get("notes_for_investigators"), limits.NOTES_FOR_INVESTIGATORS),
            None,
            None,
            [_fast_camera(props, lon, lat)],
        )
    except _NotFast:
        return None
    return Valid(raw.ordinal, raw.line, external_id, reg, [program.agency_id])


def _fast_point(geom: Any) -> tuple[float, float]:
    if type(geom) is not dict or len(geom) != 2 or geom.get("type") != "Point":
        raise _NotFast
    c = geom.get("coordinates")
    if type(c) is not list or not 2 <= len(c) <= 3:
        raise _NotFast
    lon, lat = c[0], c[1]
    # positions() made every numeric coordinate a float already; anything else is not fast
    if type(lon) is not float or type(lat) is not float or (len(c) == 3 and type(c[2]) is not float):
        raise _NotFast
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0) or not all(map(math.isfinite, c)):
        raise _NotFast
    return lon, lat


def _fast_email(props: dict[str, Any]) -> str:
    """The contact email, normalised; an owner without one (or with null) goes to the slow path."""
    email = props.get("contact_email")
    if "email" in props:
        if "contact_email" in props:
            raise _NotFast
        email = props["email"]
    if type(email) is not str or len(email) > limits.MAX_EMAIL or "\x00" in email:
        raise _NotFast
    normal = common_email(email.strip())
    if normal is None:
        raise _NotFast
    return normal


def _fast_camera(props: dict[str, Any], lon: float, lat: float) -> Cam:
    get = props.get
    ints = []
    for key in ("direction_deg", "fov_deg", "retention_days"):
        v = get(key)
        if v is not None and (type(v) is not int or not _FAST_INT[key].fits(v)):
            raise _NotFast
        ints.append(v)
    range_m = get("range_m")
    if range_m is not None:
        if type(range_m) is int:
            range_m = float(range_m)
        if type(range_m) is not float or not limits.range_fits(range_m):
            raise _NotFast
    shares_history = get("shares_history")
    if shares_history is not None and type(shares_history) is not bool:
        raise _NotFast
    covers = get("covers")
    if covers is not None:
        if type(covers) is not list or len(covers) > limits.MAX_COVERS:
            raise _NotFast
        covers = [_text(x, limits.COVER) for x in covers]
        if None in covers:
            raise _NotFast
    _one_of(get("live_mode"), _LIVE_MODES)  # validated as a single registration's, never imported
    return Cam(
        lon,
        lat,
        _text(get("label"), limits.LABEL),
        ints[0],
        ints[1],
        range_m,
        _one_of(get("placement"), _PLACEMENTS),
        covers,
        ints[2],
        _one_of(get("recording"), _RECORDINGS),
        _text(get("schedule"), limits.SCHEDULE),
        shares_history,
    )


# --- a chunk of the upload -------------------------------------------------------------------------------


@dataclass
class Chunk:
    valid: list[Valid]
    rejected: list[Rejection]
    read: int


def next_chunk(
    features: Iterator[RawFeature], program: Program, size: int, reader: Any, job_crs: str | None
) -> Chunk | None:
    """The next `size` features of the upload, validated; None at its end. A FeatureCollection's legacy crs
    member, once read, sets the program's reprojection (or fails the job when it disagrees with ?crs=)."""
    gc.disable()  # see validate_chunk
    try:
        raws = list(islice(features, size))
    finally:
        gc.enable()
    member = getattr(reader, "crs_member", None)
    if member is not None and not getattr(reader, "member_applied", False):
        # A legacy GeoJSON crs member is honoured when it comes before the features and agrees with ?crs=.
        if job_crs is not None and not same_crs(job_crs, member):
            raise JobFailed(
                f"the FeatureCollection says its CRS is {member} but the import was asked for ?crs={job_crs}; "
                "nothing was written"
            )
        if not reader.member_first and job_crs is None:
            raise JobFailed(
                f"the FeatureCollection's crs member ({member}) comes after its features: put it first, or pass "
                "?crs=, and submit again; nothing was written"
            )
        program.reprojection = Reprojection(parse_job_crs(member))
        reader.member_applied = True
    if not raws:
        return None
    valid, rejected = validate_chunk(raws, program)
    return Chunk(valid, rejected, len(raws))
