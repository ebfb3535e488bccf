"""Audio primitives shared by media and speech: frames, G.711 μ-law, resampling.

All PCM here is signed 16-bit little-endian mono. Conversions use lookup tables and numpy, so
they are cheap enough for the per-frame path (20 ms frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """One frame of mono PCM16 audio.

    ``timestamp`` is ``time.monotonic()`` of the frame's first sample as seen by convener.
    """

    pcm: bytes
    sample_rate: int
    timestamp: float = 0.0

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate

    def as_array(self) -> np.ndarray:
        return np.frombuffer(self.pcm, dtype="<i2")


def frame_bytes(sample_rate: int, ms: int = FRAME_MS) -> int:
    """Bytes of PCM16 in one frame of ``ms`` milliseconds."""
    return sample_rate * ms // 1000 * 2


# --- G.711 μ-law (ITU-T G.711), table driven -------------------------------------------------

_BIAS = 0x84


def _ulaw_encode_scalar(sample: int) -> int:
    """G.711 μ-law of one 16-bit sample, as the ITU/Sun reference (g711.c) computes it."""
    pcm = sample >> 2  # 14-bit, arithmetic shift (floor) as in the reference
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (_BIAS >> 2)
    seg = 0
    for end in (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF):
        if pcm <= end:
            break
        seg += 1
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def _ulaw_decode_scalar(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    sample = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return -sample if sign else sample


_ULAW_DECODE = np.array([_ulaw_decode_scalar(b) for b in range(256)], dtype="<i2")
_ULAW_ENCODE = np.array([_ulaw_encode_scalar(s) for s in range(-32768, 32768)], dtype=np.uint8)


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode G.711 μ-law bytes to PCM16 little-endian."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode PCM16 little-endian to G.711 μ-law bytes."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768
    return _ULAW_ENCODE[samples].tobytes()


# --- Resampling ------------------------------------------------------------------------------


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int, quality: str = "HQ") -> bytes:
    """Resample a whole PCM16 buffer with soxr (for streams use ``soxr.ResampleStream``)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    import soxr

    x = np.frombuffer(pcm, dtype="<i2")
    y = soxr.resample(x, src_rate, dst_rate, quality=quality)
    return np.asarray(y, dtype="<i2").tobytes()


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def trim_silence_edges(pcm: bytes, sample_rate: int, keep_lead_ms: int = 20, keep_tail_ms: int = 150,
                       threshold: int = 300) -> bytes:
    """Cut leading and trailing near-silence (10 ms windows whose peak is below ``threshold``),
    keeping ``keep_lead_ms`` / ``keep_tail_ms`` of it. Synthesisers pad each sentence with
    hundreds of milliseconds of silence; at the start of a reply that is pure latency."""
    x = np.frombuffer(pcm, dtype="<i2")
    win = max(1, sample_rate // 100)
    n = len(x) // win
    if n == 0:
        return pcm
    peaks = np.abs(x[: n * win].astype(np.int32)).reshape(n, win).max(axis=1)
    voiced = np.nonzero(peaks >= threshold)[0]
    if len(voiced) == 0:
        return pcm
    start = max(0, int(voiced[0]) * win - sample_rate * keep_lead_ms // 1000)
    end = min(len(x), (int(voiced[-1]) + 1) * win + sample_rate * keep_tail_ms // 1000)
    return x[start:end].tobytes()
