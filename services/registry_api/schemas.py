"""registry_api's request and response bodies (pydantic), with the examples the published contract shows.

Every input model refuses unknown members, numbers and booleans are strict (no "12" for 12, no true for 1),
and every string refuses NUL characters and unpaired surrogates (PostgreSQL cannot store them): bad input is
a 422 naming the member, never a 500.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from services.registry_api import validation as limits
from services.registry_api.models import Placement as Placement
from services.registry_api.models import Recording as Recording
from services.registry_api.models import Source as Source
from services.registry_api.models import Status as Status
from services.registry_api.validation import normalise_email, normalise_phone, plain_text
from shared.errors import refused
from shared.geojson import Area, AreaGeometry, Point, PointGeometry
from shared.inputs import INTEGRAL, StrictInput, not_null
from shared.vocabulary import LiveMode as LiveMode
from shared.vocabulary import OwnerKind as OwnerKind

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
LIVE_SCHEMES = ("rtsp", "rtsps", "https", "wss")
MAX_WINDOW_SECONDS = 24 * 3600
EARLIEST_TERMS = datetime(2000, 1, 1, tzinfo=UTC)


PlainText = AfterValidator(plain_text)
# Unicode's White_Space characters, as a regular-expression class: what pydantic's strip_whitespace removes
# (Python's str.isspace() counts \x1c-\x1f too; pydantic does not strip them).
SPACE = r"\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _required_text(max_length: int) -> WithJsonSchema:
    """A required text's contract: stripped of spaces it keeps at least one character (so the contract does not
    call a text of spaces alone valid)."""
    return WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": f"[^{SPACE}]"}
    )


def _limited(limit: limits.TextLimit) -> StringConstraints:
    return StringConstraints(
        strip_whitespace=True, min_length=limit.min_length or None, max_length=limit.max_length
    )


# A registration's texts, bounded as validation.py says (the import's fast path reads the same limits).
Cover = Annotated[str, _limited(limits.COVER), PlainText, _required_text(limits.COVER.max_length)]
Label = Annotated[str, _limited(limits.LABEL), PlainText]
Schedule = Annotated[str, _limited(limits.SCHEDULE), PlainText]
BusinessName = Annotated[str, _limited(limits.BUSINESS_NAME), PlainText]
Address = Annotated[str, _limited(limits.ADDRESS), PlainText]
Notes = Annotated[str, _limited(limits.NOTES_FOR_INVESTIGATORS), PlainText]
ContactName = Annotated[str, _limited(limits.CONTACT_NAME), PlainText]
ContactHours = Annotated[str, _limited(limits.CONTACT_HOURS), PlainText]
TermsVersion = Annotated[
    str, _limited(limits.TERMS_VERSION), PlainText, _required_text(limits.TERMS_VERSION.max_length)
]
Name200 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    PlainText,
    _required_text(200),
]


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
# An email address, as normalise_email() checks it (the models' validators call it).
Email = Annotated[
    str,
    StringConstraints(max_length=limits.MAX_EMAIL),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": limits.MAX_EMAIL}),
]
ContactMethod = Literal["email", "phone", "sms"]
WindowReason = Literal["alert", "emergency"]


class Input(StrictInput):
    model_config = ConfigDict(extra="forbid")


# --- contact details -------------------------------------------------------------------------------------


Region = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]


class ContactIn(Input):
    """How the agency may reach the owner: an email, a phone, or both."""

    name: ContactName | None = Field(None, examples=["Dana Rivera"])
    email: Email | None = Field(None, examples=["dana@example.org"])
    phone_region: Region | None = Field(
        None, description="ISO 3166 region used to read a national phone number (default US)", examples=["US"]
    )
    phone: Annotated[str, StringConstraints(max_length=limits.MAX_PHONE)] | None = Field(
        None, description="Normalised to E.164", examples=["(414) 555-0123"]
    )
    preferred_method: ContactMethod | None = Field(None, examples=["email"])
    hours: ContactHours | None = Field(None, examples=["weekdays after 5 pm"])

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return normalise_email(v)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None, info: ValidationInfo) -> str | None:
        return normalise_phone(v, info.data.get("phone_region"))

    @model_validator(mode="after")
    def _one_way_to_reach(self) -> ContactIn:
        if self.email is None and self.phone is None:
            raise refused("contact_required", "give an email or a phone number, so the agency can reach you")
        return self


class ContactPatch(Input):
    """Members given replace the stored ones; `null` clears one (an email or a phone must remain)."""

    name: ContactName | None = None
    email: Email | None = Field(None, examples=["dana.rivera@example.org"])
    phone_region: Region | None = None
    phone: Annotated[str, StringConstraints(max_length=limits.MAX_PHONE)] | None = None
    preferred_method: ContactMethod | None = None
    hours: ContactHours | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return normalise_email(v)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None, info: ValidationInfo) -> str | None:
        return normalise_phone(v, info.data.get("phone_region"))


class ContactOut(BaseModel):
    name: str | None = None
    email: str | None = Field(None, examples=["dana@example.org"])
    phone: str | None = Field(None, examples=["+14145550123"])
    preferred_method: ContactMethod | None = None
    hours: str | None = None


# --- cameras ---------------------------------------------------------------------------------------------


def _live_endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    plain_text(value)
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in LIVE_SCHEMES or not rest or any(c.isspace() for c in value):
        raise ValueError(f"a live-stream endpoint is a URL with one of the schemes {', '.join(LIVE_SCHEMES)}")
    return value


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# What the validator refuses in an endpoint, as a regular-expression class for the contract: NUL and every
# character Python's str.isspace() counts (SPACE and \x1c-\x1f, which a JSON Schema engine's \s lets through).
_NOT_IN_URL = r"\x00\x1c-\x1f" + SPACE


LiveEndpoint = Annotated[
    str,
    StringConstraints(max_length=2048),
    AfterValidator(_live_endpoint),
    # The scheme rule of _live_endpoint, said in the contract (its printable-text rule is said by the description).
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 2048,
            "pattern": "^(" + "|".join(map(_any_case, LIVE_SCHEMES)) + ")://[^" + _NOT_IN_URL + "]+$",
            "description": "A URL with one of the schemes "
            + ", ".join(LIVE_SCHEMES)
            + ", printable, no spaces",
        }
    ),
]
Covers = Annotated[
    list[Cover],
    Field(
        max_length=limits.MAX_COVERS, description="What the camera sees", examples=[["street", "sidewalk"]]
    ),
]


class CameraFields(Input):
    label: Label | None = Field(None, examples=["front porch"])
    direction_deg: (
        Annotated[int, Strict(), Field(ge=limits.DIRECTION_DEG.low, le=limits.DIRECTION_DEG.high), INTEGRAL]
        | None
    ) = Field(None, description="Compass bearing the camera faces (0 = north, 90 = east)", examples=[180])
    fov_deg: (
        Annotated[int, Strict(), Field(ge=limits.FOV_DEG.low, le=limits.FOV_DEG.high), INTEGRAL] | None
    ) = Field(None, description="Horizontal field of view", examples=[110])
    range_m: Annotated[StrictFloat, Field(gt=0, le=limits.MAX_RANGE_M)] | None = Field(
        None, description="How far it sees usefully, in metres", examples=[25]
    )
    placement: Placement | None = Field(None, examples=["outdoor"])
    covers: Covers | None = None
    retention_days: (
        Annotated[int, Strict(), Field(ge=limits.RETENTION_DAYS.low, le=limits.RETENTION_DAYS.high), INTEGRAL]
        | None
    ) = Field(None, description="Days of footage kept", examples=[14])
    recording: Recording | None = Field(None, examples=["motion"])
    schedule: Schedule | None = Field(None, examples=["always"])
    shares_history: StrictBool | None = Field(
        None, description="Willing to share recorded footage when asked (default true)", examples=[True]
    )
    live_mode: LiveMode | None = Field(
        None,
        description=(
            "Level 2 live sharing: never (default); on_alert (the owner may open a window for an alert or an "
            "emergency); emergency (only for an emergency)"
        ),
        examples=["never"],
    )
    live_endpoint: LiveEndpoint | None = Field(
        None,
        description="The camera's live stream, stored encrypted; agencies see it only in an open window",
        examples=["rtsps://cam.example.net:322/stream1"],
    )


class CameraIn(CameraFields):
    location: Point | None = Field(
        None, description="Where the camera is (default: the registration's location)"
    )


class CameraPatch(CameraFields):
    location: Point | None = None


class PointOut(PointGeometry):
    """A GeoJSON Point (WGS84 longitude, latitude)."""


class CameraOut(BaseModel):
    id: uuid.UUID
    location: PointOut
    label: str | None = None
    direction_deg: int | None = None
    fov_deg: int | None = None
    range_m: float | None = None
    placement: Placement | None = None
    covers: list[str] = []
    retention_days: int | None = None
    recording: Recording | None = None
    schedule: str | None = None
    shares_history: bool = True
    live_mode: LiveMode = "never"
    live_endpoint: str | None = None


# --- registrations ---------------------------------------------------------------------------------------


class TermsIn(Input):
    version: TermsVersion = Field(examples=["2026-01"])
    accepted_at: datetime | None = Field(None, description="Default: now")

    @field_validator("accepted_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None:
            raise ValueError("give a time zone (RFC 3339), e.g. 2026-01-05T14:00:00Z")
        if not EARLIEST_TERMS <= v <= datetime.now(UTC) + timedelta(days=1):
            raise ValueError("the terms were accepted between 2000 and now")
        return v.astimezone(UTC)


class TermsOut(BaseModel):
    version: str
    accepted_at: datetime | None


REGISTRATION_EXAMPLE: dict[str, Any] = {
    "agency": "milwaukee-pd",
    "location": {"type": "Point", "coordinates": [-87.9065, 43.0389]},
    "address": "123 N Water St, Milwaukee, WI",
    "contact": {"name": "Dana Rivera", "email": "dana@example.org", "preferred_method": "email"},
    "owner_kind": "business",
    "business_name": "Water Street Bakery",
    "cameras": [
        {
            "location": {"type": "Point", "coordinates": [-87.90655, 43.03895]},
            "label": "front door",
            "direction_deg": 90,
            "fov_deg": 110,
            "range_m": 20,
            "placement": "outdoor",
            "covers": ["street", "sidewalk"],
            "retention_days": 30,
            "recording": "motion",
        }
    ],
    "terms": {"version": "2026-01"},
}


class RegistrationCreate(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [REGISTRATION_EXAMPLE]})

    agency: Slug = Field(description="The slug of the agency program to register with")
    location: Point = Field(description="Where the property is")
    address: Address | None = Field(None, description="Stored encrypted")
    contact: ContactIn
    owner_kind: OwnerKind = "residential"
    business_name: BusinessName | None = None
    cameras: Annotated[list[CameraIn], Field(min_length=1, max_length=limits.MAX_CAMERAS)] | None = Field(
        None, description="Default: one camera at the registration's location"
    )
    notes_for_investigators: Notes | None = None
    terms: TermsIn | None = None
    share_with: Annotated[list[Slug], Field(max_length=limits.MAX_SHARE_WITH)] = Field(
        default_factory=list,
        description="Further agencies that may see the registration (the program's agency always does)",
    )


_NOT_CLEARABLE = ("status", "location", "contact", "owner_kind", "share_with")


def _patch_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [{"status": "paused"}, {"share_with": ["county-sheriff"]}]
    for name in _NOT_CLEARABLE:  # may be left out, not cleared: no `null` in the contract either
        schema["properties"][name] = not_null(schema["properties"][name])


class RegistrationPatch(Input):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    status: Status | None = Field(
        None, description="paused or withdrawn hides every camera from every agency until active again"
    )
    location: Point | None = None
    address: Address | None = None
    contact: ContactPatch | None = None
    owner_kind: OwnerKind | None = None
    business_name: BusinessName | None = None
    notes_for_investigators: Notes | None = None
    terms: TermsIn | None = None
    share_with: Annotated[list[Slug], Field(max_length=limits.MAX_SHARE_WITH)] | None = Field(
        None, description="Replaces the further agencies; the program's agency always remains"
    )

    @model_validator(mode="after")
    def _no_null_for_required(self) -> RegistrationPatch:
        for name in _NOT_CLEARABLE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class RegistrationProperties(BaseModel):
    agency: str = Field(examples=["milwaukee-pd"])
    status: Status
    owner_kind: OwnerKind
    business_name: str | None = None
    address: str | None = None
    contact: ContactOut
    notes_for_investigators: str | None = None
    terms: TermsOut | None = None
    shared_with: list[str] = Field(examples=[["milwaukee-pd"]])
    source: Source
    registered_by: str | None = Field(None, description="The advocate who registered on the owner's behalf")
    cameras: list[CameraOut]
    last_confirmed_at: datetime
    reconfirm_due_at: datetime
    version: int
    created_at: datetime
    updated_at: datetime


class RegistrationFeature(BaseModel):
    """A registration as a GeoJSON Feature at the property's location; its cameras are in `properties`."""

    type: Literal["Feature"] = "Feature"
    id: uuid.UUID
    geometry: PointOut
    properties: RegistrationProperties


