"""The words of a registration more than one service speaks: the kinds of owner, and a camera's placement, way of
recording and live-sharing mode. registry_api stores and validates them (its tables' CHECK constraints are built
from these), geo_query filters searches by them and describes them in its answers; each is written here once."""

from __future__ import annotations

from typing import Literal, get_args

OwnerKind = Literal["residential", "business", "school", "place_of_worship", "nonprofit", "government"]
OWNER_KINDS: tuple[str, ...] = get_args(OwnerKind)

# When the owner shares a camera's live stream: never, in a window opened for an alert, or also for an emergency.
LiveMode = Literal["never", "on_alert", "emergency"]
LIVE_MODES: tuple[str, ...] = get_args(LiveMode)

Placement = Literal["indoor", "outdoor"]
PLACEMENTS: tuple[str, ...] = get_args(Placement)

Recording = Literal["continuous", "motion", "scheduled"]
RECORDING: tuple[str, ...] = get_args(Recording)
