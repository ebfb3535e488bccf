"""Conference rooms: one mixing bridge per room name, shared by the callers in it.

The bridge is created when the first caller joins and destroyed when the last one leaves.
Bridge ids carry the prefix ``convener-<app>-room-`` so a resync can recognise ours.

The anchor (``calls.room_anchor``): with a silent member in the bridge from its creation, the
room has three members (anchor, caller, voice leg) from the first caller on, so Asterisk picks
softmix once and never switches technology while callers come and go. Measured against the
sandbox (Asterisk 22.10): without it, the caller already in the room heard nothing in one of the
two switches of every join/leave (12 of 12 runs); with it, every reply in every phase (6 of 6
runs, then the room tests). See docs/decisions.md, "Rooms".
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convener.ari.errors import AriBadRequest, AriConflict, AriNotFound
from convener.ari.rest import AriClient, gone_ok

if TYPE_CHECKING:
    from convener.app.voice import RoomAnchor, RoomVoice
    from convener.config import Config

log = logging.getLogger(__name__)

_ROOM_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class RoomError(ValueError):
    pass


def parse_room(args: tuple[str, ...], default: str) -> str:
    """The room named by Stasis arguments: ``room=sales`` or a bare first argument."""
    for a in args:
        if a.startswith("room="):
            return a[5:] or default
    for a in args:
        if a and "=" not in a:
            return a
    return default


@dataclass
class Room:
    name: str
    bridge_id: str
    members: set[str] = field(default_factory=set)
    voice: RoomVoice | None = None
    anchor: RoomAnchor | None = None
    # Per-room state other features keep (e.g. the conversation); closed with the room.
    state: dict[str, Any] = field(default_factory=dict)


class Rooms:
    def __init__(self, ari: AriClient, app: str, bridge_type: str,
                 allowed: list[str] | None = None, config: Config | None = None,
                 expect_stasis: Callable[[str], asyncio.Future[None]] | None = None) -> None:
        self.ari = ari
        # With both, each room gets its anchor (``calls.room_anchor``) when its bridge is made.
        self.config = config
        self.expect_stasis = expect_stasis
        self.prefix = f"convener-{app}-room-"
        self.bridge_type = bridge_type
        self.allowed = set(allowed or [])
        self.rooms: dict[str, Room] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Called (awaited) before a room's bridge is destroyed, to close per-room state.
        self.on_room_closing: list[Callable[[Room], Awaitable[None]]] = []
        # Channels the rooms own (voice legs), registered before they are created.
        self.channel_ids: set[str] = set()

    def check_name(self, name: str) -> None:
        if not _ROOM_NAME.match(name):
            raise RoomError(f"room name {name!r} is not allowed (letters, digits, _ . - only)")
        if self.allowed and name not in self.allowed:
            raise RoomError(f"room {name!r} is not in calls.allowed_rooms")

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def join(self, name: str, channel_id: str) -> Room:
        """Add a caller to the room's bridge, creating the bridge for the first caller."""
        self.check_name(name)
        async with self._lock(name):
            room = self.rooms.get(name)
            if room is None:
                bridge_id = f"{self.prefix}{name}-{uuid.uuid4().hex[:8]}"
                await self.ari.create_bridge(bridge_id, type=self.bridge_type,
                                             name=f"convener room {name}")
                room = Room(name, bridge_id)
                self.rooms[name] = room
                log.info("room %s: bridge %s created", name, bridge_id)
                try:
                    await self._anchor(room)
                except Exception:
                    await self._destroy_if_empty(room)
                    raise
            room.members.add(channel_id)
            try:
                await self.ari.add_channel(room.bridge_id, channel_id)
            except Exception:
                room.members.discard(channel_id)
                await self._destroy_if_empty(room)
                raise
            return room

    async def leave(self, name: str, channel_id: str) -> None:
        async with self._lock(name):
            room = self.rooms.get(name)
            if room is None or channel_id not in room.members:
                return
            room.members.discard(channel_id)
            try:
                await self.ari.remove_channel(room.bridge_id, channel_id)
            except (AriNotFound, AriBadRequest, AriConflict):
                pass  # the caller already hung up and left the bridge by itself
            finally:
                await self._destroy_if_empty(room)

    async def voice(self, room: Room, config: Config,
                    expect_stasis: Callable[[str], asyncio.Future[None]] | None = None) -> RoomVoice:
        """The room's voice leg, opened on first use (one per room, shared by all agents)."""
        from convener.app.voice import RoomVoice

        async with self._lock(room.name):
            if room.voice is None:
                cid = f"{self.prefix.replace('-room-', '-voice-')}{uuid.uuid4().hex[:12]}"
                self.channel_ids.add(cid)
                voice = RoomVoice(self.ari, config, room.bridge_id, cid,
                                  expect_stasis(cid) if expect_stasis else None)
                try:
                    await voice.open()
                except BaseException:
                    self.channel_ids.discard(cid)
                    raise
                room.voice = voice
            return room.voice

    async def _anchor(self, room: Room) -> None:
        cfg = self.config
        if cfg is None or not cfg.calls.room_anchor:
            return
        from convener.app.voice import RoomAnchor

        cid = f"{self.prefix.replace('-room-', '-anchor-')}{uuid.uuid4().hex[:12]}"
        self.channel_ids.add(cid)
        anchor = RoomAnchor(self.ari, cfg, room.bridge_id, cid,
                            self.expect_stasis(cid) if self.expect_stasis else None)
        try:
            await anchor.open()
        except BaseException:
            self.channel_ids.discard(cid)
            raise
        room.anchor = anchor

    async def _destroy_if_empty(self, room: Room) -> None:
        if room.members:
            return
        self.rooms.pop(room.name, None)
        try:
            await self._close_state(room)
        finally:
            await gone_ok(self.ari.destroy_bridge(room.bridge_id))
        log.info("room %s: bridge %s destroyed", room.name, room.bridge_id)

    async def _close_state(self, room: Room) -> None:
        """Close what lives with the room: features' per-room state, then the voice leg."""
        for cb in self.on_room_closing:
            try:
                await cb(room)
            except Exception:
                log.exception("room %s: closing hook failed", room.name)
        for leg in (room.voice, room.anchor):
            if leg is not None:
                await leg.close()
                self.channel_ids.discard(leg.channel_id)
        room.voice = room.anchor = None

    async def close_all(self) -> None:
        """convener is stopping: close every room's state (bridges go with their last caller)."""
        for room in list(self.rooms.values()):
            await self._close_state(room)

    def owns(self, bridge_id: str) -> bool:
        return any(r.bridge_id == bridge_id for r in self.rooms.values())

    async def forget_missing(self, existing_bridges: set[str]) -> None:
        """After a reconnect: rooms whose bridge Asterisk no longer has start afresh."""
        for name, room in list(self.rooms.items()):
            if room.bridge_id not in existing_bridges:
                log.info("room %s: bridge %s vanished (Asterisk restarted?)", name, room.bridge_id)
                del self.rooms[name]
                await self._close_state(room)