class RegistrationCreated(RegistrationFeature):
    credential: str | None = Field(
        None,
        description=(
            "The management credential, shown once: send it as `Authorization: Bearer <credential>`. "
            "Absent when an advocate registered an owner who has an email: it was mailed to the owner."
        ),
        examples=["cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3...secret"],
    )
    credential_delivery: Literal["response", "email"] = Field(
        "response", description="Where the credential went"
    )


class CredentialOut(BaseModel):
    registration_id: uuid.UUID
    credential: str = Field(examples=["cvo_6f1c2d0e9b8a4c7d8e9f0a1b2c3d4e5f_Zx3...secret"])
    issued_at: datetime


class CredentialResetRequest(Input):
    email: Email = Field(examples=["dana@example.org"])

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        out = normalise_email(v)
        assert out is not None
        return out


class CredentialResetRedeem(Input):
    token: Annotated[str, StringConstraints(min_length=10, max_length=200)] = Field(
        examples=["cvr_bm90LWEtcmVhbC10b2tlbi1qdXN0LWFuLWV4YW1wbGU"]
    )


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = Field(
        examples=["If a registration uses this address, a message with a one-time link is on its way."]
    )


# --- agencies --------------------------------------------------------------------------------------------


# Ceilings on what any agency's policy may allow: a footage request covers at most about half a square mile and
# twelve hours (what the programs Canvass replaces cap at). An agency may set tighter caps, never looser ones.
MAX_REQUEST_AREA_M2 = 1_294_994.6  # 0.5 square miles
MAX_REQUEST_WINDOW_HOURS = 12.0


