"""The media path against the real sandbox Asterisk: hear only the caller, speak into the
conference without gaps, release everything."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
from ast_helpers import assert_clean, process_sockets, start_app, stop_app, wait_until
from audio_helpers import (
    RATE,
    active_span,
    best_alignment,
    longest_silence_ms,
    probe_signal,
    read_wav,
    segment_match,
    write_wav,
)

from convener.app.application import ConvenerApp
from convener.app.listener import CallerListener
from convener.audio import AudioFrame
from convener.tools.testcall import TestCaller


async def _app_with_listener(config, sink: dict[str, list[AudioFrame]]) -> ConvenerApp:
    def factory(call):
        frames = sink.setdefault(call.id, [])
        return CallerListener(on_frame=frames.append)

    return await start_app(config, feature_factories=[factory])


def _udp_sockets() -> list[str]:
    """This process's open UDP sockets (RTP legs are the only UDP sockets it has)."""
    return process_sockets("udp")


async def test_caller_audio_reaches_convener_intact(config, sandbox, caller: TestCaller, ari):
    probe = probe_signal(1.5)
    write_wav(sandbox.paths.sounds_dir / "probe-in.wav", probe)
    heard: dict[str, list[AudioFrame]] = {}
    app = await _app_with_listener(config, heard)
    try:
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        await wait_until(lambda: leg.remote_id in heard and len(heard[leg.remote_id]) > 5, 5)
        await leg.play(sandbox.paths.sound_uri("probe-in"))
        await asyncio.sleep(2.2)
        frames = heard[leg.remote_id]
        assert all(f.sample_rate == RATE and len(f.pcm) == 320 for f in frames)
        ts = [f.timestamp for f in frames]
        assert ts == sorted(ts)
        received = np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2")
        match = segment_match(received, probe)
        assert match >= 0.8, f"caller audio does not match what was played ({match:.0%} of it found)"
        await leg.hangup()
        await assert_clean(ari, app)
    finally:
        await stop_app(app)


async def test_listener_hears_only_the_caller_not_the_room(config, sandbox, caller, ari):
    """Audio played into the room (what the caller hears) must not reach the recogniser."""
    probe = probe_signal(1.0, seed=3)
    write_wav(sandbox.paths.sounds_dir / "probe-room.wav", probe)
    heard: dict[str, list[AudioFrame]] = {}
    app = await _app_with_listener(config, heard)
    try:
        leg = await caller.place("100")
        bridge = await leg.wait_in_bridge()
        await wait_until(lambda: len(heard.get(leg.remote_id, [])) > 5, 5)
        start = len(heard[leg.remote_id])
        await ari.play_bridge(bridge, sandbox.paths.sound_uri("probe-room"))
        await asyncio.sleep(1.5)
        received = np.frombuffer(b"".join(f.pcm for f in heard[leg.remote_id][start:]), dtype="<i2")
        assert len(received) > RATE  # frames kept flowing
        assert np.abs(received.astype(np.int32)).max() < 300, "room audio leaked into the caller's snoop"
        await leg.hangup()
        await assert_clean(ari, app)
    finally:
        await stop_app(app)


@pytest.mark.parametrize("transport", ["rtp", "websocket", "audiosocket"])
async def test_convener_speech_reaches_caller_without_gaps(config, sandbox, caller, ari, transport):
    config.media.transport = transport
    config.media.format = "slin16" if transport == "websocket" else "ulaw"
    app = ConvenerApp(config)
    app._task = asyncio.create_task(app.run())  # type: ignore[attr-defined]
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    try:
        await _speech_reaches_caller(config, sandbox, caller, ari, app)
    finally:
        await stop_app(app)


async def _speech_reaches_caller(config, sandbox, caller, ari, app):
    probe = probe_signal(2.0, seed=11)
    leg = await caller.place("100")
    await leg.wait_in_bridge()
    room = app.rooms.rooms["lobby"]
    voice = await app.room_voice(room)
    name = f"heard-{leg.local_id}"
    await leg.record_heard(name)
    await asyncio.sleep(0.3)
    done = asyncio.Event()
    voice.on_reply_done.append(lambda report: done.set())
    voice.pacer.feed("r1", probe.tobytes(), RATE)
    voice.pacer.end_reply("r1")
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.3)
    await leg.stop_recording(name)
    await asyncio.sleep(0.2)
    rec, rate = read_wav(sandbox.paths.recordings_dir / f"{name}.wav")
    assert rate == RATE
    match = segment_match(rec, probe)
    assert match >= 0.8, f"what the caller heard does not match ({match:.0%} of it found)"
    offset, _ = best_alignment(rec, probe)
    played = rec[offset:offset + len(probe)]
    gap = longest_silence_ms(played[40:-40])
    assert gap < 60, f"a {gap:.0f} ms silence inside the played span"
    await leg.hangup()
    await assert_clean(ari, app)
    assert "lobby" not in app.rooms.rooms and not app.rooms.channel_ids


