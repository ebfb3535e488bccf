"""``FallbackTts``: speak with the primary voice; if it cannot start a reply, use the fallback.

A primary that fails to warm (package missing, key refused) is skipped for the whole process; a
reply that fails before its first chunk (e.g. Deepgram unreachable) is spoken by the fallback.
A failure after audio has started is not retried (the caller would hear the start twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from convener.speech.tts import TtsChunk, TtsError, TtsProvider

log = logging.getLogger(__name__)


class FallbackTts:
    supports_ssml = False

    def __init__(self, primary: TtsProvider, fallback: TtsProvider) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"
        self.primary_ok = True

    @property
    def sample_rate(self) -> int:  # type: ignore[override]
        return (self.primary if self.primary_ok else self.fallback).sample_rate

    async def warm(self) -> None:
        try:
            await self.primary.warm()
        except (TtsError, ImportError, OSError) as e:
            self.primary_ok = False
            log.warning("TTS %s unusable, using %s: %s", self.primary.name, self.fallback.name, e)
        try:
            await self.fallback.warm()
        except (TtsError, ImportError, OSError) as e:
            if not self.primary_ok:
                raise
            log.warning("fallback TTS %s unusable: %s", self.fallback.name, e)

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        if self.primary_ok:
            started = False
            try:
                async for chunk in self.primary.synthesize(text, cancel):
                    started = True
                    yield chunk
                return
            except (TtsError, OSError) as e:
                if started:
                    raise
                log.warning("TTS %s failed, this reply uses %s: %s", self.primary.name, self.fallback.name, e)
        async for chunk in self.fallback.synthesize(text, cancel):
            yield chunk
