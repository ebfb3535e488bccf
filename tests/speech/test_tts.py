from __future__ import annotations

import asyncio
import time

import pytest

from convener.speech.espeak_tts import EspeakTts, FliteTts
from convener.speech.fallback_tts import FallbackTts
from convener.speech.hibari_tts import HibariTts
from convener.speech.registry import build_tts, clear_cache
from convener.speech.settings import SpeechSettings
from convener.speech.tts import TtsChunk, TtsError, synthesize_all

LONG_REPLY = " ".join(f"This is sentence number {i} of a long reply about your booking." for i in range(1, 31))


class CountingHibari(HibariTts):
    """Counts sentences actually synthesised (to prove cancellation stops the work)."""

    def __init__(self) -> None:
        super().__init__()
        self.synthesised = 0

    def _synth(self, sentence: str) -> bytes:
        self.synthesised += 1
        return super()._synth(sentence)


async def test_hibari_streams_one_chunk_per_sentence_first_one_early() -> None:
    tts = HibariTts()
    await tts.warm()
    text = "Sure. Your flight to Denver leaves at nine in the morning. Anything else?"
    t0 = time.perf_counter()
    chunks: list[tuple[float, TtsChunk]] = []
    async for chunk in tts.synthesize(text):
        chunks.append((time.perf_counter() - t0, chunk))
    assert [c.text for _, c in chunks] == [
        "Sure.",
        "Your flight to Denver leaves at nine in the morning.",
        "Anything else?",
    ]
    assert all(c.sample_rate == 24000 and len(c.pcm) % 2 == 0 for _, c in chunks)
    assert chunks[0][1].duration > 0.2
    assert chunks[0][0] < chunks[-1][0]
    assert chunks[0][0] < 0.5  # first sentence ready long before the whole reply is spoken


async def test_hibari_strips_ssml() -> None:
    tts = CountingHibari()
    await tts.warm()
    out = [c async for c in tts.synthesize("<speak>Hello <break time='200ms'/> there.</speak>")]
    assert [c.text for c in out] == ["Hello, there."]


async def test_hibari_cancel_event_stops_synthesis_promptly() -> None:
    tts = CountingHibari()
    await tts.warm()
    tts.synthesised = 0
    cancel = asyncio.Event()
    got = 0
    t_cancel = 0.0
    async for _chunk in tts.synthesize(LONG_REPLY, cancel):
        got += 1
        if got == 2:
            cancel.set()
            t_cancel = time.perf_counter()
    stopped_after = time.perf_counter() - t_cancel
    assert got == 2
    assert stopped_after < 0.1
    await asyncio.sleep(0.2)  # let any sentence already in a worker finish
    assert tts.synthesised <= 3, "kept synthesising after cancel"


async def test_hibari_cancel_from_another_task_while_waiting() -> None:
    tts = CountingHibari()
    await tts.warm()
    tts.synthesised = 0
    cancel = asyncio.Event()
    chunks: list[TtsChunk] = []

    async def play() -> None:
        async for chunk in tts.synthesize(LONG_REPLY, cancel):
            chunks.append(chunk)
            await asyncio.sleep(chunk.duration / 20)  # "playing"

    task = asyncio.create_task(play())
    await asyncio.sleep(0.15)
    cancel.set()  # barge-in
    t0 = time.perf_counter()
    await asyncio.wait_for(task, 1.0)
    assert time.perf_counter() - t0 < 0.2
    n = tts.synthesised
    await asyncio.sleep(0.2)
    assert tts.synthesised <= n + 1
    assert 0 < len(chunks) < 30


async def test_hibari_task_cancellation_stops_work() -> None:
    tts = CountingHibari()
    await tts.warm()
    tts.synthesised = 0

    async def play() -> None:
        async for chunk in tts.synthesize(LONG_REPLY):
            await asyncio.sleep(chunk.duration / 20)

    task = asyncio.create_task(play())
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    n = tts.synthesised
    await asyncio.sleep(0.2)
    assert tts.synthesised <= n + 1 and n < 30


async def test_espeak_streams_and_cancel_kills_the_process() -> None:
    tts = EspeakTts()
    await tts.warm()
    r = await synthesize_all(tts, "Your flight is booked.")
    assert r.sample_rate == 22050 and r.total_s > 0 and len(r.pcm) > 22050
    cancel = asyncio.Event()
    agen = tts.synthesize(LONG_REPLY * 3, cancel)
    first = await agen.__anext__()
    assert first.sample_rate == 22050
    proc = tts.last_process
    assert proc is not None and proc.returncode is None
    cancel.set()
    t0 = time.perf_counter()
    rest = [c async for c in agen]
    assert len(rest) <= 1
    assert time.perf_counter() - t0 < 0.2
    assert proc.returncode is not None  # killed, not left running


async def test_espeak_aclose_kills_the_process() -> None:
    tts = EspeakTts()
    agen = tts.synthesize(LONG_REPLY * 3)
    await agen.__anext__()
    proc = tts.last_process
    assert proc is not None
    await agen.aclose()
    assert proc.returncode is not None


async def test_espeak_passes_ssml_with_markup_flag() -> None:
    tts = EspeakTts()
    assert "-m" in tts.command("<speak>Hi</speak>")
    assert "-m" not in tts.command("Hi")
    out = await synthesize_all(tts, "<speak>Hello <break time='300ms'/> there</speak>")
    assert len(out.pcm) > 0


def test_registry_caches_providers_and_puts_the_fallback_behind() -> None:
    clear_cache()
    s = SpeechSettings()
    tts = build_tts(s)
    assert tts is build_tts(s)
    assert isinstance(tts, FallbackTts) and tts.name == "hibari+flite"
    assert build_tts(SpeechSettings(tts_fallback=""), "espeak").name == "espeak"


class BrokenTts(HibariTts):
    name = "broken"

    async def warm(self) -> None:
        raise TtsError("no voice")

    async def synthesize(self, text: str, cancel: asyncio.Event | None = None):  # type: ignore[override]
        raise TtsError("no voice")
        yield  # pragma: no cover


async def test_fallback_tts_speaks_when_the_primary_cannot() -> None:
    tts = FallbackTts(BrokenTts(), EspeakTts())
    r = await synthesize_all(tts, "Hello.")
    assert r.sample_rate == 22050 and len(r.pcm) > 1000  # per-reply fallback
    await tts.warm()
    assert not tts.primary_ok and tts.sample_rate == 22050  # skipped from now on


async def test_flite_one_process_per_sentence_and_cancel() -> None:
    tts = FliteTts()
    await tts.warm()
    texts = [c.text async for c in tts.synthesize("<speak>Hello there.</speak> Your car is ready.") if c.text]
    assert texts == ["Hello there.", "Your car is ready."]
    cancel = asyncio.Event()
    n = 0
    async for chunk in tts.synthesize(LONG_REPLY, cancel):
        assert chunk.sample_rate == 16000
        n += 1
        cancel.set()
    assert n == 1
    proc = tts.last_process
    assert proc is not None and proc.returncode is not None
