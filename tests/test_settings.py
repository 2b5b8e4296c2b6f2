"""Settings refuse the development placeholders outside development."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from services.requests_api.config import RequestsSettings
from shared.crypto import KeyRing
from shared.settings import (
    DEV_ENCRYPTION_KEY,
    DEV_KEYSTORE_KEY,
    DEV_PUBLIC_BASE_URL,
    DEV_SECRET_KEY,
    LOCAL_KEYSTORE_URL,
    Settings,
)
from tests.support import ROOT, start_server

GOOD_KEY = "k1:" + base64.urlsafe_b64encode(b"x" * 32).decode()
GOOD_KEK = "w1:" + base64.urlsafe_b64encode(b"z" * 32).decode()
KEYSTORE: dict[str, Any] = {
    "CANVASS_KEYSTORE_URL": "postgresql://keys@keystore/canvass_keys",
    "CANVASS_KEYSTORE_KEY": GOOD_KEK,
}


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="CANVASS_SECRET_KEY"):
        Settings(CANVASS_ENV="production", CANVASS_SECRET_KEY=DEV_SECRET_KEY, CANVASS_ENCRYPTION_KEY=GOOD_KEY)


def test_production_refuses_the_placeholder_encryption_key() -> None:
    with pytest.raises(ValidationError, match="CANVASS_ENCRYPTION_KEY"):
        Settings(
            CANVASS_ENV="production", CANVASS_SECRET_KEY="s" * 40, CANVASS_ENCRYPTION_KEY=DEV_ENCRYPTION_KEY
        )


def test_production_accepts_real_secrets_and_development_accepts_placeholders() -> None:
    prod = Settings(
        CANVASS_ENV="production",
        CANVASS_SECRET_KEY="s" * 40,
        CANVASS_ENCRYPTION_KEY=GOOD_KEY,
        CANVASS_PUBLIC_BASE_URL="https://canvass.example.gov/",
        **KEYSTORE,
    )
    assert prod.env == "production"
    assert prod.public_base == "https://canvass.example.gov"
    assert Settings(CANVASS_ENV="development").secret_key == DEV_SECRET_KEY


def test_production_requires_a_public_base_url_and_development_has_a_fixed_one() -> None:
    with pytest.raises(ValidationError, match="CANVASS_PUBLIC_BASE_URL"):
        Settings(CANVASS_ENV="production", CANVASS_SECRET_KEY="s" * 40, CANVASS_ENCRYPTION_KEY=GOOD_KEY)
    assert Settings(CANVASS_ENV="development").public_base == DEV_PUBLIC_BASE_URL
    assert Settings(CANVASS_ENV="test").public_base == DEV_PUBLIC_BASE_URL
    for bad in ("canvass.example.gov", "ftp://canvass.example.gov", "https://canvass.example.gov/?x=1"):
        with pytest.raises(ValidationError, match="absolute http"):
            Settings(CANVASS_ENV="development", CANVASS_PUBLIC_BASE_URL=bad)


def test_production_requires_its_own_key_store_and_key_encryption_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-registration data keys (shared/keystore.py) live in a store of their own, wrapped under a key of
    the deployment's: production names both, and refuses the development placeholder or the same key as
    CANVASS_ENCRYPTION_KEY."""
    monkeypatch.delenv(
        "CANVASS_KEYSTORE_URL", raising=False
    )  # the test run's own store, set for the services
    monkeypatch.delenv("CANVASS_KEYSTORE_KEY", raising=False)
    base: dict[str, Any] = {
        "CANVASS_ENV": "production",
        "CANVASS_SECRET_KEY": "s" * 40,
        "CANVASS_ENCRYPTION_KEY": GOOD_KEY,
        "CANVASS_PUBLIC_BASE_URL": "https://canvass.example.gov",
    }
    with pytest.raises(ValidationError, match="CANVASS_KEYSTORE_URL is required"):
        Settings(**base, CANVASS_KEYSTORE_KEY=GOOD_KEK)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="CANVASS_KEYSTORE_KEY is the development placeholder"):
        Settings(**base, CANVASS_KEYSTORE_URL=KEYSTORE["CANVASS_KEYSTORE_URL"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must differ"):
        Settings(**base, CANVASS_KEYSTORE_URL=KEYSTORE["CANVASS_KEYSTORE_URL"], CANVASS_KEYSTORE_KEY=GOOD_KEY)  # type: ignore[arg-type]
    prod = Settings(**base, **KEYSTORE)  # type: ignore[arg-type]
    assert prod.keystore == KEYSTORE["CANVASS_KEYSTORE_URL"]
    dev = Settings(CANVASS_ENV="development", CANVASS_KEYSTORE_URL=None)  # type: ignore[call-arg]
    assert (dev.keystore, dev.keystore_keys) == (LOCAL_KEYSTORE_URL, DEV_KEYSTORE_KEY)


def test_per_service_database_urls_override_the_common_one() -> None:
    s = Settings(DATABASE_URL="postgresql://a@h/db", GEO_QUERY_DATABASE_URL="postgresql://r@replica/db")
    assert s.database_url_for("geo_query") == "postgresql://r@replica/db"
    assert s.database_url_for("registry_api") == "postgresql://a@h/db"
    assert s.audit_url == "postgresql://a@h/db"


def test_key_ring_rotation_opens_old_ciphertexts_and_seals_with_the_new_key() -> None:
    old = KeyRing(GOOD_KEY)
    sealed = old.seal("owner@example.org", "registration:1:email")
    new_key = "k2:" + base64.urlsafe_b64encode(b"y" * 32).decode()
    rotated = KeyRing(f"{new_key},{GOOD_KEY}")
    assert rotated.open(sealed, "registration:1:email") == "owner@example.org"
    assert rotated.key_id(rotated.seal("x", "c")) == "k2"
    assert b"owner@example.org" not in (sealed or b"")
    with pytest.raises(InvalidTag):  # bound to its row and column: another context does not open it
        rotated.open(sealed, "registration:2:email")


def test_an_exact_index_stored_before_a_rotation_is_still_among_the_indexes_looked_up() -> None:
    old = KeyRing(GOOD_KEY)
    stored = old.exact_index("shop-1", "import-tombstone:agency")
    rotated = KeyRing("k2:" + base64.urlsafe_b64encode(b"y" * 32).decode() + "," + GOOD_KEY)
    assert rotated.exact_index("shop-1", "import-tombstone:agency") != stored  # new ones under the new key
    assert rotated.exact_indexes("shop-1", "import-tombstone:agency") == [
        rotated.exact_index("shop-1", "import-tombstone:agency"),
        stored,
    ]
    # Exact: case, spaces and the context count.
    assert stored not in rotated.exact_indexes("Shop-1", "import-tombstone:agency")
    assert stored not in rotated.exact_indexes("shop-1 ", "import-tombstone:agency")
    assert stored not in rotated.exact_indexes("shop-1", "import-tombstone:other")


def test_an_email_indexed_before_a_rotation_is_still_found() -> None:
    old = KeyRing(GOOD_KEY)
    stored = old.blind_index("Owner@Example.org")
    rotated = KeyRing("k2:" + base64.urlsafe_b64encode(b"y" * 32).decode() + "," + GOOD_KEY)
    assert rotated.blind_index("owner@example.org") != stored
    assert rotated.blind_indexes(" owner@example.org ") == [rotated.blind_index("owner@example.org"), stored]


MALFORMED_RINGS = [
    "no-separator",
    "k1:" + base64.urlsafe_b64encode(b"x" * 16).decode(),  # 16 bytes, not 32
    "k1:***not*base64***",
    "k-1:" + base64.urlsafe_b64encode(b"x" * 32).decode(),  # a kid that is not alphanumeric
    GOOD_KEY + "," + GOOD_KEY,  # the same kid twice
    GOOD_KEY + ",",  # an empty entry
]


@pytest.mark.parametrize("setting", ["CANVASS_ENCRYPTION_KEY", "CANVASS_KEYSTORE_KEY"])
@pytest.mark.parametrize("ring", MALFORMED_RINGS)
def test_a_malformed_key_ring_is_refused_when_settings_load_naming_the_setting(
    setting: str, ring: str
) -> None:
    with pytest.raises(ValidationError, match=setting):
        Settings(CANVASS_ENV="development", **{setting: ring})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=setting):
        Settings(
            CANVASS_ENV="production",
            CANVASS_SECRET_KEY="s" * 40,
            CANVASS_PUBLIC_BASE_URL="https://canvass.example.gov",
            **{**KEYSTORE, "CANVASS_ENCRYPTION_KEY": GOOD_KEY, setting: ring},
        )


def test_a_service_refuses_to_start_on_a_malformed_key_store_key() -> None:
    """Refused at start-up with the setting named, not at the first seal of an owner's words."""
    env = dict(
        os.environ,
        CANVASS_ENV="test",
        CANVASS_KEYSTORE_KEY="w1:" + base64.urlsafe_b64encode(b"z" * 8).decode(),
    )
    with pytest.raises(RuntimeError, match="exited") as refused:
        start_server("registry_api", env).stop()
    assert "CANVASS_KEYSTORE_KEY" in str(refused.value)
    assert "must be 32 bytes" in str(refused.value)


@pytest.mark.parametrize(
    ("service", "variable", "value", "reason"),
    [
        ("requests_api", "CANVASS_REQUEST_MAX_TARGETS", "many", "valid integer"),
        ("requests_api", "CANVASS_EVIDENCE_MAX_BYTES", "0", "greater than or equal to 1"),
        ("community_api", "CANVASS_TIP_RATE_WINDOW_S", "hourly", "valid number"),
        ("community_api", "CANVASS_COMMUNITY_OUTBOX_BATCH", "-5", "greater than or equal to 1"),
    ],
)
def test_a_service_refuses_to_start_on_a_malformed_setting_of_its_own_naming_it(
    service: str, variable: str, value: str, reason: str
) -> None:
    env = dict(os.environ, CANVASS_ENV="test", **{variable: value})
    with pytest.raises(RuntimeError, match="exited") as refused:
        start_server(service, env).stop()
    assert variable in str(refused.value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CANVASS_WORKER_POLL_S", "soon", "valid number"),
        # Zero would have the worker poll its outbox in a busy loop.
        ("CANVASS_WORKER_POLL_S", "0", "greater than 0"),
        ("CANVASS_OUTBOX_MAX_ATTEMPTS", "ten", "valid integer"),
    ],
)
def test_the_requests_worker_refuses_to_start_on_a_malformed_setting_naming_it(
    variable: str, value: str, reason: str
) -> None:
    env = dict(os.environ, CANVASS_ENV="test", **{variable: value})
    done = subprocess.run(
        [sys.executable, "-m", "services.requests_api.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert variable in done.stderr
    assert reason in done.stderr


def test_an_empty_setting_means_its_default_and_media_types_are_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CANVASS_WORKER_POLL_S", "")
    monkeypatch.setenv("CANVASS_EVIDENCE_MEDIA_TYPES", " Video/MP4, ,image/png")
    settings = RequestsSettings()
    assert settings.worker_poll_s == RequestsSettings.model_fields["worker_poll_s"].default
    assert settings.worker_jobs_s == 10.0  # unset: ten polls
    assert settings.evidence_media_types == frozenset({"video/mp4", "image/png"})
