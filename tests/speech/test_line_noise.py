"""A noisy line gets the wider beam; a clean one keeps the greedy decode (pure, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from convener.settings import ConfigError
from convener.speech.line_noise import line_snr_db
from convener.speech.settings import WhisperSettings
from convener.speech.whisper_asr import settings_for_line

RATE = 16000


def turn(snr_db: float | None, seed: int = 0) -> np.ndarray:
    """0.3 s quiet, 1.2 s of syllable-like bursts, 0.3 s quiet; white noise at ``snr_db``
    against the speech's RMS (None: no noise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(1.2 * RATE)) / RATE
    speech = 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
    x = np.concatenate([np.zeros(int(0.3 * RATE)), speech, np.zeros(int(0.3 * RATE))])
    if snr_db is not None:
        rms = np.sqrt(np.mean(speech ** 2))
        x = x + rng.normal(0, rms / 10 ** (snr_db / 20), len(x))
    return x.astype(np.float32)


def test_the_estimate_orders_lines_by_noise() -> None:
    clean, snr20, snr10, snr5 = (line_snr_db(turn(s), RATE) for s in (None, 20, 10, 5))
    assert clean > 60
    assert 16 < snr20 < 30
    assert 6 < snr10 < 16
    assert snr5 < snr10
    assert line_snr_db(np.random.default_rng(1).normal(0, 0.1, RATE).astype(np.float32), RATE) < 3
    assert line_snr_db(np.zeros(40, np.float32), RATE) == 0.0  # too short to tell: "noisy"


def test_noisy_lines_get_the_wider_beam_clean_lines_keep_theirs() -> None:
    s = WhisperSettings(beam_size=1, noisy_beam_size=5, noisy_snr_db=16)
    assert settings_for_line(turn(10), s).beam_size == 5
    assert settings_for_line(turn(None), s) is s
    assert settings_for_line(turn(25), s) is s
    off = WhisperSettings(beam_size=1, noisy_snr_db=0)
    assert settings_for_line(turn(5), off) is off
    assert s.beam_size == 1, "the configured settings are not changed"


@pytest.mark.parametrize(("field", "value"), [("noisy_beam_size", 0), ("noisy_snr_db", -1), ("noisy_snr_db", 90)])
def test_bad_noisy_settings_are_refused(field: str, value: float) -> None:
    s = WhisperSettings()
    setattr(s, field, value)
    with pytest.raises(ConfigError, match=field):
        s.validate()
