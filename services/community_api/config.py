"""community_api's own knobs, read from the environment (the shared settings hold what several services need;
these concern tips and alerts alone). An agency's own limits are its policy (see policy.py); these are the
defaults a policy starts from and the ceilings it cannot pass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class CommunityConfig:
    # The largest media file any agency's policy may allow (the request body's ceiling follows from it).
    media_ceiling_bytes: int
    # Tips (and follow-ups) per client address and window; the address itself is never kept (see ratelimit.py).
    tip_rate_limit: int
    tip_rate_window_s: float
    # How long ffmpeg may take to rewrite one file's container.
    ffmpeg_timeout_s: float
    # The background loops: the retention sweep and the alerts' outbox.
    housekeeping_s: float
    outbox_poll_s: float
    outbox_batch: int
    outbox_backoff_s: float
    outbox_max_attempts: int
    outbox_lease_s: float
    outbox_concurrency: int
    # Per-channel sending rates (messages per second), so a large alert does not flood the relay or provider.
    email_per_s: float
    sms_per_s: float
    # The SMS provider (Twilio's Messages API shape): its base URL, account, token and sending number.
    sms_api_url: str
    sms_account_sid: str
    sms_auth_token: str
    sms_from: str
    # Confirmation codes: how many wrong guesses a pending subscription takes before its code is void.
    confirm_max_failures: int


@lru_cache
def config() -> CommunityConfig:
    return CommunityConfig(
        media_ceiling_bytes=_int("CANVASS_TIP_MEDIA_CEILING_BYTES", 100 * 1024 * 1024),
        tip_rate_limit=_int("CANVASS_TIP_RATE_LIMIT", 10),
        tip_rate_window_s=_float("CANVASS_TIP_RATE_WINDOW_S", 3600.0),
        ffmpeg_timeout_s=_float("CANVASS_FFMPEG_TIMEOUT_S", 120.0),
        housekeeping_s=_float("CANVASS_COMMUNITY_HOUSEKEEPING_S", 600.0),
        outbox_poll_s=_float("CANVASS_COMMUNITY_OUTBOX_POLL_S", 1.0),
        outbox_batch=_int("CANVASS_COMMUNITY_OUTBOX_BATCH", 200),
        outbox_backoff_s=_float("CANVASS_COMMUNITY_OUTBOX_BACKOFF_S", 30.0),
        outbox_max_attempts=_int("CANVASS_COMMUNITY_OUTBOX_MAX_ATTEMPTS", 8),
        outbox_lease_s=_float("CANVASS_COMMUNITY_OUTBOX_LEASE_S", 120.0),
        outbox_concurrency=_int("CANVASS_COMMUNITY_OUTBOX_CONCURRENCY", 16),
        email_per_s=_float("CANVASS_ALERT_EMAIL_PER_S", 50.0),
        sms_per_s=_float("CANVASS_ALERT_SMS_PER_S", 10.0),
        sms_api_url=os.environ.get("CANVASS_SMS_API_URL", "https://api.twilio.com"),
        sms_account_sid=os.environ.get("CANVASS_SMS_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        sms_auth_token=os.environ.get("CANVASS_SMS_AUTH_TOKEN", "development-token"),
        sms_from=os.environ.get("CANVASS_SMS_FROM", "+15005550006"),
        confirm_max_failures=_int("CANVASS_ALERT_CONFIRM_MAX_FAILURES", 5),
    )