async def test_fifty_calls_release_every_media_resource(config, sandbox, caller, ari):
    heard: dict[str, list[AudioFrame]] = {}
    udp_before = _udp_sockets()
    app = await _app_with_listener(config, heard)
    try:
        for batch in range(5):
            legs = await asyncio.gather(*(caller.place("100") for _ in range(10)))
            await asyncio.gather(*(leg.wait_in_bridge(10) for leg in legs))
            if batch == 0:
                room = app.rooms.rooms["lobby"]
                await app.room_voice(room)
                assert len(_udp_sockets()) >= len(udp_before) + 11  # 10 listeners + the voice leg
            await wait_until(lambda legs=legs: all(len(heard.get(x.remote_id, [])) > 2 for x in legs), 5)
            await asyncio.gather(*(leg.hangup() for leg in legs))
            await assert_clean(ari, app, timeout=10)
        assert app.calls_total == 50
        from convener.media.rtp_transport import shared_port_allocator

        s = config.media
        assert not shared_port_allocator(s.rtp_port_min, s.rtp_port_max).in_use
    finally:
        await stop_app(app)
    await asyncio.sleep(0.2)
    assert _udp_sockets() == udp_before, "RTP sockets left open"
    assert app.ari._session is None  # convener's HTTP connections to ARI are closed


async def test_rtp_from_another_port_and_garbage_do_not_disturb(config, sandbox, caller, ari):
    import socket

    probe = probe_signal(1.5, seed=5)
    write_wav(sandbox.paths.sounds_dir / "probe-noise.wav", probe)
    heard: dict[str, list[AudioFrame]] = {}
    listeners: dict[str, CallerListener] = {}

    def factory(call):
        listeners[call.id] = CallerListener(on_frame=heard.setdefault(call.id, []).append)
        return listeners[call.id]

    app = ConvenerApp(config, feature_factories=[factory])
    task = asyncio.create_task(app.run())
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    try:
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        await wait_until(lambda: leg.remote_id in listeners and listeners[leg.remote_id].transport, 5)
        # Audio flows only once the snoop and the media channel are bridged: wait for it.
        await wait_until(lambda: len(heard.get(leg.remote_id, [])) > 5, 5)
        port = listeners[leg.remote_id].transport.local_port
        await leg.play(sandbox.paths.sound_uri("probe-noise"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            rtp_like = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4]) + b"\xff" * 160
            for i in range(3000):  # a flood of foreign RTP and garbage during the playback
                s.sendto(rtp_like if i % 2 else os.urandom(i % 200), ("127.0.0.1", port))
                if i % 200 == 0:
                    await asyncio.sleep(0.02)
        await asyncio.sleep(1.8)
        stats = listeners[leg.remote_id].transport.stats
        assert stats.dropped_foreign + stats.dropped_flood >= 2900
        received = np.frombuffer(b"".join(f.pcm for f in heard[leg.remote_id]), dtype="<i2")
        match = segment_match(received, probe)
        assert match >= 0.8, f"caller audio disturbed ({match:.0%} of it found, {stats})"
        await leg.hangup()
        await assert_clean(ari, app)
    finally:
        await app.stop()
        await asyncio.wait_for(task, 15)


def test_probe_has_no_internal_silence():
    p = probe_signal(2.0)
    rng = np.random.default_rng(1)
    assert segment_match(p, p) == 1.0
    assert segment_match((rng.standard_normal(len(p)) * 3000).astype(np.int16), p) == 0.0
    assert segment_match(probe_signal(2.0, seed=99), p) == 0.0
    assert longest_silence_ms(p[40:-40]) < 5
    assert active_span(p) is not None



@pytest.mark.parametrize(("transport", "fmt", "rate"), [
    ("rtp", "slin16", 16000), ("websocket", "slin16", 16000), ("websocket", "ulaw", 8000),
    ("audiosocket", "ulaw", 8000)])
async def test_other_transports_and_formats_carry_caller_audio(config, sandbox, caller, ari, transport, fmt, rate):
    """chan_websocket (Asterisk 22.6+) and 16 kHz signed linear, against the real Asterisk."""
    from convener.audio import resample_pcm16

    config.media.transport = transport
    config.media.format = fmt
    probe = probe_signal(1.5, seed=17)
    write_wav(sandbox.paths.sounds_dir / "probe-fmt.wav", probe)
    heard: dict[str, list[AudioFrame]] = {}
    app = await _app_with_listener(config, heard)
    try:
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        await wait_until(lambda: len(heard.get(leg.remote_id, [])) > 5, 5)
        await leg.play(sandbox.paths.sound_uri("probe-fmt"))
        await asyncio.sleep(2.2)
        frames = heard[leg.remote_id]
        assert {f.sample_rate for f in frames} == {rate}
        received = np.frombuffer(resample_pcm16(b"".join(f.pcm for f in frames), rate, RATE), dtype="<i2")
        match = segment_match(received, probe)
        assert match >= 0.8, f"{transport}/{fmt}: caller audio does not match ({match:.0%} of it found)"
        await leg.hangup()
        await assert_clean(ari, app)
    finally:
        await stop_app(app)
