"""Whisper-style log-mel features for Smart Turn v3 (numpy only), as the model was trained.

Vendored from pipecat 1.14.0 ``pipecat/audio/turn/smart_turn/_whisper_features.py``
(BSD-2-Clause, © Daily), itself the math of ``transformers.WhisperFeatureExtractor(chunk_length=8)``
with ``do_normalize=True``: 16 kHz audio, the LAST 8 s (zero-padded at the start when
shorter), zero-mean unit-variance waveform, 400-point periodic Hann, hop 160, 80 Slaney mel
bands, log10 clamped to max-8, then (x+4)/4 → float32 (80, 800).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RATE = 16000
SECONDS = 8
_N_FFT = 400
_HOP = 160
_N_MELS = 80


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.atleast_1d(np.asarray(f, dtype=np.float64))
    m = 3.0 * f / 200.0
    hi = f >= 1000.0
    m[hi] = 15.0 + np.log(f[hi] / 1000.0) * (27.0 / np.log(6.4))
    return m


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    f = 200.0 * m / 3.0
    hi = m >= 15.0
    f[hi] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m[hi] - 15.0))
    return f


def _filterbank() -> np.ndarray:
    bins = _N_FFT // 2 + 1
    mels = np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([RATE / 2.0]))[0], _N_MELS + 2)
    ff = _mel_to_hz(mels)
    fft_f = np.linspace(0, RATE // 2, bins)
    diff = np.diff(ff)
    slopes = ff[None, :] - fft_f[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    fb *= (2.0 / (ff[2:_N_MELS + 2] - ff[:_N_MELS]))[None, :]
    return fb


_WINDOW = np.hanning(_N_FFT + 1)[:-1]
_MEL = _filterbank()


def last_seconds(audio: np.ndarray, seconds: int = SECONDS) -> np.ndarray:
    """The last ``seconds`` of 16 kHz float audio, zero-padded at the start when shorter."""
    n = seconds * RATE
    if len(audio) >= n:
        return audio[-n:]
    return np.pad(audio, (n - len(audio), 0))


def log_mel(audio16k: np.ndarray) -> np.ndarray:
    """(80, 800) float32 features of exactly 8 s of 16 kHz float audio."""
    x = last_seconds(np.asarray(audio16k, dtype=np.float32))
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]
    power = (np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2).T
    spec = np.log10(np.maximum(1e-10, _MEL.T @ power))[:, :-1]
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)