class PolicyFields(Input):
    max_request_area_m2: Annotated[StrictFloat, Field(gt=0, le=MAX_REQUEST_AREA_M2)] | None = Field(
        None,
        description="Largest area a footage request may cover, in m² (at most 0.5 square miles)",
        examples=[1294994],
    )
    max_request_window_hours: Annotated[StrictFloat, Field(gt=0, le=MAX_REQUEST_WINDOW_HOURS)] | None = Field(
        None,
        description="Longest time window a footage request may ask for (at most 12 hours)",
        examples=[12],
    )
    default_request_expiry_days: Annotated[int, Strict(), Field(ge=1, le=365), INTEGRAL] | None = Field(
        None, examples=[14]
    )
    requires_approval: StrictBool | None = Field(
        None, description="Whether a supervisor approves requests before owners see them", examples=[True]
    )
    evidence_retention_days: Annotated[int, Strict(), Field(ge=1, le=36500), INTEGRAL] | None = Field(
        None, examples=[365]
    )
    max_search_radius_m: Annotated[StrictFloat, Field(gt=0, le=100_000)] | None = Field(None, examples=[2000])
    reconfirm_after_days: Annotated[int, Strict(), Field(ge=1, le=3650), INTEGRAL] | None = Field(
        None, description="How long a confirmation lasts before the owner is asked again", examples=[365]
    )
    disclosure_delay_days: Annotated[int, Strict(), Field(ge=0, le=90), INTEGRAL] | None = Field(
        None,
        description="How many days after an access an owner's access report shows it (0 to 90; public)",
        examples=[0],
    )
    coverage_min_cameras: Annotated[int, Strict(), Field(ge=5, le=1000), INTEGRAL] | None = Field(
        None,
        description="The public coverage map shows a cell only when it holds at least this many cameras (5 to 1000)",
        examples=[5],
    )


