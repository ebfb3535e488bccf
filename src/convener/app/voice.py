"""Speak into a room: one external media channel in the room's conference bridge, fed by a pacer.

Why one shared voice leg per room rather than one per agent: the floor lets one agent speak at
a time, so a single leg never needs to mix two agents; it halves the channels and sockets per
call, keeps barge-in to one ``flush()``, and every caller in the room hears the reply because
the leg sits in the conference bridge. What Asterisk sends back on this leg (the conference
mix) is drained and ignored: the caller's voice reaches us only through the snoop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from convener.app.media_legs import open_external_media
from convener.app.resources import ResourceLedger
from convener.ari.rest import AriClient, gone_ok
from convener.config import Config
from convener.media.pacer import Pacer, PacerCore, PlaybackReport
from convener.media.transport import MediaTransport

log = logging.getLogger(__name__)


class _PacedVoice:
    """What a ``Speaker`` needs of a voice: a pacer, and callbacks on a reply's first frame and
    on its end."""

    def __init__(self) -> None:
        self.first_frame_at: dict[str, float] = {}
        self.on_first_frame: list[Callable[[str, float], None]] = []
        self.on_reply_done: list[Callable[[PlaybackReport], None]] = []

    def _first(self, reply_id: str, t: float) -> None:
        self.first_frame_at[reply_id] = t
        for cb in self.on_first_frame:
            cb(reply_id, t)

    def _done(self, report: PlaybackReport) -> None:
        for cb in self.on_reply_done:
            cb(report)

    def _start_pacer(self, transport: MediaTransport, config: Config) -> Pacer:
        m = config.media
        core = PacerCore(transport.sample_rate, warmup_ms=m.pacer_warmup_ms, late_ms=m.pacer_late_ms)
        pacer = Pacer(core, transport.send, clear_output=transport.clear_output,
                      on_first_frame=self._first, on_reply_done=self._done)
        pacer.start()
        return pacer


class BridgedLeg:
    """An external media channel that is a member of a room's bridge. What Asterisk sends on it
    (the room's mix) is drained and ignored. ``close()`` releases it all: the drain task, the
    transport and the channel (in that order, from its ledger)."""

    kind = "leg"

    def __init__(self, ari: AriClient, config: Config, bridge_id: str, channel_id: str,
                 in_stasis: asyncio.Future[None] | None = None) -> None:
        self.ari = ari
        self.config = config
        self.bridge_id = bridge_id
        self.channel_id = channel_id
        self.in_stasis = in_stasis
        self.ledger = ResourceLedger(f"{self.kind} {channel_id}")
        self.transport: MediaTransport | None = None
        self._drain: asyncio.Task[None] | None = None

    async def open(self) -> None:
        try:
            self.ledger.add("channel", self.channel_id,
                            lambda: gone_ok(self.ari.hangup(self.channel_id)))
            self.transport = await open_external_media(self.ari, self.config.ari, self.config.media,
                                                       self.channel_id, self.in_stasis)
            self.ledger.add("transport", self.channel_id, self.transport.close)
            await self.ari.add_channel(self.bridge_id, self.channel_id)
            self._drain = asyncio.create_task(self._drain_inbound())
            self.ledger.add("task", "drain", self._stop_drain)
            self._opened(self.transport)
        except BaseException:
            await self.close()
            raise

    def _opened(self, transport: MediaTransport) -> None:
        """The leg is in the bridge: what a subclass adds (released before the leg)."""

    async def _drain_inbound(self) -> None:
        assert self.transport is not None
        async for _ in self.transport.frames():
            pass

    async def _stop_drain(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain

    async def close(self) -> None:
        await self.ledger.release_all()


class RoomVoice(BridgedLeg, _PacedVoice):
    """The room's voice leg: a ``BridgedLeg`` fed by a pacer."""

    kind = "voice"

    def __init__(self, ari: AriClient, config: Config, bridge_id: str, channel_id: str,
                 in_stasis: asyncio.Future[None] | None = None) -> None:
        BridgedLeg.__init__(self, ari, config, bridge_id, channel_id, in_stasis)
        _PacedVoice.__init__(self)
        self.pacer: Pacer | None = None

    def _opened(self, transport: MediaTransport) -> None:
        self.pacer = self._start_pacer(transport, self.config)
        self.ledger.add("pacer", self.channel_id, self.pacer.close)


class RoomAnchor(BridgedLeg):
    """A silent member of a room's bridge: a ``BridgedLeg`` that never sends. It keeps the
    bridge on softmix (see ``convener.app.rooms``)."""

    kind = "anchor"


class PrivateVoice(_PacedVoice):
    """Speak to one caller only: a pacer on the caller's listening leg.

    The caller's snoop (``convener.app.listener``) is made with ``whisper=out``, so what we send
    on that leg is whispered into what Asterisk writes to the caller, and nobody else in the room
    hears it (the greeting, OFP private utterances). The caller's own voice, which the snoop
    spies, does not contain it. Same interface as ``RoomVoice`` for ``Speaker``.
    """

    def __init__(self, transport: MediaTransport, config: Config, channel_id: str) -> None:
        super().__init__()
        self.transport = transport
        self.channel_id = channel_id
        self.pacer: Pacer | None = self._start_pacer(transport, config)

    async def close(self) -> None:
        if self.pacer is not None:
            pacer, self.pacer = self.pacer, None
            await pacer.close()
