"""Known signals, WAV files and comparisons for the media tests against Asterisk."""

from __future__ import annotations

import datetime as dt
import wave
from pathlib import Path

import numpy as np

RATE = 8000


def probe_signal(seconds: float = 2.0, seed: int = 7) -> np.ndarray:
    """A continuous, broadband, deterministic signal (overlapping sweeps): easy to align,
    and any dropout inside it shows as silence. int16 at 8 kHz."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    x = np.zeros_like(t)
    for f0, f1 in ((300, 3000), (3200, 400), (800, 1900)):
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
        x += np.sin(phase + rng.uniform(0, 2 * np.pi))
    x *= 0.25 * 32767 / np.max(np.abs(x))
    fade = int(0.005 * RATE)
    x[:fade] *= np.linspace(0, 1, fade)
    x[-fade:] *= np.linspace(1, 0, fade)
    return x.astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy(), w.getframerate()


def best_alignment(received: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """(offset of reference inside received, normalised correlation at that offset)."""
    r = received.astype(np.float64)
    ref = reference.astype(np.float64)
    r = np.concatenate([r, np.zeros(len(ref))])  # the reference may run past the end
    n = 1 << int(np.ceil(np.log2(len(r) + len(ref))))
    corr = np.fft.irfft(np.fft.rfft(r, n) * np.conj(np.fft.rfft(ref, n)), n)[: len(r) - len(ref) + 1]
    k = int(np.argmax(corr))
    seg = r[k:k + len(ref)]
    denom = np.linalg.norm(seg) * np.linalg.norm(ref)
    return k, float(np.dot(seg, ref) / denom) if denom else 0.0


def longest_silence_ms(pcm: np.ndarray, threshold: int = 200, rate: int = RATE) -> float:
    """Longest run of samples with |x| below threshold."""
    quiet = np.abs(pcm.astype(np.int32)) < threshold
    best = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        best = max(best, run)
    return best * 1000.0 / rate


def active_span(pcm: np.ndarray, threshold: int = 300, window: int = 80) -> tuple[int, int] | None:
    """First and last sample of 10 ms windows whose peak exceeds threshold."""
    n = len(pcm) // window
    peaks = np.abs(pcm[: n * window].astype(np.int32)).reshape(n, window).max(axis=1)
    idx = np.nonzero(peaks > threshold)[0]
    if len(idx) == 0:
        return None
    return int(idx[0] * window), int((idx[-1] + 1) * window)


def asterisk_time(ts: str) -> float:
    """An ARI event timestamp (``2026-11-26T12:00:00.123+0000``) as epoch seconds."""
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def segment_match(received: np.ndarray, reference: np.ndarray, seg_ms: int = 250,
                  rate: int = RATE) -> float:
    """Share of ``seg_ms`` pieces of the reference found in ``received`` (each aligned on its own,
    normalised correlation >= 0.9). A whole-signal correlation drops to ~0.5 when one frame is
    repeated or skipped half-way (a jitter-buffer concealment); piecewise, that costs one piece."""
    n = rate * seg_ms // 1000
    pieces = [reference[i:i + n] for i in range(0, len(reference) - n + 1, n)]
    found = sum(1 for p in pieces if best_alignment(received, p)[1] >= 0.9)
    return found / len(pieces)