POLICY_FIELDS = tuple(PolicyFields.model_fields)

# A program's privacy notice: what it does with a registration, shown to residents beside its name. Plain text (the
# portal shows it as text, never as markup) and/or a link to the agency's own page; the table checks the same bounds.
MAX_PRIVACY_NOTICE = 4000
MAX_PRIVACY_NOTICE_URL = 2048


def _https_url(value: str) -> str:
    plain_text(value)
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError("a privacy notice URL is an https:// URL") from exc
    if (
        not value.startswith("https://")
        or not parts.hostname
        or any(c.isspace() or c < " " or c == "\x7f" for c in value)
    ):
        raise ValueError("a privacy notice URL is an https:// URL (lower-case scheme, a host, no spaces)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a privacy notice URL must not carry a user name or password")
    return value


PrivacyNotice = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PRIVACY_NOTICE),
    PlainText,
    _required_text(MAX_PRIVACY_NOTICE),
]
PrivacyNoticeUrl = Annotated[
    str, StringConstraints(max_length=MAX_PRIVACY_NOTICE_URL), AfterValidator(_https_url)
]
PRIVACY_NOTICE_EXAMPLE = (
    "The Milwaukee Police Department keeps your contact details and camera locations only to ask you for footage "
    "after a crime nearby. We never watch your cameras and never share your details outside the department."
)
PRIVACY_NOTICE_URL_EXAMPLE = "https://city.milwaukee.gov/police/camera-registry-privacy"


