"""Speech synthesis interface: text in, audio chunks out as soon as each sentence is ready.

    cancel = asyncio.Event()
    async for chunk in provider.synthesize("Sure. Your flight to Denver is booked.", cancel):
        send(chunk.pcm, chunk.sample_rate)      # PCM16 mono
    cancel.set()                                # barge-in, from any task: stops promptly

Cancellation works three ways, all of which stop the work behind the iterator (no further
sentence is synthesised, a synthesis subprocess is killed, an HTTP stream is closed): setting the
``cancel`` event, ``aclose()`` on the iterator, or cancelling the task that iterates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TtsChunk:
    pcm: bytes  # PCM16 mono, little-endian
    sample_rate: int
    text: str = ""  # the sentence this chunk belongs to (first chunk of it), else ""
    index: int = 0  # sentence number

    @property
    def duration(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class TtsError(RuntimeError):
    """A synthesiser failed."""


class TtsCancelled(Exception):
    """Raised inside providers when the cancel event fires (never escapes ``synthesize``)."""


@runtime_checkable
class TtsProvider(Protocol):
    name: str
    sample_rate: int  # rate of the chunks it yields
    supports_ssml: bool

    async def warm(self) -> None:
        """Load the voice and synthesise once so the first reply is fast. Idempotent."""

    def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        """Audio of ``text`` (plain or SSML), one or more chunks per sentence."""


async def until_cancelled(aw: Awaitable[T], cancel: asyncio.Event | None) -> T:
    """Await ``aw`` unless ``cancel`` fires first (then raise TtsCancelled, cancelling ``aw``)."""
    if cancel is None:
        return await aw
    if cancel.is_set():
        if isinstance(aw, asyncio.Future):
            aw.cancel()
        elif asyncio.iscoroutine(aw):
            aw.close()
        raise TtsCancelled
    fut = asyncio.ensure_future(aw)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({fut, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        fut.cancel()
        raise
    finally:
        waiter.cancel()
    if fut.done():
        return fut.result()
    fut.cancel()
    raise TtsCancelled


@dataclass
class SynthesisResult:
    pcm: bytes
    sample_rate: int
    first_chunk_s: float
    total_s: float
    chunks: int


async def synthesize_all(provider: TtsProvider, text: str) -> SynthesisResult:
    """Whole reply in one buffer, with time to first chunk and total time (seconds)."""
    t0 = time.perf_counter()
    first: float | None = None
    parts: list[bytes] = []
    rate = provider.sample_rate
    n = 0
    async for chunk in provider.synthesize(text):
        if first is None:
            first = time.perf_counter() - t0
        parts.append(chunk.pcm)
        rate = chunk.sample_rate
        n += 1
    total = time.perf_counter() - t0
    return SynthesisResult(b"".join(parts), rate, first if first is not None else total, total, n)
