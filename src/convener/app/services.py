"""What the parts of a call use of the application, as narrow protocols.

A ``Call``, the features it runs (the caller's listener, the spoken conversation, telephony
actions) and the room's conversation are handed the application, but they depend only on these
protocols, each listing exactly what its users touch. ``ConvenerApp`` satisfies them and is the
one place that wires the parts together; none of them imports it, so the old import circle
(application → call → application) is gone. A test can hand a part a small object with just
these attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping, MutableSequence
from typing import Any, Protocol

from convener.app.rooms import Room, Rooms
from convener.app.voice import RoomVoice
from convener.ari.rest import AriClient
from convener.config import Config
from convener.ofp.endpoint import SessionRegistry
from convener.ops.console.feed import LiveFeed
from convener.timings import TurnTimings


class CallServices(Protocol):
    """What a call's features use: the configuration, ARI, the rooms, and the errors count."""

    config: Config
    ari: AriClient
    rooms: Rooms
    errors: int

    def expect_stasis(self, channel_id: str) -> asyncio.Future[None]:
        """A future resolved when ``channel_id`` enters the application (StasisStart)."""
        ...


class CallHost(CallServices, Protocol):
    """What a ``Call`` itself uses: the above, and the application's books on calls."""

    resource_prefix: str
    owners: MutableMapping[str, Any]  # resource id -> the call that owns it
    setup_times: MutableSequence[float]
    setup_failures: int
    feature_factories: list[Callable[[Any], Any]]

    def forget(self, call: Any) -> None:
        """The call has ended: drop it and the resources it owned from the books."""
        ...


class ConversationServices(CallServices, Protocol):
    """What the spoken conversation uses: the above, the room's voice, the live OFP sessions,
    the transcript writer, the console feed, and the turn records."""

    transcripts: Any  # ops TranscriptWriter, or None when transcripts are not kept
    ofp_sessions: SessionRegistry
    feed: LiveFeed
    barge_ins: int

    async def room_voice(self, room: Room) -> RoomVoice:
        """The room's voice leg (opened on first use)."""
        ...

    def record_turn(self, timings: TurnTimings, text: str) -> None:
        """Keep a finished turn's timings (metrics, ``turns``, the log line)."""
        ...
