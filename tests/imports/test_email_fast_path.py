"""The common-address fast path of `normalise_email` (what makes a million imported emails affordable) gives
exactly email_validator's answer."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from services.registry_api.validation import normalise_email

ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-.", min_size=0, max_size=70)
LABEL = st.text(alphabet="abcxyzABC0189-", min_size=0, max_size=20)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    [
        "example.org",
        "EXAMPLE.COM",
        "localhost",
        "x.invalid",
        "b\u00fccher.ch",
        "xn--bcher-kva.ch",
        "1.2.3.4",
        "a.123",
    ]
)
LOCAL = ATOM | st.sampled_from(["Postmaster", "INFO", "a..b", ".a", "a.", "\u00e9l\u00e8ve", ""])


def reference(value: str) -> str | None:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(value: str) -> str | None:
    try:
        return normalise_email(value)
    except ValueError:
        return None


@settings(max_examples=3000, deadline=None)
@given(LOCAL, DOMAIN, st.sampled_from(["", " ", "\t"]))
def test_fast_path_agrees_with_email_validator(local: str, domain: str, pad: str) -> None:
    value = f"{pad}{local}@{domain}{pad}"
    assert ours(value) == reference(value)
