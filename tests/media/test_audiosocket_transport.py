"""The AudioSocket transport's protocol side, on loopback TCP (the Asterisk side is tested in
tests/asterisk/test_media.py and test_voice_bargein.py)."""

from __future__ import annotations

import asyncio
import struct
import uuid

import pytest

from convener.config import ConfigError
from convener.media.audiosocket_transport import KIND_AUDIO, KIND_HANGUP, KIND_UUID, AudioSocketTransport, message
from convener.media.settings import MediaSettings
from convener.media.transport import MediaTransport
from convener.settings import load_section


async def _connect(t: AudioSocketTransport):
    host, port = t.external_host.split(":")
    return await asyncio.open_connection(host, int(port))


async def _read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(3)
    return head[0], await reader.readexactly(struct.unpack(">H", head[1:])[0])


async def test_audio_in_and_out_after_the_right_uuid():
    t = AudioSocketTransport(MediaSettings())
    assert isinstance(t, MediaTransport) and t.sample_rate == 8000 and t.asterisk_format == "slin"
    await t.start()
    try:
        # A stranger (wrong UUID) is closed and counted; it does not take the leg.
        r0, w0 = await _connect(t)
        w0.write(message(KIND_UUID, uuid.uuid4().bytes))
        await w0.drain()
        assert await r0.read() == b""
        assert t.stats.dropped_foreign == 1
        reader, writer = await _connect(t)
        writer.write(message(KIND_UUID, uuid.UUID(t.uuid).bytes))
        frame = struct.pack("<160h", *range(160))
        for _ in range(3):
            writer.write(message(KIND_AUDIO, frame))
        await writer.drain()
        await t.wait_connected(2)
        got = []
        async for f in t.frames():
            got.append(f)
            if len(got) == 3:
                break
        assert [f.pcm for f in got] == [frame] * 3 and {f.sample_rate for f in got} == {8000}
        assert got[1].timestamp - got[0].timestamp == pytest.approx(0.02, abs=1e-6)  # end to end
        t.send(frame)
        assert await _read_message(reader) == (KIND_AUDIO, frame)
        assert t.stats.frames_out == 1
        writer.write(message(KIND_HANGUP))
        await writer.drain()
        await asyncio.wait_for(t.hung_up.wait(), 2)
    finally:
        await t.close()
        await t.close()  # idempotent
    t.send(frame)
    assert t.stats.dropped_out == 1


async def test_oversized_message_ends_the_leg():
    t = AudioSocketTransport(MediaSettings())
    await t.start()
    try:
        _reader, writer = await _connect(t)
        writer.write(message(KIND_UUID, uuid.UUID(t.uuid).bytes))
        writer.write(bytes([KIND_AUDIO]) + struct.pack(">H", 60000))
        await writer.drain()
        await t.wait_connected(2)
        frames = [f async for f in t.frames()]  # ends: the reader gave up on the bad length
        assert frames == []
    finally:
        await t.close()


def test_audiosocket_needs_ulaw_legs():
    assert load_section(MediaSettings, {"transport": "audiosocket"}).format == "ulaw"
    with pytest.raises(ConfigError, match="AudioSocket"):
        load_section(MediaSettings, {"transport": "audiosocket", "format": "slin16"})
