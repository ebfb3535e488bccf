"""Reconnect backoff, configuration loading, room arguments."""

from __future__ import annotations

import random

import pytest

from convener.app.rooms import parse_room
from convener.ari.backoff import Backoff
from convener.config import ConfigError, load_config


def test_backoff_first_retry_fast_growth_and_cap():
    b = Backoff(initial=0.5, cap=10.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(40)]
    assert delays[0] <= 0.5
    assert all(d <= 10.0 for d in delays)
    assert max(delays[:5]) <= 1.5  # the fast phase: a restarted Asterisk is found quickly
    assert max(delays) > 5.0  # a long outage backs off further
    b.reset()
    assert b.next_delay() <= 0.5


def test_backoff_jitter_differs_between_instances():
    a = [Backoff(rng=random.Random(i)).next_delay() for i in range(20)]
    assert len(set(a)) > 15 and min(a) >= 0.25


def test_defaults_load_and_match_the_dialplan():
    cfg = load_config(None, env={})
    assert cfg.ari.app == "convener"
    assert cfg.ari.events_url == "ws://127.0.0.1:8088/ari/events"
    assert cfg.ari.ping_interval <= 5


def test_file_and_env_overrides(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[ari]\nurl = "https://pbx.example:8089/ari"\napp = "front"\n[calls]\ndefault_room = "main"\n')
    cfg = load_config(f, env={"CONVENER_ARI_PASSWORD": "s3cret", "CONVENER__CALLS__DTMF_CONTINUE": "#"})
    assert cfg.ari.events_url == "wss://pbx.example:8089/ari/events"
    assert cfg.ari.password == "s3cret" and cfg.ari.app == "front"
    assert cfg.calls.default_room == "main" and cfg.calls.dtmf_continue == "#"
    assert "s3cret" not in str(cfg.ari.redacted())


@pytest.mark.parametrize(("text", "key"), [
    ('[ari]\nurll = "x"\n', "ari.urll"),
    ('[nope]\nx = 1\n', "nope"),
    ('[ari]\nping_interval = 30\n', "ari.ping_interval"),
    ('[ari]\nping_interval = "fast"\n', "ari.ping_interval"),
    ('[ari]\nurl = "ftp://x"\n', "ari.url"),
    ('[calls]\ndtmf_continue = "00"\n', "calls.dtmf_continue"),
    ('[media]\ntransport = "carrier-pigeon"\n', "media.transport"),
])
def test_bad_config_names_the_key(tmp_path, text, key):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(f, env={})


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml", env={})
    f = tmp_path / "c.toml"
    f.write_text("[ari\n")
    with pytest.raises(ConfigError):
        load_config(f, env={})


def test_room_from_stasis_args():
    assert parse_room((), "lobby") == "lobby"
    assert parse_room(("room=sales",), "lobby") == "sales"
    assert parse_room(("support",), "lobby") == "support"
    assert parse_room(("x=1", "room="), "lobby") == "lobby"


def test_ulaw_is_bit_exact_with_the_g711_reference():
    import numpy as np

    from convener.audio import pcm16_to_ulaw, ulaw_to_pcm16

    # Reference values from ITU-T G.711 (Sun g711.c): 0 -> 0xFF, -1 -> 0x7E, full scale.
    assert pcm16_to_ulaw(np.array([0, -1, 32767, -32768, 1000], dtype="<i2").tobytes()) == bytes(
        [0xFF, 0x7E, 0x80, 0x00, 0xCE])
    assert np.frombuffer(ulaw_to_pcm16(bytes([0xFF, 0x80, 0x00])), "<i2").tolist() == [0, 32124, -32124]
    try:
        import audioop  # Python <= 3.12
    except ImportError:
        return
    every = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert pcm16_to_ulaw(every) == audioop.lin2ulaw(every, 2)
    assert ulaw_to_pcm16(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_trim_silence_edges_keeps_the_voice_and_a_little_silence():
    import numpy as np

    from convener.audio import trim_silence_edges

    rate = 8000
    voice = (np.sin(np.arange(rate // 2) / 3) * 8000).astype("<i2")
    quiet = np.zeros(rate * 3 // 10, dtype="<i2")
    pcm = np.concatenate([quiet, voice, quiet, quiet]).tobytes()
    out = np.frombuffer(trim_silence_edges(pcm, rate, keep_lead_ms=20, keep_tail_ms=150), "<i2")
    assert len(out) == len(voice) + rate * 20 // 1000 + rate * 150 // 1000
    assert np.array_equal(out[160:160 + len(voice)], voice)
    assert trim_silence_edges(quiet.tobytes(), rate) == quiet.tobytes()  # nothing voiced: unchanged
