"""The telephone channel, simulated: any PCM16 → 8 kHz → G.711 μ-law → PCM16, and noise.

Used by ``convener speech test``, the tests and the bench to hear TTS output the way a caller's
audio reaches us from Asterisk.
"""

from __future__ import annotations

import numpy as np

from convener.audio import frame_bytes, pcm16_to_ulaw, resample_pcm16, ulaw_to_pcm16

PHONE_RATE = 8000


def through_phone(pcm: bytes, sample_rate: int) -> bytes:
    """PCM16 at ``sample_rate`` → 8 kHz μ-law → PCM16 at 8 kHz (what the caller's leg carries)."""
    narrow = resample_pcm16(pcm, sample_rate, PHONE_RATE)
    return ulaw_to_pcm16(pcm16_to_ulaw(narrow))


def add_noise(pcm: bytes, snr_db: float, seed: int = 0) -> bytes:
    """White Gaussian noise at ``snr_db`` relative to the signal power of the voiced part."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    voiced = x[np.abs(x) > 0.02 * (np.abs(x).max() or 1)]
    p_sig = float(np.mean(voiced**2)) if voiced.size else 0.0
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, np.sqrt(p_sig / (10 ** (snr_db / 10))) if p_sig else 0.0, x.size)
    return np.clip(x + noise, -32768, 32767).astype("<i2").tobytes()


def pad_silence(pcm: bytes, sample_rate: int, before_s: float, after_s: float) -> bytes:
    def z(s: float) -> bytes:
        return b"\x00\x00" * int(sample_rate * s)

    return z(before_s) + pcm + z(after_s)


def frames(pcm: bytes, sample_rate: int, ms: int = 20) -> list[bytes]:
    """Cut PCM16 into ``ms`` frames; the last one is zero-padded."""
    n = frame_bytes(sample_rate, ms)
    out = [pcm[i : i + n] for i in range(0, len(pcm), n)]
    if out and len(out[-1]) < n:
        out[-1] = out[-1] + b"\x00" * (n - len(out[-1]))
    return out
