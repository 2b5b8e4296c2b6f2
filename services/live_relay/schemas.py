"""The relay's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ViewingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"camera_id": "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}]},
    )

    camera_id: uuid.UUID = Field(description="A camera of a live window open to your agency")


class ViewingOut(BaseModel):
    id: uuid.UUID
    camera_id: uuid.UUID
    window_id: uuid.UUID = Field(description="The live window that lets your agency watch the camera")
    registration_id: uuid.UUID
    window_expires_at: datetime = Field(description="When the window ends unless the owner closes it first")
    grant: str = Field(
        description="The viewing's grant: send it once, as `Authorization: Bearer <grant>`, to the `stream` "
        "operation. Single-use, short-lived, never a URL."
    )
    grant_expires_at: datetime = Field(description="The grant must be used before this instant")
    stream: str = Field(description="The path of the stream operation for this viewing")


class OwnerViewing(BaseModel):
    """A viewing of one of your cameras, as its owner sees it: which agency, when, how long; never who watched."""

    viewing_id: uuid.UUID
    agency: str
    camera_id: uuid.UUID
    window_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = Field(description="Unset while it goes on")
    seconds: float | None = Field(None, description="How long it lasted")
    bytes: int | None = Field(None, description="The video's bytes sent to the viewer")
    ended_by: str | None = Field(
        None,
        description="Why it ended: `closed-by-viewer`, `window-ended`, `window-unconfirmed`, `token-expired`, "
        "`agent-disconnected`, `viewer-too-slow`, ...",
    )


class AgentPresence(BaseModel):
    """Whether the registration's edge agent is connected to the relay now, and what it is streaming."""

    online: bool
    agent_id: uuid.UUID | None = Field(None, description="The connected agent (unset when none is)")
    connected_at: datetime | None = None
    cameras: list[uuid.UUID] = Field(default_factory=list, description="The cameras the agent serves")
    streaming: list[uuid.UUID] = Field(
        default_factory=list, description="The cameras whose video is being relayed now (someone watches)"
    )
