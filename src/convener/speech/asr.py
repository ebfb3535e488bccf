"""Speech recognition interfaces: providers, per-call sessions and the events they emit.

A provider (:class:`AsrProvider`) holds what is shared by all calls (a loaded model, an HTTP
session) and is warmed once at start. Each caller turn stream gets an :class:`AsrSession`:

    session = await provider.open_session(sample_rate=8000, bias=context)   # bias: optional
    await session.feed(frame_pcm16)          # 20 ms PCM16 frames, 8 or 16 kHz
    await session.end_of_turn()              # our VAD says the caller stopped: finalise now
    async for event in session.events():     # SpeechStarted, Partial, Final, EndOfTurn
        ...
    await session.close()

``events()`` is one long-lived iterator per session; it ends after ``close()``.

``bias`` (a :class:`convener.speech.bias.BiasContext`, optional) names the words the
conversation makes likely; each provider passes it on in its own way (Whisper prompt, Deepgram
keyterm/keywords). Offline providers also take it per turn (``transcribe_pcm(..., bias=)``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from convener.speech.bias import BiasContext


@dataclass(frozen=True, slots=True)
class Alternative:
    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The recogniser (or its VAD) heard speech start. ``at`` is ``time.monotonic()``."""

    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class PartialTranscript:
    """An interim hypothesis; may change. Only engines with streaming results emit these."""

    text: str
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class FinalTranscript:
    """Final text of a stretch of speech; ``alternatives[0]`` is the best (same as ``text``)."""

    text: str
    confidence: float
    alternatives: tuple[Alternative, ...] = ()
    provider: str = ""
    at: float = field(default_factory=time.monotonic)
    # The recogniser's probability of the last word (its tokens' product; None: not known). A
    # misheard fragment often ends on a guessed word ("Show me flight 2.") inside words heard
    # well; the turn decision doubts such an ending (media.turn_min_last_word_confidence).
    last_word_confidence: float | None = None
    # Better words on their way (an awaitable of a FinalTranscript): a second decode of the same
    # audio, for the words the agents get, never for whether the caller has finished
    # (speech.whisper.doubt_beam_below). None: these are the final words.
    refined: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    """The turn is over; ``text`` is everything finalised in it (may be empty)."""

    text: str = ""
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class EagerEndOfTurn:
    """The recogniser thinks the turn is probably over (Flux): work may be prepared, nothing sent."""

    text: str
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class TurnResumed:
    """The caller went on after an ``EagerEndOfTurn``: what was prepared is void."""

    at: float = field(default_factory=time.monotonic)


AsrEvent = SpeechStarted | PartialTranscript | FinalTranscript | EndOfTurn | EagerEndOfTurn | TurnResumed


class AsrError(RuntimeError):
    """A recogniser failed (e.g. auth refused, connection lost beyond recovery)."""


class AsrAuthError(AsrError):
    """Credentials refused (HTTP 401/403). Not worth retrying."""


@runtime_checkable
class AsrSession(Protocol):
    async def feed(self, pcm: bytes) -> None:
        """Add one frame of PCM16 mono at the session's sample rate."""

    async def end_of_turn(self) -> None:
        """Force finalisation of what was heard so far (signal from our own VAD)."""

    def events(self) -> AsyncIterator[AsrEvent]:
        """The session's events, in order. Ends when the session is closed."""

    async def close(self) -> None:
        """Release the session; pending work is abandoned."""


@runtime_checkable
class AsrProvider(Protocol):
    name: str

    async def warm(self) -> None:
        """Load models / check reachability so the first call is fast. Idempotent."""

    async def open_session(self, sample_rate: int = 8000, bias: BiasContext | None = None) -> AsrSession:
        """A new recognition stream for one call, biased towards ``bias``."""


class EventQueue:
    """Helper for session implementations: an event queue whose iterator ends on close."""

    _END = object()

    def __init__(self) -> None:
        self._q: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False

    def put(self, event: AsrEvent) -> None:
        if not self.closed:
            self._q.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._q.put_nowait(self._END)

    def fail(self, error: AsrError) -> None:
        """End the stream with ``error`` (raised by the iterator after queued events)."""
        if not self.closed:
            self.closed = True
            self._q.put_nowait(error)

    async def iterate(self) -> AsyncIterator[AsrEvent]:
        while True:
            item = await self._q.get()
            if item is self._END:
                return
            if isinstance(item, AsrError):
                raise item
            yield item  # type: ignore[misc]


async def transcribe_frames(
    provider: AsrProvider, frames: list[bytes], sample_rate: int, limit_s: float = 30.0,
    bias: BiasContext | None = None,
) -> tuple[EndOfTurn, list[AsrEvent], float]:
    """Feed whole utterance, signal end of turn, wait for ``EndOfTurn``.

    Returns the EndOfTurn, all events, and seconds from the end-of-turn signal to the final
    text (the latency that matters on a call). For tests, the bench and ``speech test``.
    """
    session = await provider.open_session(sample_rate, bias=bias)
    events: list[AsrEvent] = []
    try:
        for f in frames:
            await session.feed(f)
        t0 = time.monotonic()
        await session.end_of_turn()
        final_at: float | None = None

        async def collect() -> EndOfTurn:
            nonlocal final_at
            async for ev in session.events():
                events.append(ev)
                if isinstance(ev, FinalTranscript) and final_at is None:
                    final_at = time.monotonic()
                if isinstance(ev, EndOfTurn):
                    return ev
            raise AsrError("session ended without EndOfTurn")

        eot = await asyncio.wait_for(collect(), limit_s)
        latency = (final_at or time.monotonic()) - t0
        return eot, events, latency
    finally:
        await session.close()
