"""The relay's state, in this one process: the edge agents connected now, the viewings granted, and each watched
camera's feed with its viewers. It alone decides when an agent is asked to start or stop a camera (a camera runs
while it has a viewer, no longer), and when a viewer is cut: at once when registry_api says the viewing's window no
longer includes the camera for the viewer's agency (asked again every CANVASS_RELAY_RECHECK_S per watched agency,
camera and window), when registry_api has not confirmed it for CANVASS_RELAY_UNCONFIRMED_CUT_S (fail closed), or when
the agency token that asked for the viewing expires (at its `exp`, by a timer of the viewer's own, which registry_api's
answers do not hold up), or when the identity provider's key that signed that token is withdrawn from its JWKS (read
again every CANVASS_RELAY_KEY_RECHECK_S for the keys of open viewings). Every
viewing is audited when it starts (before the first byte) and when it ends (with the bytes sent)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.live_relay import registry
from services.live_relay.config import config
from services.live_relay.fmp4 import BadStream, Splitter
from shared.audit import AuditEvent
from shared.auth import hash_secret, key_withdrawn

log = logging.getLogger("canvass.live_relay")
GRANT_PREFIX = "cvr_"
REMEMBER_USED = timedelta(minutes=10)  # a viewing is kept this long after its grant expired or it ended


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Viewing:
    """A viewing granted to one agency user for one camera: its grant works once, within its time."""

    id: uuid.UUID
    grant_hash: bytes
    grant_expires_at: datetime
    agency: str
    user: str
    role: str
    camera_id: uuid.UUID
    window_id: uuid.UUID
    registration_id: uuid.UUID
    window_expires_at: datetime
    # The `exp` of the agency token that asked for it: neither its grant nor its watching outlasts that token (a
    # user signed out, or whose access was withdrawn, gets no renewed token and so stops watching).
    token_expires_at: datetime
    # The identity provider's key that signed that token, as (JWKS URL, key id): a viewing ends when the key is
    # withdrawn from the JWKS (asked every CANVASS_RELAY_KEY_RECHECK_S), since the token could no longer be used.
    signed_by: tuple[str, str] | None
    forget_at: datetime  # when the relay drops it: a while after its grant expired, or after it was watched
    used: bool = False
    watching: bool = False
    ended: str | None = None  # why it can no longer be watched (the window ended, ...)
    confirmed: float = field(default_factory=time.monotonic)  # when registry_api last said yes


@dataclass(eq=False)
class Viewer:
    viewing: Viewing
    queue: asyncio.Queue[bytes | None]
    started_at: datetime = field(default_factory=now_utc)
    bytes_sent: int = 0
    primed: bool = False  # given the initialisation segment (just before its first fragment)
    reason: str = "closed-by-viewer"
    done: bool = False
    token_timer: asyncio.TimerHandle | None = None  # cuts it when its viewing's token expires


@dataclass(eq=False)
class AgentLink:
    id: uuid.UUID
    registration_id: uuid.UUID
    cameras: frozenset[uuid.UUID]
    send_text: Callable[[str], Awaitable[None]]
    connected_at: datetime = field(default_factory=now_utc)

    async def command(self, kind: str, camera_id: uuid.UUID) -> None:
        try:
            await self.send_text(json.dumps({"type": kind, "camera_id": str(camera_id)}))
        except Exception:  # the connection is going: its end detaches it
            log.info("agent %s gone before %s", self.id, kind)


@dataclass(eq=False)
class Feed:
    camera_id: uuid.UUID
    agent: AgentLink
    splitter: Splitter
    # Bytes count only after the agent said `started` for this feed: what is still in flight from a run of FFmpeg
    # stopped earlier (the camera's previous feed) is not the start of this one.
    started: bool = False
    init: bytes | None = None
    init_ready: asyncio.Event = field(default_factory=asyncio.Event)
    viewers: set[Viewer] = field(default_factory=set)


class Refused(Exception):
    def __init__(self, status: int, detail: str, kind: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind


AuditAppend = Callable[[AuditEvent], Awaitable[Any]]


class Hub:
    def __init__(self) -> None:
        self.viewings: dict[uuid.UUID, Viewing] = {}
        self.agents: dict[uuid.UUID, AgentLink] = {}  # by registration: the latest connected agent
        self.feeds: dict[uuid.UUID, Feed] = {}  # by camera
        self.audit: AuditAppend | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- the lifespan ----------------------------------------------------------------------------------

    def start(self, audit: AuditAppend) -> None:
        self.audit = audit
        self._tasks = [
            asyncio.create_task(self._recheck_forever()),
            asyncio.create_task(self._keys_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for feed in list(self.feeds.values()):
            for v in list(feed.viewers):
                self._cut(v, "relay-stopping")

    # --- agents ----------------------------------------------------------------------------------------

    def attach(self, link: AgentLink) -> None:
        old = self.agents.get(link.registration_id)
        self.agents[link.registration_id] = link
        log.info("agent %s of registration %s connected", link.id, link.registration_id)
        if old is not None and old is not link:
            self._agent_gone(old, "agent-replaced")

    def detach(self, link: AgentLink) -> None:
        if self.agents.get(link.registration_id) is link:
            del self.agents[link.registration_id]
        self._agent_gone(link, "agent-disconnected")
        log.info("agent %s of registration %s disconnected", link.id, link.registration_id)

    def _agent_gone(self, link: AgentLink, reason: str) -> None:
        for feed in [f for f in self.feeds.values() if f.agent is link]:
            for v in list(feed.viewers):
                self._cut(v, reason)
            self.feeds.pop(feed.camera_id, None)

    def started(self, link: AgentLink, camera_id: uuid.UUID) -> None:
        """The agent started FFmpeg for the camera: its next bytes are the start of a stream."""
        feed = self.feeds.get(camera_id)
        if feed is not None and feed.agent is link:
            feed.started = True
            feed.splitter = Splitter(config().max_box_bytes)

    def media(self, link: AgentLink, camera_id: uuid.UUID, data: bytes) -> bool:
        """An agent's bytes of a camera; False if no viewer asked for them (they are dropped)."""
        feed = self.feeds.get(camera_id)
        if feed is None or feed.agent is not link or not feed.started:
            return False
        try:
            pieces = feed.splitter.feed(data)
        except BadStream as exc:
            log.warning("agent %s sent camera %s unreadable media: %s", link.id, camera_id, exc)
            for v in list(feed.viewers):
                self._cut(v, "bad-media")
            return True
        for kind, piece in pieces:
            if kind == "init":
                feed.init = piece
                feed.init_ready.set()
                continue
            if feed.init is None:
                continue  # a fragment without its initialisation segment is of no use to anyone
            for v in list(feed.viewers):
                try:
                    if not v.primed:
                        v.queue.put_nowait(feed.init)
                        v.primed = True
                    v.queue.put_nowait(piece)
                except asyncio.QueueFull:
                    self._cut(v, "viewer-too-slow")
        return True

    # --- viewings --------------------------------------------------------------------------------------

    async def grant(
        self,
        agency: str,
        user: str,
        role: str,
        camera_id: uuid.UUID,
        token_expires_at: datetime,
        signed_by: tuple[str, str] | None = None,
    ) -> tuple[Viewing, str]:
        self._may_ask(agency, user, token_expires_at)  # refused before registry_api is asked, when it can be
        window = await self._window(agency, camera_id)
        self._agent_for(window.registration_id, camera_id)
        # Again, with nothing awaited from here until the viewing is kept: the user's other asks made meanwhile
        # (all of which passed the first count during registry_api's answer) count now, and the token may have
        # expired meanwhile (its grant would be expired already).
        self._may_ask(agency, user, token_expires_at)
        secret = secrets.token_urlsafe(32)
        expires = min(now_utc() + timedelta(seconds=config().grant_ttl_s), token_expires_at)
        viewing = Viewing(
            id=uuid.uuid4(),
            grant_hash=hash_secret(secret),
            grant_expires_at=expires,
            agency=agency,
            user=user,
            role=role,
            camera_id=camera_id,
            window_id=window.window_id,
            registration_id=window.registration_id,
            window_expires_at=window.expires_at,
            token_expires_at=token_expires_at,
            signed_by=signed_by,
            # Kept past its expiry, so that a late grant is refused as expired (not as unknown).
            forget_at=expires + REMEMBER_USED,
        )
        self.viewings[viewing.id] = viewing
        return viewing, f"{GRANT_PREFIX}{viewing.id.hex}_{secret}"

    def _may_ask(self, agency: str, user: str, token_expires_at: datetime) -> None:
        """Whether the user may be granted a viewing now: with a token not yet past its `exp` (shared/auth accepts
        one up to its leeway past it, as clocks differ; a viewing would end at once), and holding fewer viewings
        not watched than the limit (they are kept a while, to refuse their grants as expired: a user may not pile
        them up)."""
        now = now_utc()
        if token_expires_at <= now:
            raise Refused(401, "The bearer token has expired: ask again with a renewed one.", "token-expired")
        waiting = sum(
            1
            for v in self.viewings.values()
            if v.user == user and v.agency == agency and not v.used and v.grant_expires_at > now
        )
        if waiting >= config().max_unused_grants:
            raise Refused(
                429,
                f"You hold {waiting} viewings not watched yet: watch one or let their grants expire first.",
                "too-many-grants",
            )

    def redeem(self, viewing_id: uuid.UUID, grant: str) -> Viewing:
        """The viewing whose grant this is, used now (a second use, a late one or one after the window ended is
        refused)."""
        viewing = self.viewings.get(viewing_id)
        prefix = f"{GRANT_PREFIX}{viewing_id.hex}_"
        if (
            viewing is None
            or not grant.startswith(prefix)
            or not hmac.compare_digest(viewing.grant_hash, hash_secret(grant[len(prefix) :]))
        ):
            raise Refused(401, "This viewing's grant is not valid.")
        if viewing.used:
            raise Refused(403, "This viewing's grant was used already: ask for a new viewing.", "grant-used")
        if viewing.ended:
            raise Refused(403, f"This viewing can no longer be watched: {viewing.ended}.", "window-ended")
        if now_utc() >= viewing.grant_expires_at:
            raise Refused(403, "This viewing's grant has expired: ask for a new viewing.", "grant-expired")
        viewing.used = True
        viewing.watching = True
        return viewing

    async def join(self, viewing: Viewing) -> tuple[Viewer, Feed]:
        """Start watching: the window asked about again, the camera's feed started if it was not, the start
        audited; returns once the camera's initialisation segment is there (or refuses)."""
        window = await self._window(viewing.agency, viewing.camera_id, viewing.window_id)
        self._agent_for(window.registration_id, viewing.camera_id)
        self._room(self.feeds.get(viewing.camera_id))  # refused before its audit record, when it can be
        self._token_good(viewing)
        viewing.confirmed = time.monotonic()
        assert self.audit is not None
        await self.audit(self._event(viewing, "live_viewing.start", {}))
        viewer = Viewer(viewing, asyncio.Queue(config().viewer_buffer))
        # The agent and the camera's feed are looked up again after the audit's wait, and nothing is awaited until
        # the viewer is in the feed: two viewers starting at once share one feed, and a feed is never made on an
        # agent that has gone meanwhile.
        try:
            link = self._agent_for(window.registration_id, viewing.camera_id)
        except Refused:
            viewer.reason = "agent-offline"
            await self.leave(viewer)
            raise
        feed = self.feeds.get(viewing.camera_id)
        try:
            self._room(feed)  # again: other viewers may have joined during the audit's wait
        except Refused:
            viewer.reason = "too-many-viewers"
            await self.leave(viewer)
            raise
        try:
            # Again: the token may have expired during the waits; a feed already running would send its video.
            self._token_good(viewing)
        except Refused:
            viewer.reason = "token-expired"
            await self.leave(viewer)
            raise
        left = (viewing.token_expires_at - now_utc()).total_seconds()
        viewer.token_timer = asyncio.get_running_loop().call_later(left, self._cut, viewer, "token-expired")
        if feed is None:
            feed = Feed(viewing.camera_id, link, Splitter(config().max_box_bytes))
            self.feeds[viewing.camera_id] = feed
            feed.viewers.add(viewer)
            await link.command("start", viewing.camera_id)
        else:
            feed.viewers.add(viewer)
        try:
            await asyncio.wait_for(feed.init_ready.wait(), timeout=15)
        except TimeoutError:
            self._cut(viewer, "no-media-from-agent")
            await self.leave(viewer)
            raise Refused(
                504, "The camera's edge agent sent no video in time; retry shortly.", "agent-timeout"
            ) from None
        if viewer.done:
            await self.leave(viewer)
            raise Refused(
                403,
                f"This viewing can no longer be watched: {viewing.ended or viewer.reason}.",
                "token-expired" if viewer.reason == "token-expired" else "window-ended",
            )
        return viewer, feed

    async def leave(self, viewer: Viewer) -> None:
        """The viewer's response ended (cut, or the viewer went): the camera stopped if it was the last viewer,
        the end audited with the bytes sent."""
        if viewer.token_timer is not None:
            viewer.token_timer.cancel()
        feed = self.feeds.get(viewer.viewing.camera_id)
        if feed is not None and viewer in feed.viewers:
            feed.viewers.discard(viewer)
            if not feed.viewers:
                self.feeds.pop(feed.camera_id, None)
                await feed.agent.command("stop", feed.camera_id)
        # Kept a while, so that using its grant again is refused as used (not as unknown).
        ended = now_utc()
        viewer.viewing.watching = False
        viewer.viewing.ended = viewer.viewing.ended or viewer.reason
        viewer.viewing.forget_at = max(viewer.viewing.forget_at, ended + REMEMBER_USED)
        details = {
            "started_at": viewer.started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "seconds": round((ended - viewer.started_at).total_seconds(), 3),
            "bytes": viewer.bytes_sent,
            "ended_by": viewer.reason,
        }
        log.info(
            "viewing %s of camera %s by %s ended (%s): %d bytes",
            viewer.viewing.id,
            viewer.viewing.camera_id,
            viewer.viewing.agency,
            viewer.reason,
            viewer.bytes_sent,
        )
        assert self.audit is not None
        try:
            await self.audit(self._event(viewer.viewing, "live_viewing.end", details))
        except Exception:
            log.exception("the end of viewing %s could not be audited", viewer.viewing.id)

    def _cut(self, viewer: Viewer, reason: str) -> None:
        if viewer.done:
            return
        viewer.done = True
        viewer.reason = reason
        viewer.viewing.ended = reason
        while True:  # room for the end, whatever was still queued
            try:
                viewer.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                viewer.queue.get_nowait()

    def _event(self, viewing: Viewing, action: str, extra: dict[str, Any]) -> AuditEvent:
        return AuditEvent(
            service="live_relay",
            actor=viewing.user,
            actor_role=viewing.role,
            action=action,
            agency=viewing.agency,
            subject_type="camera",
            subject_id=str(viewing.camera_id),
            details={
                "viewing_id": str(viewing.id),
                "window_id": str(viewing.window_id),
                "registration_id": str(viewing.registration_id),
                **extra,
            },
        )

    async def _window(
        self, agency: str, camera_id: uuid.UUID, window_id: uuid.UUID | None = None
    ) -> registry.OpenWindow:
        try:
            window = await registry.window_for(agency, camera_id, window_id)
        except registry.Unreachable as exc:
            raise Refused(
                503, f"Cannot confirm the live window now ({exc}); retry shortly.", "unavailable"
            ) from exc
        if window is None:
            raise Refused(
                403, f"No live window open to your agency includes camera {camera_id}.", "no-open-window"
            )
        return window

    def _token_good(self, viewing: Viewing) -> None:
        if now_utc() >= viewing.token_expires_at:
            raise Refused(
                403,
                "This viewing can no longer be watched: the bearer token that asked for it has expired.",
                "token-expired",
            )

    def _room(self, feed: Feed | None) -> None:
        if feed is not None and len(feed.viewers) >= config().max_viewers_per_camera:
            raise Refused(
                429, "This camera has as many viewers as the relay allows; retry later.", "too-many-viewers"
            )

    def _agent_for(self, registration_id: uuid.UUID, camera_id: uuid.UUID) -> AgentLink:
        link = self.agents.get(registration_id)
        if link is None or camera_id not in link.cameras:
            raise Refused(
                409,
                "The camera's edge agent is not connected to Canvass now; the owner's site may be offline.",
                "agent-offline",
            )
        return link

    # --- the window, asked again -------------------------------------------------------------------------

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(config().recheck_s)
            try:
                await self.recheck()
            except Exception:
                log.exception("recheck failed")

    async def recheck(self) -> None:
        now = now_utc()
        for vid, v in list(self.viewings.items()):  # viewings over, or never used, whose time is past
            if not v.watching and now >= v.forget_at:
                del self.viewings[vid]
        # A viewing belongs to the window it was granted in: another window open to the agency for the camera
        # does not keep it going once its own has ended (the viewer asks again, in a viewing of that window).
        asked = {(v.agency, v.camera_id, v.window_id) for v in self.viewings.values() if not v.ended}
        answers = await asyncio.gather(
            *(registry.window_for(agency, cid, wid) for agency, cid, wid in asked), return_exceptions=True
        )
        confirmed = time.monotonic()
        for (agency, cid, wid), answer in zip(asked, answers, strict=True):
            if isinstance(answer, BaseException):
                continue  # unconfirmed: cut below once it has been for too long
            for v in self.viewings.values():
                if (v.agency, v.camera_id, v.window_id) == (agency, cid, wid):
                    if answer is None:
                        v.ended = "the window ended"
                    else:
                        v.confirmed = confirmed
        limit = config().unconfirmed_cut_s
        for feed in list(self.feeds.values()):
            for viewer in list(feed.viewers):
                if viewer.viewing.ended:
                    self._cut(viewer, "window-ended")
                elif confirmed - viewer.viewing.confirmed > limit:
                    self._cut(viewer, "window-unconfirmed")

    # --- the keys that signed the viewers' tokens, asked again ----------------------------------------------

    async def _keys_forever(self) -> None:
        while True:
            await asyncio.sleep(config().key_recheck_s)
            try:
                await self.recheck_keys()
            except Exception:
                log.exception("key recheck failed")

    async def recheck_keys(self) -> None:
        """End every viewing whose token was signed by a key its identity provider has withdrawn from its JWKS
        (the JWKS read again now, once per key): those being watched are cut, the others refused when their grant
        is used. A JWKS that cannot be read ends nothing (logged): the key was good when the token was
        verified, and the token's `exp` still ends the viewing."""
        keys = {v.signed_by for v in self.viewings.values() if v.signed_by is not None and not v.ended}
        for key in keys:
            try:
                withdrawn = await asyncio.to_thread(key_withdrawn, key)
            except Exception as exc:
                log.warning("could not read the JWKS at %s: %s", key[0], exc)
                continue
            if not withdrawn:
                continue
            log.warning("key %s of %s withdrawn: its viewings end", key[1], key[0])
            for v in self.viewings.values():
                if v.signed_by == key and not v.ended:
                    v.ended = "the key that signed the bearer token was withdrawn"
            for feed in list(self.feeds.values()):
                for viewer in list(feed.viewers):
                    if viewer.viewing.signed_by == key:
                        self._cut(viewer, "key-withdrawn")


hub = Hub()
