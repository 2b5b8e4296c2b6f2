"""live_relay's own settings, read from the environment in the project's settings style (pydantic-settings, as
shared/settings.py): how often a watched camera's window is asked about again, how long a grant lasts, and how
much a viewer may fall behind. Read once, when the relay starts. docs/settings.md lists them."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_ignore_empty=True, frozen=True
    )

    recheck_s: float = Field(
        0.5,
        alias="CANVASS_RELAY_RECHECK_S",
        gt=0,
        le=1.0,
        description="Seconds between two questions to registry_api about each watched camera's window.",
    )
    unconfirmed_cut_s: float = Field(
        1.5,
        alias="CANVASS_RELAY_UNCONFIRMED_CUT_S",
        gt=0,
        le=2.0,
        description="Seconds a viewer keeps watching without registry_api confirming the window (it is "
        "unreachable or slow) before it is cut.",
    )
    grant_ttl_s: float = Field(
        30.0,
        alias="CANVASS_RELAY_GRANT_TTL_S",
        gt=0,
        le=300,
        description="Seconds within which a viewing's grant must be used (once).",
    )
    max_unused_grants: int = Field(
        16,
        alias="CANVASS_RELAY_MAX_UNUSED_GRANTS",
        ge=1,
        description="Viewings one agency user may hold at a time without watching them (their grants not used "
        "nor expired): asking for more is a 429.",
    )
    agent_recheck_s: float = Field(
        10.0,
        alias="CANVASS_RELAY_AGENT_RECHECK_S",
        gt=0,
        description="Seconds between two checks that a connected edge agent's credential is still valid.",
    )
    key_recheck_s: float = Field(
        60.0,
        alias="CANVASS_RELAY_KEY_RECHECK_S",
        gt=0,
        description="Seconds between two readings of the identity provider's JWKS for the keys that signed the "
        "tokens of open viewings: a viewing whose key was withdrawn ends within this.",
    )
    viewer_buffer: int = Field(
        32,
        alias="CANVASS_RELAY_VIEWER_BUFFER",
        ge=2,
        description="Fragments a viewer may fall behind before it is cut (a viewer too slow for the stream).",
    )
    max_viewers_per_camera: int = Field(
        32,
        alias="CANVASS_RELAY_MAX_VIEWERS_PER_CAMERA",
        ge=1,
        description="Viewers one camera may have at a time.",
    )
    max_box_bytes: int = Field(
        16 * 1024 * 1024,
        alias="CANVASS_RELAY_MAX_BOX_BYTES",
        ge=1024,
        description="The largest MP4 box (a fragment's media) an agent may send; a larger one stops the camera.",
    )


@lru_cache
def config() -> RelaySettings:
    return RelaySettings()
