"""RTP packets (RFC 3550 §5.1): parse and build, no I/O.

Header layout (network byte order)::

     0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers (CC × 32)   |
    [ extension: 16-bit profile, 16-bit length in 32-bit words, data ]
    payload … [ padding, last byte = padding count (P set) ]

``parse_rtp`` never raises anything but ``RtpError`` on any input bytes (fuzz-tested). RTCP
sent to the RTP port (payload types 72-76 once the marker bit is folded in, i.e. packet types
200-204) is rejected as RTCP.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_LEN = 12
_HDR = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")


class RtpError(ValueError):
    """Bytes that are not a usable RTP packet. The message says why."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data) of the header extension
    padding: int = 0  # padding bytes that followed the payload


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raise ``RtpError`` for anything that is not valid RTP v2."""
    n = len(data)
    if n < HEADER_LEN:
        raise RtpError(f"too short for an RTP header: {n} bytes")
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data, 0)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected 2")
    if 200 <= b1 <= 204:
        raise RtpError(f"RTCP packet type {b1} on the RTP port")
    has_padding = bool(b0 & 0x20)
    has_ext = bool(b0 & 0x10)
    cc = b0 & 0x0F
    offset = HEADER_LEN + 4 * cc
    if offset > n:
        raise RtpError(f"{cc} CSRCs do not fit in {n} bytes")
    csrcs = struct.unpack_from(f"!{cc}I", data, HEADER_LEN) if cc else ()
    extension = None
    if has_ext:
        if offset + 4 > n:
            raise RtpError("header extension truncated")
        profile, words = _EXT.unpack_from(data, offset)
        start = offset + 4
        offset = start + 4 * words
        if offset > n:
            raise RtpError(f"header extension of {words} words does not fit in {n} bytes")
        extension = (profile, bytes(data[start:offset]))
    end = n
    pad = 0
    if has_padding:
        pad = data[-1]
        if pad == 0 or offset + pad > n:
            raise RtpError(f"bad padding count {pad}")
        end = n - pad
    return RtpPacket(
        payload_type=b1 & 0x7F,
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(b1 & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=pad,
    )


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Build one RTP v2 packet. Fields are checked; values out of range raise ``RtpError``."""
    if not 0 <= payload_type <= 127:
        raise RtpError(f"payload type {payload_type} out of range 0-127")
    if len(csrcs) > 15:
        raise RtpError("at most 15 CSRCs")
    if not 0 <= padding <= 255:
        raise RtpError("padding must be 0-255 bytes")
    b0 = (RTP_VERSION << 6) | (0x20 if padding else 0) | (0x10 if extension else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | payload_type
    parts = [
        _HDR.pack(b0, b1, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    ]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *(c & 0xFFFFFFFF for c in csrcs)))
    if extension is not None:
        profile, ext_data = extension
        if len(ext_data) % 4:
            raise RtpError("header extension data must be a multiple of 4 bytes")
        parts.append(_EXT.pack(profile & 0xFFFF, len(ext_data) // 4))
        parts.append(ext_data)
    parts.append(payload)
    if padding:
        parts.append(bytes(padding - 1) + bytes([padding]))
    return b"".join(parts)


def build_rtp_fast(payload_type: int, sequence: int, timestamp: int, ssrc: int,
                   payload: bytes, marker: bool = False) -> bytes:
    """The per-frame hot path: a plain 12-byte header + payload, no checks."""
    return _HDR.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                     timestamp & 0xFFFFFFFF, ssrc) + payload
