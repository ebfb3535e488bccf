"""Helpers of the media tests: a trivial energy VAD, synthetic audio, fd counting."""

from __future__ import annotations

import os

import numpy as np

from convener.audio import AudioFrame


class EnergyVad:
    """Test-only VAD: probability 1.0 when the frame's RMS is above ``threshold``."""

    def __init__(self, threshold: float = 500.0) -> None:
        self.threshold = threshold
        self.calls = 0

    def __call__(self, pcm16: bytes, sample_rate: int) -> float:
        self.calls += 1
        x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
        if not len(x):
            return 0.0
        return 1.0 if float(np.sqrt(np.mean(x * x))) > self.threshold else 0.0


def tone(ms: int, rate: int = 8000, freq: float = 440.0, amp: int = 8000) -> bytes:
    n = rate * ms // 1000
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def silence(ms: int, rate: int = 8000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def frames_of(pcm: bytes, rate: int = 8000, start: float = 100.0, ms: int = 20) -> list[AudioFrame]:
    size = rate * ms // 1000 * 2
    return [
        AudioFrame(pcm[i:i + size], rate, start + i / 2 / rate)
        for i in range(0, len(pcm) - size + 1, size)
    ]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