PrivacyNoticeIn = Annotated[
    PrivacyNotice | None,
    Field(
        description=(
            f"The program's privacy notice, plain text (at most {MAX_PRIVACY_NOTICE} characters; line breaks "
            "kept), shown to residents beside its name"
        ),
        examples=[PRIVACY_NOTICE_EXAMPLE],
    ),
]
PrivacyNoticeUrlIn = Annotated[
    PrivacyNoticeUrl | None,
    Field(
        description="A link to the program's privacy notice on the agency's own site (https)",
        examples=[PRIVACY_NOTICE_URL_EXAMPLE],
    ),
]
NOTICE_FIELDS = ("privacy_notice", "privacy_notice_url")

JURISDICTION_EXAMPLE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[-88.07, 42.92], [-87.86, 42.92], [-87.86, 43.19], [-88.07, 43.19], [-88.07, 42.92]]],
}


class AgencyCreate(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "slug": "milwaukee-pd",
                    "name": "Milwaukee Police Department",
                    "jurisdiction": JURISDICTION_EXAMPLE,
                    "policy": {"max_request_area_m2": 1294994, "requires_approval": True},
                    "privacy_notice": PRIVACY_NOTICE_EXAMPLE,
                    "privacy_notice_url": PRIVACY_NOTICE_URL_EXAMPLE,
                }
            ]
        },
    )

    slug: Slug = Field(description="Must equal the `agency` claim of the admin's token")
    name: Name200
    jurisdiction: Area
    policy: PolicyFields = Field(default_factory=PolicyFields)
    privacy_notice: PrivacyNoticeIn = None
    privacy_notice_url: PrivacyNoticeUrlIn = None


