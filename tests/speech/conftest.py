"""Fixtures for the speech tests: real audio made once per session, models loaded once."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from convener.audio import float_to_pcm16
from convener.speech.channel import pad_silence, through_phone
from convener.speech.hibari_tts import load_engine
from convener.speech.settings import HibariSettings, WhisperSettings
from convener.speech.whisper_asr import WhisperAsr, load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → "fakes" importable

SENTENCE = "Book a flight to Denver."
TINY = WhisperSettings(model="tiny.en")


@pytest.fixture(scope="session")
def whisper_model() -> object:
    """The bundled tiny.en model (the light one keeps these tests fast), loaded once."""
    return load_model(TINY)


@pytest.fixture
def whisper(whisper_model: object) -> WhisperAsr:
    return WhisperAsr(TINY)


@pytest.fixture(scope="session")
def hibari_engine() -> object:
    return load_engine(HibariSettings())


@pytest.fixture(scope="session")
def phone_speech(hibari_engine: object) -> bytes:
    """'Book a flight to Denver.' spoken by hibari, through 8 kHz μ-law, with silence around."""
    audio = hibari_engine(SENTENCE, seed=0)  # type: ignore[operator]
    pcm = float_to_pcm16(np.asarray(audio, dtype=np.float32))
    return pad_silence(through_phone(pcm, 24000), 8000, 0.3, 0.6)
