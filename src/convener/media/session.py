"""One call's media path wired together: transport → turn detector → barge-in → pacer → transport.

The Asterisk wiring creates the transport (see ``rtp_transport`` / ``ws_transport`` for what to
pass from the ``externalMedia`` reply), then::

    media = CallMedia(transport, vad, settings, on_barge_in=..., on_first_audio=...)
    await media.start()                      # starts the transport, pacer and frame consumer
    async for event in media.events():       # SpeechStarted / TurnEnded (utterance audio)
        ...
    media.say(reply_id, pcm16, sample_rate)  # TTS chunks, any rate, any size
    media.end_reply(reply_id)
    await media.close()                      # on every path (also ``async with``)

Barge-in is automatic: caller speech confirmed while a reply plays flushes it and calls
``on_barge_in(BargeInReport)`` with the played ms per reply id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Self

from convener.media.bargein import BargeIn, BargeInReport
from convener.media.pacer import Pacer, PacerCore, PlaybackReport
from convener.media.settings import MediaSettings
from convener.media.transport import MediaTransport
from convener.media.turns import TurnDetector, TurnEvent, Vad, _ProbabilityVad

log = logging.getLogger(__name__)

_END = object()


class CallMedia:
    """Glue of one call; every callback runs on the event loop and must not block."""

    def __init__(
        self,
        transport: MediaTransport,
        vad: Vad | _ProbabilityVad,
        settings: MediaSettings | None = None,
        *,
        on_barge_in: Callable[[BargeInReport], None] | None = None,
        on_first_audio: Callable[[str, float], None] | None = None,
        on_reply_done: Callable[[PlaybackReport], None] | None = None,
    ) -> None:
        self.settings = settings or MediaSettings()
        self.transport = transport
        self.turns = TurnDetector(vad, self.settings)
        self.pacer = Pacer(
            PacerCore(transport.sample_rate, frame_ms=transport.format.ptime_ms,
                      warmup_ms=self.settings.pacer_warmup_ms,
                      late_ms=self.settings.pacer_late_ms),
            transport.send,
            clear_output=transport.clear_output,
            on_first_frame=on_first_audio,
            on_reply_done=on_reply_done,
        )
        self.barge_in = BargeIn(self.pacer, on_barge_in=on_barge_in)
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        try:
            await self.transport.start()
            self.pacer.start()
            self._task = asyncio.create_task(self._consume(), name="call-media-in")
        except BaseException:
            await self.close()
            raise

    async def _consume(self) -> None:
        try:
            async for frame in self.transport.frames():
                for event in self.turns.process(frame):
                    self.barge_in.on_event(event)
                    self._events.put_nowait(event)
        finally:
            self._events.put_nowait(_END)

    async def events(self) -> AsyncIterator[TurnEvent]:
        """Turn events until the call's media ends."""
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # later iterators end too
                return
            yield item  # type: ignore[misc]

    def say(self, reply_id: str, pcm16: bytes, sample_rate: int) -> None:
        self.pacer.feed(reply_id, pcm16, sample_rate)

    def end_reply(self, reply_id: str) -> None:
        self.pacer.end_reply(reply_id)

    def stop_reply(self) -> dict[str, PlaybackReport]:
        """Stop whatever plays now (e.g. the floor moved); reports per interrupted reply."""
        return self.pacer.flush()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.pacer.close()
        await self.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
