"""requests_api's own settings, read from the environment in the project's settings style (pydantic-settings,
as shared/settings.py): the shared settings hold what several services need; these concern footage requests
alone. They are read once, when the service or the worker starts, so a malformed value stops it there, naming
the variable, instead of failing the first request or sweep that needs it. docs/settings.md lists them all."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MEDIA_TYPES = (
    "video/mp4,video/quicktime,video/x-msvideo,video/x-matroska,video/webm,video/mpeg,video/mp2t,"
    "video/3gpp,image/jpeg,image/png,application/zip,application/octet-stream"
)


class RequestsSettings(BaseSettings):
    # An empty variable means the default, as an unset one does.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_ignore_empty=True, frozen=True
    )

    evidence_max_bytes: int = Field(
        2 * 1024**3,
        alias="CANVASS_EVIDENCE_MAX_BYTES",
        ge=1,
        description="The largest evidence file an owner may upload, in bytes.",
    )
    # A comma-separated list in the environment, not JSON.
    evidence_media_types: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(DEFAULT_MEDIA_TYPES.split(",")),
        alias="CANVASS_EVIDENCE_MEDIA_TYPES",
        description="The media types an evidence upload may have, comma-separated.",
    )
    # The janitor: parts untouched this long are abandoned; unused objects are kept this long first.
    evidence_part_max_age_s: float = Field(
        86400.0,
        alias="CANVASS_EVIDENCE_PART_MAX_AGE_S",
        gt=0,
        description="Seconds after which an upload's untouched part is abandoned and removed.",
    )
    evidence_orphan_grace_s: float = Field(
        86400.0,
        alias="CANVASS_EVIDENCE_ORPHAN_GRACE_S",
        ge=0,
        description="Seconds a stored object no request refers to is kept before the janitor removes it.",
    )
    evidence_janitor_s: float = Field(
        3600.0,
        alias="CANVASS_EVIDENCE_JANITOR_S",
        gt=0,
        description="Seconds between two sweeps of the evidence janitor (in the worker).",
    )
    max_targets: int = Field(
        500,
        alias="CANVASS_REQUEST_MAX_TARGETS",
        ge=1,
        description="The most owners one footage request may reach.",
    )
    max_explicit_cameras: int = Field(
        50,
        alias="CANVASS_REQUEST_MAX_CAMERAS",
        ge=1,
        description="The most cameras a request may name one by one.",
    )
    worker_poll_s: float = Field(
        1.0,
        alias="CANVASS_WORKER_POLL_S",
        gt=0,
        description="Seconds the worker waits for new work when its outbox is empty.",
    )
    worker_jobs_every_s: float | None = Field(
        None,
        alias="CANVASS_WORKER_JOBS_S",
        gt=0,
        description="Seconds between the worker's periodic jobs (expiry, reminders, retention, erasure, "
        "janitor); unset: ten polls, at least one second.",
    )
    outbox_backoff_s: float = Field(
        30.0,
        alias="CANVASS_OUTBOX_BACKOFF_S",
        ge=0,
        description="Seconds before the first retry of an undelivered message; doubles with each attempt.",
    )
    outbox_backoff_max_s: float = Field(
        3600.0,
        alias="CANVASS_OUTBOX_BACKOFF_MAX_S",
        ge=0,
        description="The longest wait between two attempts at one message, in seconds.",
    )
    outbox_max_attempts: int = Field(
        10,
        alias="CANVASS_OUTBOX_MAX_ATTEMPTS",
        ge=1,
        description="Attempts at one message before it is given up.",
    )
    outbox_lease_s: float = Field(
        120.0,
        alias="CANVASS_OUTBOX_LEASE_S",
        gt=0,
        description="Seconds a worker holds a claimed message before another may claim it again.",
    )
    delivery_timeout_s: float = Field(
        10.0,
        alias="CANVASS_DELIVERY_TIMEOUT_S",
        gt=0,
        description="Seconds one webhook delivery or call to registry_api may take.",
    )
    reminder_before_due_h: float = Field(
        48.0,
        alias="CANVASS_REMINDER_BEFORE_DUE_H",
        ge=0,
        description="Hours before a request's due date at which an owner who has not answered is reminded.",
    )
    reminder_before_overwrite_h: float = Field(
        24.0,
        alias="CANVASS_REMINDER_BEFORE_OVERWRITE_H",
        ge=0,
        description="Hours before the requested footage may be overwritten at which an owner who has not "
        "answered is reminded.",
    )

    @field_validator("evidence_media_types", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(t.strip().lower() for t in value.split(",") if t.strip())
        return value

    @property
    def worker_jobs_s(self) -> float:
        return self.worker_jobs_every_s or max(self.worker_poll_s * 10, 1.0)


@lru_cache
def config() -> RequestsSettings:
    return RequestsSettings()
