from __future__ import annotations

import numpy as np
import pytest

from convener.audio import pcm16_to_ulaw
from convener.media.formats import leg_format
from convener.media.settings import MediaSettings
from convener.settings import ConfigError, load_section


def test_defaults_load_and_validate() -> None:
    s = load_section(MediaSettings, {}, "media")
    assert s.turn_preroll_ms == 300 and s.turn_hangover_ms == 500 and s.pacer_warmup_ms == 40


def test_values_are_converted_and_checked() -> None:
    s = load_section(MediaSettings, {"format": "slin16", "jitter_depth_packets": "2"}, "media")
    assert s.format == "slin16" and s.jitter_depth_packets == 2


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"jitter_depht_packets": 3}, "media.jitter_depht_packets: unknown key"),
        ({"rtp_port_min": 30000, "rtp_port_max": 29999}, "media.rtp_port_min"),
        ({"rtp_slin16_payload_type": 0}, "media.rtp_slin16_payload_type"),
        ({"vad_threshold": 1.5}, "media.vad_threshold"),
        ({"vad_hysteresis": 0.6}, "media.vad_hysteresis"),
        ({"turn_hangover_ms": 0}, "media.turn_hangover_ms"),
        ({"inbound_max_pps": 0}, "media.inbound_max_pps"),
        ({"jitter_conceal": "noise"}, "media.jitter_conceal"),
        ({"format": "alaw"}, "media.format"),
    ],
)
def test_bad_settings_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_section(MediaSettings, data, "media")


def test_leg_formats() -> None:
    pcm = np.array([1, -2, 300, -32768, 32767] * 64, dtype="<i2").tobytes()
    rtp16 = leg_format("slin16", "rtp")
    ws16 = leg_format("slin16", "websocket")
    assert rtp16.encode(pcm) == np.frombuffer(pcm, "<i2").astype(">i2").tobytes()
    assert rtp16.decode(rtp16.encode(pcm)) == pcm
    assert ws16.encode(pcm) == pcm and ws16.decode(pcm) == pcm
    assert rtp16.pcm_frame_bytes == 640 and rtp16.wire_frame_bytes == 640
    ulaw = leg_format("ulaw", "rtp")
    assert ulaw.payload_type == 0 and ulaw.wire_frame_bytes == 160 and ulaw.pcm_frame_bytes == 320
    assert ulaw.encode(pcm) == pcm16_to_ulaw(pcm)
    assert ulaw.decode(b"\xff" * 160) == bytes(320)  # μ-law 0xFF is zero
    assert rtp16.decode(b"\x00\x01\x02") == b"\x01\x00"  # odd trailing byte dropped
    with pytest.raises(ValueError):
        leg_format("opus", "rtp")
