"""Offline TTS: hibari (Apache-2.0; 24 kHz; voice "heart" ships in the wheel, no download).

Sentences are synthesised one by one in the speech worker pool, the next one while the current
chunk is being played, so the first chunk is ready after the first sentence (~30 ms).
Cancellation drops the pending sentence; at most the one already running finishes (tens of ms).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from convener.audio import float_to_pcm16
from convener.speech import workers
from convener.speech.settings import HibariSettings
from convener.speech.text import is_ssml, split_sentences, strip_ssml
from convener.speech.tts import TtsCancelled, TtsChunk, TtsError, until_cancelled

log = logging.getLogger(__name__)

HIBARI_RATE = 24000
_engines: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def load_engine(settings: HibariSettings) -> Any:
    """The Hibari engine for this voice, loaded once per process."""
    key = (settings.voice, settings.threads)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            try:
                from hibari import Hibari
                from hibari.voices import VOICES
            except ImportError as e:
                raise TtsError("hibari TTS needs the package hibari-tts") from e
            if settings.voice not in VOICES:
                raise TtsError(f"hibari has no voice {settings.voice!r} (known: {sorted(VOICES)})")
            t0 = time.perf_counter()
            try:
                engine = Hibari(voice=settings.voice, threads=settings.threads)
            except RuntimeError as e:  # a voice that is not in the wheel and not downloaded
                raise TtsError(f"hibari voice {settings.voice!r} unavailable offline: {e}") from e
            engine.g2p  # noqa: B018 - load the phonemiser now, not on the first sentence
            log.info("loaded hibari voice %s in %.2f s", settings.voice, time.perf_counter() - t0)
            _engines[key] = engine
        return engine


class HibariTts:
    """TTS provider ``hibari``."""

    name = "hibari"
    sample_rate = HIBARI_RATE
    supports_ssml = False

    def __init__(self, settings: HibariSettings | None = None) -> None:
        self.settings = settings or HibariSettings()
        self._engine: Any = None

    async def warm(self) -> None:
        if self._engine is None:
            self._engine = await workers.run(load_engine, self.settings)
            await workers.run(self._synth, "Hello there.")

    def _synth(self, sentence: str) -> bytes:
        audio = self._engine(sentence, speed=self.settings.speed, seed=0)
        return float_to_pcm16(np.asarray(audio, dtype=np.float32))

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None) -> AsyncIterator[TtsChunk]:
        await self.warm()
        plain = strip_ssml(text) if is_ssml(text) else text
        sentences = split_sentences(plain)
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[bytes] | None = None
        try:
            for i, sentence in enumerate(sentences):
                fut = pending or loop.run_in_executor(workers.pool(), self._synth, sentence)
                pending = None
                try:
                    pcm = await until_cancelled(fut, cancel)
                except TtsCancelled:
                    return
                if i + 1 < len(sentences):  # pipeline: synthesise the next while this plays
                    pending = loop.run_in_executor(workers.pool(), self._synth, sentences[i + 1])
                yield TtsChunk(pcm, HIBARI_RATE, sentence, i)
                if cancel is not None and cancel.is_set():
                    return
        finally:
            if pending is not None:
                pending.cancel()
