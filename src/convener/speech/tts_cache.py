"""Replies already spoken once are not synthesised again (an LRU cache in front of a TTS).

Much of what a caller hears repeats: convener's own "Connecting you to Flights.", an agent's
"Where are you flying from?", "Which city would you like the weather for?". The first chunk of
a reply is on the path to the caller's ear (bench/turn_taking.py: ~35-45 ms of hibari for a
short sentence on the shared cores, more under load), so a repeated text is played from memory.

Only whole, uncancelled syntheses of short texts are kept (a barge-in cut leaves nothing
behind), bounded by total bytes; the least recently used go first. Keyed by the exact text
(plain or SSML) and the provider's name, so a fallback voice never answers for the main one.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator

from convener.speech.tts import TtsChunk, TtsProvider

MAX_TEXT = 200  # characters: longer texts are rarely said twice


class CachedTts:
    def __init__(self, inner: TtsProvider, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple[str, str], tuple[TtsChunk, ...]] = OrderedDict()
        self._bytes = 0
        self.hits = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    @property
    def supports_ssml(self) -> bool:
        return self.inner.supports_ssml

    def __getattr__(self, item: str) -> object:  # the provider's own extras (fallback state, ...)
        return getattr(self.inner, item)

    async def warm(self) -> None:
        await self.inner.warm()

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        key = (self.inner.name, text)
        chunks = self._cache.get(key)
        if chunks is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            for c in chunks:
                if cancel is not None and cancel.is_set():
                    return
                yield c
            return
        keep = len(text) <= MAX_TEXT
        got: list[TtsChunk] = []
        size = 0
        async for c in self.inner.synthesize(text, cancel):
            if keep:
                got.append(c)
                size += len(c.pcm)
                keep = size <= self.max_bytes // 2
            yield c
        if keep and got and not (cancel is not None and cancel.is_set()):
            self._store(key, tuple(got), size)

    def _store(self, key: tuple[str, str], chunks: tuple[TtsChunk, ...], size: int) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= sum(len(c.pcm) for c in old)
        self._cache[key] = chunks
        self._bytes += size
        while self._bytes > self.max_bytes and self._cache:
            _, dropped = self._cache.popitem(last=False)
            self._bytes -= sum(len(c.pcm) for c in dropped)


def cached(inner: TtsProvider, max_mb: float) -> TtsProvider:
    """``inner`` behind a cache of ``max_mb`` megabytes; ``inner`` itself when 0."""
    return CachedTts(inner, int(max_mb * 1_000_000)) if max_mb > 0 else inner  # type: ignore[return-value]
