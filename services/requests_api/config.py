"""requests_api's own knobs, read from the environment with sensible defaults (the shared settings hold what
several services need; these concern footage requests alone)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_MEDIA_TYPES = (
    "video/mp4,video/quicktime,video/x-msvideo,video/x-matroska,video/webm,video/mpeg,video/mp2t,"
    "video/3gpp,image/jpeg,image/png,application/zip,application/octet-stream"
)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class RequestsConfig:
    evidence_max_bytes: int
    evidence_media_types: frozenset[str]
    evidence_part_max_age_s: float
    evidence_orphan_grace_s: float
    evidence_janitor_s: float
    max_targets: int
    max_explicit_cameras: int
    worker_poll_s: float
    worker_jobs_s: float
    outbox_backoff_s: float
    outbox_backoff_max_s: float
    outbox_max_attempts: int
    outbox_lease_s: float
    delivery_timeout_s: float
    reminder_before_due_h: float
    reminder_before_overwrite_h: float


@lru_cache
def config() -> RequestsConfig:
    poll = _float("CANVASS_WORKER_POLL_S", 1.0)
    return RequestsConfig(
        evidence_max_bytes=_int("CANVASS_EVIDENCE_MAX_BYTES", 2 * 1024**3),
        evidence_media_types=frozenset(
            t.strip().lower()
            for t in os.environ.get("CANVASS_EVIDENCE_MEDIA_TYPES", DEFAULT_MEDIA_TYPES).split(",")
            if t.strip()
        ),
        # The janitor: parts untouched this long are abandoned; unused objects are kept this long first.
        evidence_part_max_age_s=_float("CANVASS_EVIDENCE_PART_MAX_AGE_S", 86400.0),
        evidence_orphan_grace_s=_float("CANVASS_EVIDENCE_ORPHAN_GRACE_S", 86400.0),
        evidence_janitor_s=_float("CANVASS_EVIDENCE_JANITOR_S", 3600.0),
        max_targets=_int("CANVASS_REQUEST_MAX_TARGETS", 500),
        max_explicit_cameras=_int("CANVASS_REQUEST_MAX_CAMERAS", 50),
        worker_poll_s=poll,
        worker_jobs_s=_float("CANVASS_WORKER_JOBS_S", max(poll * 10, 1.0)),
        outbox_backoff_s=_float("CANVASS_OUTBOX_BACKOFF_S", 30.0),
        outbox_backoff_max_s=_float("CANVASS_OUTBOX_BACKOFF_MAX_S", 3600.0),
        outbox_max_attempts=_int("CANVASS_OUTBOX_MAX_ATTEMPTS", 10),
        outbox_lease_s=_float("CANVASS_OUTBOX_LEASE_S", 120.0),
        delivery_timeout_s=_float("CANVASS_DELIVERY_TIMEOUT_S", 10.0),
        reminder_before_due_h=_float("CANVASS_REMINDER_BEFORE_DUE_H", 48.0),
        reminder_before_overwrite_h=_float("CANVASS_REMINDER_BEFORE_OVERWRITE_H", 24.0),
    )
