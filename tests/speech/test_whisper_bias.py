"""Biasing reaches Whisper: real decodes of noisy phone clips that the bias fixes (tiny.en).

The clips (hibari, 10 dB white noise with a fixed seed, 8 kHz μ-law) were found with
bench/hearing.py's audio: without the bias tiny.en loses the city, with it the city is right.
"""

from __future__ import annotations

import numpy as np
import pytest

from convener.audio import float_to_pcm16, resample_pcm16
from convener.speech.asr import EndOfTurn
from convener.speech.bias import AgentTerms, build_bias
from convener.speech.channel import add_noise, frames, pad_silence, through_phone
from convener.speech.settings import WhisperSettings
from convener.speech.whisper_asr import WhisperAsr, prompt_text

AGENTS = [AgentTerms("Flights", ["flight", "book a flight"]), AgentTerms("Hotels", ["hotel", "place to stay"])]


def noisy_clip(engine: object, text: str, seed: int) -> bytes:
    audio = float_to_pcm16(np.asarray(engine(text, seed=0), dtype=np.float32))  # type: ignore[operator]
    pcm = pad_silence(resample_pcm16(audio, 24000, 8000), 8000, 0.3, 0.3)
    return through_phone(add_noise(pcm, 10.0, seed=seed), 8000)


@pytest.fixture
def greedy(whisper_model: object) -> WhisperAsr:
    """tiny.en decoding greedily even on a noisy line: the bias's own effect, without the
    wider beam that noisy lines get by default (which alone hears these cities back)."""
    return WhisperAsr(WhisperSettings(model="tiny.en", noisy_snr_db=0))


@pytest.mark.parametrize(("text", "city", "seed"), [
    ("Book a flight to Denver.", "Denver", 0),
    ("I need a hotel in Phoenix for tonight.", "Phoenix", 2),
])
async def test_the_bias_fixes_a_misheard_city(greedy: WhisperAsr, hibari_engine: object,
                                              text: str, city: str, seed: int) -> None:
    clip = noisy_clip(hibari_engine, text, seed)
    plain = await greedy.transcribe_pcm(clip, 8000)
    biased = await greedy.transcribe_pcm(clip, 8000, bias=build_bias(AGENTS, vocabulary=[city]))
    assert city not in plain.text, plain.text
    assert city in biased.text, biased.text


async def test_the_wider_beam_on_a_noisy_line_reaches_whisper(whisper: WhisperAsr, greedy: WhisperAsr,
                                                              hibari_engine: object) -> None:
    """The same 10 dB clip, unbiased: greedy mishears the city, the default (beam 5 on a line
    this noisy) hears it."""
    clip = noisy_clip(hibari_engine, "Book a flight to Denver.", 0)
    assert "Denver" not in (await greedy.transcribe_pcm(clip, 8000)).text
    assert "Denver" in (await whisper.transcribe_pcm(clip, 8000)).text


async def test_a_session_uses_the_bias_it_was_given(greedy: WhisperAsr, hibari_engine: object) -> None:
    clip = noisy_clip(hibari_engine, "Book a flight to Denver.", 0)
    session = await greedy.open_session(8000, bias=build_bias(AGENTS, vocabulary=["Denver"]))
    texts = []
    it = session.events()
    for bias in (session.bias, None):
        session.set_bias(bias)
        for f in frames(clip, 8000):
            await session.feed(f)
        await session.end_of_turn()
        async for ev in it:
            if isinstance(ev, EndOfTurn):
                texts.append(ev.text)
                break
    await session.close()
    assert "Denver" in texts[0] and "Denver" not in texts[1], texts


def test_prompt_text_puts_the_fixed_prompt_first() -> None:
    bias = build_bias(AGENTS, question="Where to?", vocabulary=["Denver"])
    s = WhisperSettings(initial_prompt="Travel desk.")
    assert prompt_text(s, bias) == "Travel desk. Denver, Flights, Hotels, flight, hotel, book a flight, " \
                                   "place to stay. Where to?"
    assert prompt_text(WhisperSettings(), None) == ""


def test_the_standard_path_hands_the_prompt_to_faster_whisper(whisper_model: object) -> None:
    """window_s = 30: faster-whisper's transcribe() gets the prompt as initial_prompt."""
    from convener.speech import whisper_asr

    seen: dict[str, object] = {}
    real = whisper_model.transcribe  # type: ignore[attr-defined]

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(whisper_model, name)

        def transcribe(self, audio: object, **kw: object) -> object:
            seen.update(kw)
            return real(audio, **kw)

    final = whisper_asr.decode(Spy(), np.zeros(16000, np.float32), WhisperSettings(model="tiny.en", window_s=30),
                               "Denver, Flights.")
    assert seen["initial_prompt"] == "Denver, Flights." and final.text == ""
