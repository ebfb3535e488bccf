from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convener.media.rtp import RtpError, RtpPacket, build_rtp, build_rtp_fast, parse_rtp


def test_round_trip_plain() -> None:
    data = build_rtp(0, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert len(data) == 12 + 160
    pkt = parse_rtp(data)
    assert pkt == RtpPacket(0, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"\xff" * 160, marker=True)


def test_round_trip_csrc_extension_padding() -> None:
    data = build_rtp(118, 7, 1234, 42, b"abcd", csrcs=(1, 2, 3),
                     extension=(0xBEDE, b"\x01\x02\x03\x04"), padding=3)
    pkt = parse_rtp(data)
    assert pkt.payload_type == 118 and pkt.sequence == 7 and pkt.timestamp == 1234
    assert pkt.ssrc == 42 and pkt.payload == b"abcd" and not pkt.marker
    assert pkt.csrcs == (1, 2, 3)
    assert pkt.extension == (0xBEDE, b"\x01\x02\x03\x04")
    assert pkt.padding == 3


def test_fast_builder_matches_checked_builder() -> None:
    for marker in (False, True):
        assert build_rtp_fast(0, 70000, 2**33 + 5, 9, b"xy", marker) == build_rtp(
            0, 70000 & 0xFFFF, (2**33 + 5) & 0xFFFFFFFF, 9, b"xy", marker=marker
        )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "too short"),
        (b"\x80" * 11, "too short"),
        (bytes([0x40, 0]) + bytes(10), "version"),  # version 1
        (bytes([0x8F, 0]) + bytes(10), "CSRC"),  # 15 CSRCs announced, none present
        (bytes([0x90, 0]) + bytes(10), "extension"),  # extension bit, no extension
        (bytes([0x90, 0]) + bytes(10) + struct.pack("!HH", 1, 5), "extension"),
        (bytes([0xA0, 0]) + bytes(10) + b"\x00", "padding"),  # padding count 0
        (bytes([0xA0, 0]) + bytes(10) + b"\x09", "padding"),  # more padding than packet
        (bytes([0x80, 200]) + bytes(10), "RTCP"),  # sender report
    ],
)
def test_garbage_raises_rtp_error(data: bytes, why: str) -> None:
    with pytest.raises(RtpError, match=why):
        parse_rtp(data)


def test_build_rejects_bad_fields() -> None:
    with pytest.raises(RtpError):
        build_rtp(128, 0, 0, 0, b"")
    with pytest.raises(RtpError):
        build_rtp(0, 0, 0, 0, b"", csrcs=tuple(range(16)))
    with pytest.raises(RtpError):
        build_rtp(0, 0, 0, 0, b"", extension=(1, b"abc"))


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_arbitrary_bytes_only_rtp_error(data: bytes) -> None:
    try:
        pkt = parse_rtp(data)
    except RtpError:
        return
    assert 0 <= pkt.payload_type <= 127 and len(pkt.payload) <= len(data) - 12


@settings(max_examples=400, deadline=None)
@given(
    st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF), st.binary(max_size=64), st.booleans(),
    st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF),
                                   st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4]))),
    st.integers(0, 255), st.data(),
)
def test_fuzz_round_trip_and_mutations(pt, seq, ts, ssrc, payload, marker, csrcs, ext, pad,
                                       data) -> None:
    if 72 <= pt <= 76 and marker:  # these header bytes are RTCP packet types 200-204
        marker = False
    raw = build_rtp(pt, seq, ts, ssrc, payload, marker=marker, csrcs=tuple(csrcs),
                    extension=ext, padding=pad)
    pkt = parse_rtp(raw)
    assert (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc) == (pt, seq, ts, ssrc)
    assert pkt.payload == payload and pkt.marker == marker and pkt.csrcs == tuple(csrcs)
    assert pkt.extension == ext and pkt.padding == pad
    # Flip bytes / truncate: still only RtpError.
    cut = data.draw(st.integers(0, len(raw)))
    mutated = bytearray(raw[:cut])
    if mutated:
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] ^= data.draw(st.integers(1, 255))
    try:
        parse_rtp(bytes(mutated))
    except RtpError:
        pass
