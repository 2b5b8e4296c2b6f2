"""community_api's own settings, read from the environment in the project's settings style (pydantic-settings,
as shared/settings.py): the shared settings hold what several services need; these concern tips and alerts
alone. An agency's own limits are its policy (see policy.py); these are the defaults a policy starts from and
the ceilings it cannot pass. They are read once, when the service starts, so a malformed value stops it there,
naming the variable. docs/settings.md lists them all."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommunitySettings(BaseSettings):
    # An empty variable means the default, as an unset one does.
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_ignore_empty=True, frozen=True
    )

    media_ceiling_bytes: int = Field(
        100 * 1024 * 1024,
        alias="CANVASS_TIP_MEDIA_CEILING_BYTES",
        ge=1,
        description="The largest media file any agency's policy may allow a tip, in bytes "
        "(the upload body's ceiling follows from it).",
    )
    # The client address itself is never kept (see ratelimit.py).
    tip_rate_limit: int = Field(
        10,
        alias="CANVASS_TIP_RATE_LIMIT",
        ge=1,
        description="Tips, follow-ups and alert subscriptions one client address may send per window.",
    )
    tip_rate_window_s: float = Field(
        3600.0,
        alias="CANVASS_TIP_RATE_WINDOW_S",
        gt=0,
        description="The tip rate limit's window, in seconds.",
    )
    ffmpeg_timeout_s: float = Field(
        120.0,
        alias="CANVASS_FFMPEG_TIMEOUT_S",
        gt=0,
        description="Seconds ffmpeg may take to rewrite one media file's container.",
    )
    ffmpeg_path: str = Field(
        "ffmpeg",
        alias="CANVASS_FFMPEG_PATH",
        min_length=1,
        description="The ffmpeg executable that rewrites tip media (a name looked up in PATH, or a path).",
    )
    ffprobe_path: str = Field(
        "ffprobe",
        alias="CANVASS_FFPROBE_PATH",
        min_length=1,
        description="The ffprobe executable that reads a tip's video codecs before ffmpeg rewrites it.",
    )
    # Each ffmpeg is a process of its own, with its own memory and a core to itself: without a cap, many uploads at
    # once would start as many and starve the service (and the database beside it). Two keep a small host's cores
    # for the rest; a busy deployment raises it with its cores.
    ffmpeg_concurrency: int = Field(
        2,
        alias="CANVASS_FFMPEG_CONCURRENCY",
        ge=1,
        description="ffmpeg processes one process of the service runs at once for tip media; others wait their turn.",
    )
    ffmpeg_wait_s: float = Field(
        10.0,
        alias="CANVASS_FFMPEG_WAIT_S",
        gt=0,
        description="Seconds a tip's media file waits for a free ffmpeg; past them the tip is refused (503, "
        "Retry-After) and nothing of it is stored.",
    )
    housekeeping_s: float = Field(
        600.0,
        alias="CANVASS_COMMUNITY_HOUSEKEEPING_S",
        gt=0,
        description="Seconds between two retention sweeps of tips and unconfirmed subscriptions.",
    )
    # Measured from the tip's last activity (updated_at: a follow-up, a reply, a triage step, a hold changed), not
    # from its arrival, so a tip under work is not deleted under its investigator; a tip nobody has touched in a
    # year has been abandoned, and a year covers a slow case and the yearly review of an agency's open items.
    # Tips keep no trace of the sender, and one never closed must not stay for ever either.
    tip_open_retention_days: int = Field(
        365,
        alias="CANVASS_TIP_OPEN_RETENTION_DAYS",
        ge=1,
        le=3650,
        description="Days after its last activity that a tip never closed is deleted, with its conversation and "
        "media, unless under legal hold (a closed one follows the agency's `tip_retention_days` from its "
        "closing).",
    )
    outbox_poll_s: float = Field(
        1.0,
        alias="CANVASS_COMMUNITY_OUTBOX_POLL_S",
        gt=0,
        description="Seconds between two passes over the alerts' outbox.",
    )
    outbox_batch: int = Field(
        200,
        alias="CANVASS_COMMUNITY_OUTBOX_BATCH",
        ge=1,
        description="Alert deliveries claimed in one pass.",
    )
    outbox_backoff_s: float = Field(
        30.0,
        alias="CANVASS_COMMUNITY_OUTBOX_BACKOFF_S",
        ge=0,
        description="Seconds before the first retry of an alert delivery; doubles with each attempt.",
    )
    outbox_max_attempts: int = Field(
        8,
        alias="CANVASS_COMMUNITY_OUTBOX_MAX_ATTEMPTS",
        ge=1,
        description="Attempts at one alert delivery before it is given up.",
    )
    outbox_lease_s: float = Field(
        120.0,
        alias="CANVASS_COMMUNITY_OUTBOX_LEASE_S",
        gt=0,
        description="Seconds a process holds a claimed delivery before another may claim it again.",
    )
    outbox_concurrency: int = Field(
        16,
        alias="CANVASS_COMMUNITY_OUTBOX_CONCURRENCY",
        ge=1,
        description="Alert deliveries sent at once (one connection to the relay or provider each).",
    )
    # Per-channel sending rates, so a large alert does not flood the relay or the provider.
    email_per_s: float = Field(
        50.0,
        alias="CANVASS_ALERT_EMAIL_PER_S",
        gt=0,
        description="Alert emails sent per second at most.",
    )
    sms_per_s: float = Field(
        10.0,
        alias="CANVASS_ALERT_SMS_PER_S",
        gt=0,
        description="Alert text messages sent per second at most.",
    )
    # The SMS provider (Twilio's Messages API shape).
    sms_api_url: str = Field(
        "https://api.twilio.com",
        alias="CANVASS_SMS_API_URL",
        description="The SMS provider's API base URL.",
    )
    sms_account_sid: str = Field(
        "AC00000000000000000000000000000000",
        alias="CANVASS_SMS_ACCOUNT_SID",
        description="The account at the SMS provider.",
    )
    # No default: a token everybody knows would let anyone sign the provider's callbacks (a forged STOP ends any
    # number's subscriptions). Unset, the deployment sends no text messages: subscribing by SMS is refused and the
    # provider's webhook answers 404.
    sms_auth_token: str | None = Field(
        None,
        alias="CANVASS_SMS_AUTH_TOKEN",
        min_length=16,
        description="The SMS provider's token: authenticates the sends and checks its signed callbacks. Unset, "
        "the deployment sends no text messages (alerts by email only).",
    )
    sms_from: str = Field(
        "+15005550006",
        alias="CANVASS_SMS_FROM",
        description="The number alert text messages are sent from.",
    )
    confirm_max_failures: int = Field(
        5,
        alias="CANVASS_ALERT_CONFIRM_MAX_FAILURES",
        ge=1,
        description="Wrong guesses a pending subscription's confirmation code takes before it is void.",
    )
    confirm_window_s: float = Field(
        86400.0,
        alias="CANVASS_ALERT_CONFIRM_WINDOW_S",
        gt=0,
        description="Seconds a subscription's confirmation code stays valid; an unconfirmed subscription is "
        "deleted with its contact after them.",
    )
    codes_per_contact: int = Field(
        3,
        alias="CANVASS_ALERT_CODES_PER_CONTACT",
        ge=1,
        description="Unconfirmed subscriptions (each one a confirmation code sent) one email address or phone "
        "number may have at a time, so nobody can flood someone else's phone or inbox with codes.",
    )
    alert_rate_limit: int = Field(
        30,
        alias="CANVASS_ALERT_RATE_LIMIT",
        ge=1,
        description="Alerts one agency may send per `CANVASS_ALERT_RATE_WINDOW_S`, so a stolen supervisor's token "
        "or a runaway script cannot flood its residents.",
    )
    alert_rate_window_s: float = Field(
        3600.0,
        alias="CANVASS_ALERT_RATE_WINDOW_S",
        gt=0,
        description="The alert rate limit's window, in seconds (a sliding one).",
    )
    portal_url: str = Field(
        "http://127.0.0.1:8000",
        alias="CANVASS_PORTAL_URL",
        description="Where residents reach the portal: the links in alert messages are built on it.",
    )


@lru_cache
def config() -> CommunitySettings:
    return CommunitySettings()
