"""End to end through the real sandbox Asterisk, on the offline speech defaults: a caller
speaks, convener recognises, the floor routes to the right agent, and the caller hears the
agent's answer (recorded at the caller side and recognised back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from convener.tools.callcheck import VoiceCaller, spoken_call
from convener.tools.stack import Stack


@pytest.fixture
async def stack(config, sandbox) -> AsyncIterator[Stack]:
    from convener.speech.vad_batch import open_streams

    async with Stack(config) as s:
        yield s
    assert s.app is not None and s.app.errors == 0
    assert open_streams() == 0, "a call's VAD stream was left in the shared batch"


@pytest.fixture(scope="module")
def voice_caller():
    from convener.config import load_config

    return VoiceCaller(load_config(None, env={}))


def _words(text: str) -> str:
    return text.lower().replace(".", " ").replace(",", " ").replace("?", " ")


async def test_four_turn_flight_booking(stack: Stack, config, voice_caller, ari):
    report = await spoken_call(config, ["Book a flight to Denver", "From Boston", "Next Friday",
                                        "Yes, please book it"], voice=voice_caller)
    heard = [_words(t.heard) for t in report.turns]
    assert report.ok, report
    assert "greet" in _words(report.greeting) or "flight" in _words(report.greeting), report.greeting
    assert "denver" in heard[0] and ("from" in heard[0] or "where" in heard[0]), heard[0]
    assert "date" in heard[1] or "when" in heard[1], heard[1]
    assert "book" in heard[2] or "shall" in heard[2], heard[2]
    assert "confirmation" in heard[3] or "booked" in heard[3], heard[3]
    # convener recorded every stage of every turn
    assert stack.app is not None
    assert len(stack.app.turns) >= 4
    for timings, _text in stack.app.turns:
        for stage in ("speech_end", "end_of_turn", "asr_final", "first_audio_out"):
            assert stage in timings.marks, (stage, timings.marks)


async def test_hotel_and_weather_reach_their_agents(stack: Stack, config, voice_caller):
    report = await spoken_call(config, ["I need a hotel in Chicago", "Let me talk to the weather agent",
                                        "What is the weather in Seattle"], voice=voice_caller)
    heard = [_words(t.heard) for t in report.turns]
    assert report.ok, report
    assert "hotel" in heard[0] or "chicago" in heard[0], heard[0]
    assert "weather" in heard[1], heard[1]
    assert "seattle" in heard[2] and ("degrees" in heard[2] or "rain" in heard[2] or "sunny" in heard[2]
                                      or "cloud" in heard[2]), heard[2]


async def test_nothing_fits_the_caller_is_told(stack: Stack, config, voice_caller):
    report = await spoken_call(config, ["Please order me a pizza with mushrooms"], voice=voice_caller)
    assert report.ok, report
    heard = _words(report.turns[0].heard)
    assert heard.strip(), "silence instead of an answer"
    assert "sorry" in heard or "can't" in heard or "cannot" in heard or "help" in heard, heard


async def test_convener_call_json_command(stack: Stack):
    """What users run against a deployment: `convener call --say ... --json` in its own process."""
    import asyncio
    import json
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "call", "--say", "What is the weather in Denver", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    (turn,) = report["turns"]
    assert turn["said"] == "What is the weather in Denver"
    assert "denver" in _words(turn["heard"]), turn
    assert 0 < turn["latency_ms"] < 5000
    assert report["outcome"] == {"kind": "caller_hung_up", "target": None}


async def test_ofp_endpoint_serves_the_live_conversation(stack: Stack, config, caller):
    """External agents reach convener's OFP endpoint: getManifests is answered with our
    convener manifest, and a call's conversation is registered while the call lasts."""
    import aiohttp

    from convener.app.ofp_endpoint import OfpEndpoint

    assert stack.app is not None
    endpoint = await OfpEndpoint.start(config.ofp, stack.app.ofp_sessions, port=0)
    try:
        leg = await caller.place("100")
        await leg.wait_in_bridge()
        for _ in range(100):
            if len(stack.app.ofp_sessions):
                break
            await asyncio.sleep(0.05)
        assert len(stack.app.ofp_sessions) == 1
        conv = stack.app.rooms.rooms["lobby"].state["conversation"]
        url = f"http://127.0.0.1:{endpoint.port}/ofp"
        envelope = {"openFloor": {"schema": {"version": "1.1.0"},
                                  "conversation": {"id": conv.session.conversation_id},
                                  "sender": {"speakerUri": "tag:agent.example,2026:x",
                                             "serviceUrl": "https://agent.example/ofp"},
                                  "events": [{"eventType": "getManifests"}]}}
        async with aiohttp.ClientSession() as http, http.post(url, json=envelope) as r:
            body = await r.json()
        assert r.status == 200
        (event,) = body["openFloor"]["events"]
        assert event["eventType"] == "publishManifests"
        manifest = event["parameters"]["servicingManifests"][0]
        assert manifest["identification"]["openFloorRoles"] == {"convener": True}
        assert manifest["identification"]["speakerUri"] == conv.session.me.speaker_uri
        await leg.hangup()
        for _ in range(100):
            if not len(stack.app.ofp_sessions):
                break
            await asyncio.sleep(0.05)
        assert len(stack.app.ofp_sessions) == 0
    finally:
        await endpoint.stop()
