"""Hear only the caller: snoop (spy=in) → private bridge ← external media channel → convener.

The snoop carries the caller's own voice, never what the caller hears (agents, other callers),
so the recogniser is not confused by our replies. It also whispers (``whisper=out``): what
convener sends on the external media channel is mixed into what this caller hears and nobody
else (``convener.app.voice.PrivateVoice``: the greeting, OFP private utterances). Every
resource goes into the call's ledger the moment it exists. Frames are handed to ``on_frame`` in
order from the call's own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from convener.app.media_legs import open_external_media
from convener.ari import events as ev
from convener.ari.rest import gone_ok
from convener.audio import AudioFrame
from convener.media.transport import MediaTransport

if TYPE_CHECKING:
    from convener.app.call import Call

log = logging.getLogger(__name__)

FrameSink = Callable[[AudioFrame], None]


class CallerListener:
    """A CallFeature: opens the caller's inbound audio path and feeds ``on_frame``."""

    def __init__(self, on_frame: FrameSink | None = None) -> None:
        self.on_frame = on_frame
        self.transport: MediaTransport | None = None
        self.snoop_id = ""
        self.media_id = ""
        self.bridge_id = ""
        self.frames = 0
        self._reader: asyncio.Task[None] | None = None

    async def start(self, call: Call) -> None:
        ari, cfg = call.ari, call.app.config
        app = cfg.ari.app
        self.snoop_id = call.new_resource_id("snoop")
        call.ledger.add("channel", self.snoop_id, lambda: gone_ok(ari.hangup(self.snoop_id)))
        snooping = call.app.expect_stasis(self.snoop_id)
        await ari.snoop(call.id, app=app, snoop_id=self.snoop_id, spy="in", whisper="out")
        await asyncio.wait_for(snooping, 5.0)
        self.media_id = call.new_resource_id("media")
        call.ledger.add("channel", self.media_id, lambda: gone_ok(ari.hangup(self.media_id)))
        self.transport = await open_external_media(ari, cfg.ari, cfg.media, self.media_id,
                                                   call.app.expect_stasis(self.media_id))
        transport = self.transport
        call.ledger.add("transport", self.media_id, transport.close)
        self.bridge_id = call.new_resource_id("listen")
        call.ledger.add("bridge", self.bridge_id, lambda: gone_ok(ari.destroy_bridge(self.bridge_id)))
        await ari.create_bridge(self.bridge_id, type="mixing", name=f"convener listen {call.id}")
        await ari.add_channel(self.bridge_id, self.snoop_id)
        await ari.add_channel(self.bridge_id, self.media_id)
        self._reader = asyncio.create_task(self._read(call), name=f"listen-{call.id}")
        call.ledger.add("task", "reader", self._stop_reader)

    async def _read(self, call: Call) -> None:
        assert self.transport is not None
        try:
            async for frame in self.transport.frames():
                self.frames += 1
                if self.on_frame is not None:
                    self.on_frame(frame)
        except Exception:
            call.app.errors += 1
            log.exception("call %s: inbound audio handling failed", call.id)

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def on_event(self, call: Call, event: ev.Event) -> None:
        if isinstance(event, ev.ChannelDestroyed) and event.channel_id == self.snoop_id:
            log.info("call %s: snoop channel went away", call.id)

    async def stop(self, call: Call) -> None:
        """Resources are released by the call's ledger; report what the network lost."""
        if self.transport is not None and self.transport.stats.lost:
            from convener.ops import metrics

            metrics.rtp_lost(self.transport.stats.lost)
