"""Room recordings through the sandbox: off by default (no file is made), and with
``ops.record_calls`` the room's bridge is recorded under the conversation's name, stored by
Asterisk when the room closes, and fetched back through ARI as a WAV of the call's length."""

from __future__ import annotations

import asyncio
import io
import wave

from convener.ops.console.recordings import PREFIX, recording_name
from convener.tools.stack import Stack


async def _one_call(config, caller, hold: float) -> str:
    async with Stack(config) as stack:
        assert stack.app is not None
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        for _ in range(100):
            conv = stack.app.rooms.rooms.get("lobby", None)
            if conv is not None and "conversation" in conv.state:
                break
            await asyncio.sleep(0.05)
        cid = stack.app.rooms.rooms["lobby"].state["conversation"].session.conversation_id
        await asyncio.sleep(hold)
        await leg.hangup()
        await leg.wait_ended()
        for _ in range(100):  # the room closes after its last caller leaves
            if "lobby" not in stack.app.rooms.rooms:
                break
            await asyncio.sleep(0.05)
        assert stack.app.errors == 0
    return cid


async def test_calls_are_not_recorded_by_default(config, caller, ari):
    assert config.ops.record_calls is False
    cid = await _one_call(config, caller, hold=1.0)
    await asyncio.sleep(1.0)  # as long as a made recording could take to be listed (it takes < 0.1 s)
    stored = await ari.stored_recordings()
    assert recording_name(cid) not in stored


async def test_record_calls_records_the_room_and_serves_it_back(config, caller, ari):
    config.ops.record_calls = True
    cid = await _one_call(config, caller, hold=3.0)
    name = recording_name(cid)
    try:
        for _ in range(50):
            if name in await ari.stored_recordings():
                break
            await asyncio.sleep(0.1)
        else:
            ours = [n for n in await ari.stored_recordings() if n.startswith(PREFIX)]
            raise AssertionError(f"{name} not stored; stored: {ours}")
        body, ctype = await ari.stored_recording_file(name)
        assert "wav" in ctype or body[:4] == b"RIFF", ctype
        with wave.open(io.BytesIO(body)) as w:
            seconds = w.getnframes() / w.getframerate()
        assert 3.0 <= seconds <= 8.0, seconds  # the greeting and the hold, until the room closed
    finally:
        await ari.delete_stored_recording(name)
