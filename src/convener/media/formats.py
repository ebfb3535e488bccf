"""Formats of a media leg (what Asterisk sends and expects back) and their codecs.

Everything above the transports works on PCM16 little-endian mono at the leg's sample rate.
A transport turns that into wire bytes with ``LegFormat.encode`` and back with ``decode``.

Wire facts (Asterisk 22):

- ``ulaw``: G.711 μ-law, 8 kHz, 160 bytes per 20 ms; RTP static payload type 0.
- ``slin``: 16-bit signed linear, 8 kHz, 320 bytes per 20 ms (AudioSocket's format for a
  ``ulaw`` leg: the AudioSocket protocol carries signed linear only, little-endian).
- ``slin16``: 16-bit signed linear, 16 kHz, 640 bytes per 20 ms. In **RTP** Asterisk sends it in
  network byte order (big-endian) with a dynamic payload type (118 in Asterisk's static map).
  On the **chan_websocket** media websocket the bytes are Asterisk's internal frame data written
  as-is (``webchan_write`` → ``ast_websocket_write`` with ``f->data.ptr``), i.e. host byte order,
  which is little-endian on x86-64/arm64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from convener.audio import pcm16_to_ulaw, ulaw_to_pcm16

FormatName = Literal["ulaw", "slin", "slin16"]
Wire = Literal["rtp", "websocket", "audiosocket"]


def _swap16(data: bytes) -> bytes:
    """Swap the bytes of every 16-bit sample (little-endian ↔ big-endian)."""
    if len(data) % 2:
        data = data[:-1]
    return np.frombuffer(data, dtype="<i2").byteswap().tobytes()


def _even(data: bytes) -> bytes:
    return data[:-1] if len(data) % 2 else data


@dataclass(frozen=True, slots=True)
class LegFormat:
    """One leg's wire format: codec, sample rate, frame size and byte order on the wire."""

    name: FormatName
    sample_rate: int
    payload_type: int
    wire: Wire
    ptime_ms: int = 20

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate * self.ptime_ms // 1000

    @property
    def pcm_frame_bytes(self) -> int:
        """Bytes of PCM16 in one frame (what ``send()`` takes)."""
        return self.samples_per_frame * 2

    @property
    def wire_frame_bytes(self) -> int:
        """Bytes of encoded payload in one frame on the wire (160 ulaw, 640 slin16)."""
        return self.samples_per_frame if self.name == "ulaw" else self.samples_per_frame * 2

    def samples_in(self, wire_payload: bytes) -> int:
        """Samples carried by an encoded payload."""
        return len(wire_payload) if self.name == "ulaw" else len(wire_payload) // 2

    def decode(self, wire_payload: bytes) -> bytes:
        """Wire payload → PCM16 little-endian."""
        if self.name == "ulaw":
            return ulaw_to_pcm16(wire_payload)
        if self.wire == "rtp":
            return _swap16(wire_payload)
        return _even(wire_payload)  # websocket, audiosocket: little-endian as is

    def encode(self, pcm: bytes) -> bytes:
        """PCM16 little-endian → wire payload."""
        if self.name == "ulaw":
            return pcm16_to_ulaw(_even(pcm))
        if self.wire == "rtp":
            return _swap16(pcm)
        return _even(pcm)


def leg_format(name: str, wire: Wire, slin16_payload_type: int = 118) -> LegFormat:
    """The ``LegFormat`` for an Asterisk format name on a transport."""
    if name == "ulaw":
        return LegFormat("ulaw", 8000, 0, wire)
    if name == "slin16":
        return LegFormat("slin16", 16000, slin16_payload_type, wire)
    if name == "slin":  # AudioSocket's 8 kHz signed linear
        return LegFormat("slin", 8000, -1, wire)
    raise ValueError(f"unsupported media format {name!r} (ulaw or slin16)")