class AgencyPatch(Input):
    """`privacy_notice` or `privacy_notice_url` given as null removes it; any other member left out is unchanged."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"policy": {"max_request_window_hours": 8}},
                {"privacy_notice_url": PRIVACY_NOTICE_URL_EXAMPLE},
            ]
        },
    )

    name: Name200 | None = None
    jurisdiction: Area | None = None
    policy: PolicyFields | None = None
    privacy_notice: PrivacyNoticeIn = None
    privacy_notice_url: PrivacyNoticeUrlIn = None


class Policy(BaseModel):
    max_request_area_m2: float
    max_request_window_hours: float
    default_request_expiry_days: int
    requires_approval: bool
    evidence_retention_days: int
    max_search_radius_m: float
    reconfirm_after_days: int
    disclosure_delay_days: int
    coverage_min_cameras: int


class AgencyProperties(BaseModel):
    slug: str = Field(examples=["milwaukee-pd"])
    name: str = Field(examples=["Milwaukee Police Department"])
    privacy_notice: str | None = Field(
        None,
        description="The program's privacy notice, plain text (absent when none)",
        examples=[PRIVACY_NOTICE_EXAMPLE],
    )
    privacy_notice_url: str | None = Field(
        None,
        description="A link to the program's privacy notice (absent when none)",
        examples=[PRIVACY_NOTICE_URL_EXAMPLE],
    )
    disclosure_delay_days: int = Field(
        0,
        description="How many days after an agency's access an owner's access report shows it (public policy)",
        examples=[0],
    )
    policy: Policy | None = Field(None, description="Shown to the agency's own users")
    version: int | None = Field(None, description="Shown to the agency's own users")
    registrations_outside: int | None = Field(
        None,
        description=(
            "In the answer to a change of jurisdiction: how many of the program's registrations have a camera "
            "its searches would find but that lies outside it (they no longer find it); a paused registration, "
            "which they do not find anyway, is not counted"
        ),
    )
    registrations_newly_outside: int | None = Field(
        None,
        description=(
            "In the answer to a change of jurisdiction: how many registrations this change left outside; "
            "their owners are told by email"
        ),
    )


class AgencyFeature(BaseModel):
    """An agency as a GeoJSON Feature whose geometry is its jurisdiction (right-hand rule)."""

    type: Literal["Feature"] = "Feature"
    id: uuid.UUID
    geometry: AreaGeometry = Field(description="The jurisdiction (right-hand rule)")
    properties: AgencyProperties


# The OpenAPI extension naming the query parameter without which a nullable member is never null: a client that
# does not send it (every client of a contract released before it) still reads the member as it always was.
NULL_ONLY_WITH = "x-null-only-with"


class AgencyReadFeature(AgencyFeature):
    """An agency as read: its jurisdiction, or null when the request asked for names only (`skipGeometry=true`,
    as in OGC API - Features)."""

    geometry: AreaGeometry | None = Field(  # type: ignore[assignment]
        description=(
            "The jurisdiction (right-hand rule), simplified for a map when the request asked `simplify`; null only"
            " when it asked `skipGeometry=true`"
        ),
        json_schema_extra={NULL_ONLY_WITH: "skipGeometry"},
    )


class AgencyCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[AgencyReadFeature]
    links: list[dict[str, str]] = []
    numberReturned: int


# --- agency reads ----------------------------------------------------------------------------------------


class ContactRead(BaseModel):
    registration_id: uuid.UUID
    agency: str
    owner_kind: OwnerKind
    business_name: str | None = None
    address: str | None = Field(None, examples=["123 N Water St, Milwaukee, WI"])
    contact: ContactOut
    notes_for_investigators: str | None = None


class DueItem(BaseModel):
    id: uuid.UUID
    status: Status
    owner_kind: OwnerKind
    location: PointOut
    last_confirmed_at: datetime
    reconfirm_due_at: datetime
    preferred_contact_method: ContactMethod | None = None


class DueList(BaseModel):
    items: list[DueItem]
    links: list[dict[str, str]] = Field(
        default_factory=list,
        examples=[[{"rel": "next", "href": "...?cursor=abc", "type": "application/json"}]],
    )


# --- live sharing ----------------------------------------------------------------------------------------


class LiveWindowOpen(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "emergency", "duration_s": 1800}]},
    )

    reason: WindowReason = Field(
        "alert",
        description="Cameras in on_alert mode join any window, emergency-mode cameras only emergencies",
    )
    duration_s: Annotated[int, Strict(), Field(ge=1, le=MAX_WINDOW_SECONDS), INTEGRAL] = Field(
        3600, description="How long the window stays open (it then closes by itself); at most 24 hours"
    )
    agencies: Annotated[list[Slug], Field(min_length=1, max_length=20)] | None = Field(
        None, description="Default: every agency the registration is shared with"
    )
    cameras: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)] | None = Field(
        None,
        description=(
            "Default: every camera whose live mode allows this reason and that has an endpoint (or whose"
            " registration has an edge agent)"
        ),
    )


class LiveWindowOut(BaseModel):
    id: uuid.UUID
    registration_id: uuid.UUID
    reason: WindowReason
    agencies: list[str]
    cameras: list[uuid.UUID]
    opened_at: datetime
    expires_at: datetime
    closed_at: datetime | None = None
    state: Literal["open", "closed", "expired"]


class RelayViewing(BaseModel):
    """How to watch the camera: ask the relay for a viewing (a single-use grant for its stream)."""

    href: str = Field(description="The relay's operation creating a viewing (live_relay: POST /v1/viewings)")
    method: Literal["POST"] = "POST"
    body: dict[str, uuid.UUID] = Field(description="The request body to send: the camera's id")


class LiveCamera(BaseModel):
    """A camera of a window as an agency sees it: where it is and which way it looks, never its stream's address
    (the video reaches the agency through Canvass's relay from the owner's edge agent)."""

    id: uuid.UUID
    location: PointOut
    label: str | None = None
    direction_deg: int | None = None
    viewing: RelayViewing = Field(
        description="Watching it: POST the body to `href` with your agency token; the answer's grant fetches the "
        "stream once (see openapi/live_relay.json)"
    )


class LiveWindowView(BaseModel):
    id: uuid.UUID
    registration_id: uuid.UUID
    reason: WindowReason
    opened_at: datetime
    expires_at: datetime
    cameras: list[LiveCamera]


class LiveWindowSummary(BaseModel):
    id: uuid.UUID
    registration_id: uuid.UUID
    reason: WindowReason
    opened_at: datetime
    expires_at: datetime
    camera_count: int = Field(
        ge=1,
        description="How many of the window's cameras your agency sees (a window with none is not listed)",
    )


# --- edge agents -----------------------------------------------------------------------------------------


class EnrolmentCode(BaseModel):
    registration_id: uuid.UUID
    code: str = Field(
        description="Shown once: type it into the edge agent within its expiry; it works once",
        examples=["cve_bm90LWEtcmVhbC1jb2RlLWp1c3QtYW4tZXhhbXBsZQ"],
    )
    expires_at: datetime


class EdgeAgentEnrol(Input):
    code: Annotated[str, StringConstraints(min_length=10, max_length=200)] = Field(
        examples=["cve_bm90LWEtcmVhbC1jb2RlLWp1c3QtYW4tZXhhbXBsZQ"]
    )


class EdgeAgentCredential(BaseModel):
    agent_id: uuid.UUID
    registration_id: uuid.UUID
    credential: str = Field(
        description="Shown once: the agent's bearer credential, for live sharing of this registration alone",
        examples=["cva_2b7f1f0f7a114e3c9d524a519c1e3f0e_Zx3...secret"],
    )
    issued_at: datetime


class EdgeAgentOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime | None = Field(None, description="When the agent last called Canvass")
    revoked_at: datetime | None = Field(
        None, description="When you revoked it (its credential stopped working)"
    )


class WindowCheck(BaseModel):
    window_id: uuid.UUID
    registration_id: uuid.UUID
    camera_id: uuid.UUID
    agency: str
    expires_at: datetime = Field(description="When the window ends unless the owner closes it first")


class AgentIdentity(BaseModel):
    agent_id: uuid.UUID
    registration_id: uuid.UUID = Field(description="The one registration the agent shares live video of")


class AgentWindow(BaseModel):
    window_id: uuid.UUID
    expires_at: datetime
    cameras: list[uuid.UUID] = Field(description="The window's cameras an agency of it may watch now")
