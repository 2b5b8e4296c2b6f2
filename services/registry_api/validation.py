"""What a valid registration is: the limits of each member and the checks of its values, in one place.

`schemas.py` builds the API's models from these (a single registration, its patches, its cameras), and the
bulk import's fast path (`imports/features.py`) checks the very same limits and values without building the
models (everything it is not sure of goes to the models): a limit changed or added here applies to a single
registration and to an import alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from shared.errors import refused


@dataclass(frozen=True, slots=True)
class TextLimit:
    """A plain text's bounds, counted once stripped of spaces."""

    max_length: int
    min_length: int = 0

    def fits(self, text: str) -> bool:
        return self.min_length <= len(text) <= self.max_length


@dataclass(frozen=True, slots=True)
class IntRange:
    """An integer's bounds, both included."""

    low: int
    high: int

    def fits(self, value: int) -> bool:
        return self.low <= value <= self.high


# --- a registration's members ------------------------------------------------------------------------------

ADDRESS = TextLimit(300)
BUSINESS_NAME = TextLimit(200)
NOTES_FOR_INVESTIGATORS = TextLimit(2000)
TERMS_VERSION = TextLimit(40, 1)
MAX_CAMERAS = 50
MAX_SHARE_WITH = 20
# The integrator's own id of an imported registration.
EXTERNAL_ID = TextLimit(200, 1)

# --- its contact -------------------------------------------------------------------------------------------

CONTACT_NAME = TextLimit(200)
CONTACT_HOURS = TextLimit(200)
MAX_EMAIL = 254
MAX_PHONE = 40

# --- each camera -------------------------------------------------------------------------------------------

LABEL = TextLimit(100)
SCHEDULE = TextLimit(200)
COVER = TextLimit(60, 1)  # one thing a camera covers ("street")
MAX_COVERS = 12
DIRECTION_DEG = IntRange(0, 359)
FOV_DEG = IntRange(1, 360)
RETENTION_DAYS = IntRange(0, 3650)
MAX_RANGE_M = 1000  # metres, and more than 0


def range_fits(value: float) -> bool:
    return 0 < value <= MAX_RANGE_M


# --- values ------------------------------------------------------------------------------------------------


def plain_text(value: str) -> str:
    """The text itself when PostgreSQL can store it: no NUL character, no unpaired surrogate."""
    if "\x00" in value:
        raise refused("text_invalid", "text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise refused("text_invalid", "text must be valid Unicode (no unpaired surrogates)") from exc
    return value


def normalise_email(value: str | None) -> str | None:
    if value is None:
        return None
    plain_text(value)
    stripped = value.strip()
    fast = common_email(stripped)
    if fast is not None:
        return fast
    try:
        return validate_email(stripped, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise refused("email_invalid", f"not a valid email address: {exc}") from exc


# The common address (ASCII dot-atom local part, ASCII domain, well within the length limits) normalised
# without re-validating its domain each time: email_validator spends most of its time on the domain, and a
# bulk import meets the same few domains a million times. The answer is email_validator's own, cached per
# domain; anything else takes the full path above. tests/imports prove both paths agree.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_COMMON_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_COMMON_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def common_email(value: str) -> str | None:
    """A common address, normalised as `normalise_email` would; None for anything else (then ask that)."""
    if len(value) > 200:
        return None
    local, at, domain = value.rpartition("@")
    if not at or len(local) > 64 or not _COMMON_LOCAL.match(local) or not _COMMON_DOMAIN.match(domain):
        return None
    normal = _common_domain(domain)
    if normal is None:
        return None
    if local.lower() in _CASE_INSENSITIVE_MAILBOXES:
        local = local.lower()
    return f"{local}@{normal}"


@lru_cache(maxsize=4096)
def _common_domain(domain: str) -> str | None:
    try:
        checked = validate_email("x@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain if checked.domain == checked.ascii_domain == domain.lower() else None


def normalise_phone(value: str | None, region: str | None) -> str | None:
    if value is None:
        return None
    plain_text(value)
    try:
        number = phonenumbers.parse(value, (region or "US").upper())
    except phonenumbers.NumberParseException as exc:
        raise refused("phone_invalid", f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise refused(
            "phone_invalid",
            "not a valid phone number for its region (give it in international form, e.g. +14145550123, "
            "or set phone_region)",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
