from __future__ import annotations

import time

import numpy as np
import pytest

from convener.audio import resample_pcm16
from convener.speech.channel import frames
from convener.speech.registry import build_vad
from convener.speech.settings import SpeechSettings
from convener.speech.vad import Endpointer, EnergyVad, SileroVad


def _speech_fraction(vad: object, pcm: bytes, rate: int) -> float:
    fr = frames(pcm, rate)
    return sum(vad.is_speech(f) for f in fr) / len(fr)  # type: ignore[attr-defined]


def _noise(seconds: float, rate: int, db: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    amp = 32768 * 10 ** (db / 20)
    return (rng.normal(0, amp, int(rate * seconds))).clip(-32768, 32767).astype("<i2").tobytes()


def test_silero_hears_real_speech_and_not_silence_or_noise(phone_speech: bytes) -> None:
    vad = SileroVad(8000)
    try:
        assert vad.window == 256
        voiced = phone_speech[int(0.35 * 16000) : int(1.5 * 16000)]  # inside the sentence
        assert _speech_fraction(vad, voiced, 8000) > 0.7
        vad.reset()
        assert _speech_fraction(vad, b"\x00\x00" * 8000, 8000) == 0.0
        vad.reset()
        assert _speech_fraction(vad, _noise(1.0, 8000, -30), 8000) < 0.1
    finally:
        vad.close()


def test_silero_at_16k_buffers_20ms_frames_into_32ms_windows(phone_speech: bytes) -> None:
    wide = resample_pcm16(phone_speech, 8000, 16000)
    vad = SileroVad(16000)
    try:
        assert vad.window == 512
        fr = frames(wide, 16000)
        probs = [vad.probability(f) for f in fr]
        assert max(probs) > 0.9 and probs[0] < 0.1
        t0 = time.perf_counter()
        for f in fr:
            vad.probability(f)
        per_frame = (time.perf_counter() - t0) / len(fr)
        assert per_frame < 0.002, f"{per_frame * 1e6:.0f} µs per frame"
    finally:
        vad.close()


def test_silero_instances_are_pooled() -> None:
    a = SileroVad(8000)
    model = a._model
    a.close()
    b = SileroVad(8000)
    assert b._model is model
    b.close()


def test_energy_vad_speech_vs_silence_and_steady_noise(phone_speech: bytes) -> None:
    vad = EnergyVad(8000)
    assert _speech_fraction(vad, b"\x00\x00" * 8000, 8000) == 0.0
    voiced = phone_speech[int(0.35 * 16000) : int(1.5 * 16000)]
    assert _speech_fraction(vad, voiced, 8000) > 0.5
    vad.reset()
    # After a second to learn a steady -35 dBFS noise floor, the noise is not speech.
    noise = _noise(2.0, 8000, -35)
    _speech_fraction(vad, noise[: len(noise) // 2], 8000)
    assert _speech_fraction(vad, noise[len(noise) // 2 :], 8000) < 0.1


def test_vad_rejects_other_rates() -> None:
    with pytest.raises(ValueError):
        EnergyVad(44100)


def test_registry_builds_configured_vad() -> None:
    s = SpeechSettings(vad="energy")
    assert isinstance(build_vad(s, 8000), EnergyVad)
    v = build_vad(SpeechSettings(vad="silero"), 16000)
    assert isinstance(v, SileroVad) and v.sample_rate == 16000
    v.close()
    from convener.speech.vad_batch import BatchedSileroVad

    v = build_vad(SpeechSettings(), 16000)  # the default: one model for every call
    assert isinstance(v, BatchedSileroVad) and v.sample_rate == 16000
    v.close()


def test_endpointer_start_and_hangover() -> None:
    ep = Endpointer(start_ms=60, hangover_ms=100)
    seq = [False, True, True, True, True, False, True, False, False, False, False, False]
    out = [ep.update(s) for s in seq]
    assert out.index("start") == 3
    assert out.index("end") == 11  # 5 silent frames (100 ms) after the last voiced one


def test_bad_vad_settings_are_refused_when_the_speech_settings_are_checked() -> None:
    from convener.settings import ConfigError

    s = SpeechSettings()
    s.vad_settings.batch_inline_streams = -1
    with pytest.raises(ConfigError, match="batch_inline_streams"):
        s.validate()
    s.vad_settings.batch_inline_streams = 8
    s.vad_settings.threshold = 1.5
    with pytest.raises(ConfigError, match=r"vad_settings\.threshold"):
        s.validate()
