"""Turn-taking through the real sandbox Asterisk: a hesitating caller is one turn, a finished
request ends by the completion decision (not the hang-over), and ``convener call --audio``
measures from the end of the voice."""

from __future__ import annotations

import asyncio
import json
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from convener.tools.callcheck import VoiceCaller, spoken_call
from convener.tools.stack import Stack

RATE = 8000


@pytest.fixture
async def stack(config, sandbox) -> AsyncIterator[Stack]:
    async with Stack(config) as s:
        yield s
    assert s.app is not None and s.app.errors == 0


@pytest.fixture(scope="module")
def voice_caller() -> VoiceCaller:
    from convener.config import load_config

    return VoiceCaller(load_config(None, env={}))


def _silence(ms: int) -> bytes:
    return b"\0\0" * (RATE * ms // 1000)


def _wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path


async def test_hesitating_caller_is_not_cut_off(stack: Stack, config, voice_caller, tmp_path: Path):
    first = await voice_caller.speak("I'd like to book a flight to")
    second = await voice_caller.speak("Denver, please.")
    wav = _wav(tmp_path / "hesitation.wav", first + _silence(900) + second)
    report = await spoken_call(config, [wav], voice=voice_caller)
    assert report.ok, report
    (turn,) = report.turns
    assert turn.heard_at is not None and turn.heard_at > turn.ended_at  # nothing before the voice ended
    assert stack.app is not None
    said = [text.lower() for _, text in stack.app.turns]
    assert len(said) == 1, said  # the whole request reached the agent as one turn
    assert "flight" in said[0] and "denver" in said[0], said


async def test_finished_request_ends_by_the_completion_decision(stack: Stack, config, voice_caller):
    report = await spoken_call(config, ["What is the weather in Seattle?"], voice=voice_caller)
    assert report.ok, report
    assert stack.app is not None
    ((timings, _),) = stack.app.turns
    assert "turn_paused" in timings.marks  # ended by the decision after the short stop


async def test_call_audio_measures_from_the_end_of_the_voice(stack: Stack, voice_caller, tmp_path: Path):
    voice = await voice_caller.speak("What is the weather in Denver?")
    wav = _wav(tmp_path / "trailing.wav", voice + _silence(600))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "call", "--audio", str(wav), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    (turn,) = json.loads(out)["turns"]
    assert turn["latency_from"] == "end_of_voice"
    assert turn["audio_ms"] - turn["voice_end_ms"] == pytest.approx(600, abs=80)
    # The reply starts during the file's trailing silence; measured from the end of the file it
    # would be missed or ~600 ms too short. From the voice it includes at least the stop, which
    # counts from where the voice's level fell: up to turn_energy_end_ms before the VAD's end
    # (a fresh-clone run read 195 ms against a bound of the whole 200 ms stop).
    assert turn["latency_ms"] >= config_stop_ms()


def config_stop_ms() -> int:
    from convener.media.settings import MediaSettings

    m = MediaSettings()
    return m.turn_stop_ms - m.turn_energy_end_ms


async def test_flux_eager_end_of_turn_sends_nothing_until_the_turn_is_final(config, sandbox, voice_caller,
                                                                            tmp_path: Path):
    """Deepgram Flux (the local protocol server) decides: an eager end during the caller's
    300 ms pause is resumed; only Flux's EndOfTurn sends the turn, whole, once."""
    from fakes.deepgram_server import FakeDeepgram

    fake = FakeDeepgram(api_key="flux-test-key", transcripts=["i'd like to book a flight to denver please"])
    fake.flux_eot_silence_s = 0.7  # longer than the caller's pause, shorter than our 2 s limit
    await fake.start()
    try:
        config.speech.asr = "deepgram-flux"
        config.speech.deepgram.api_key = "flux-test-key"
        config.speech.deepgram.base_url = fake.base_url
        first = await voice_caller.speak("I'd like to book a flight to")
        second = await voice_caller.speak("Denver, please.")
        wav = _wav(tmp_path / "flux.wav", first + _silence(300) + second)
        async with Stack(config) as stack:
            report = await spoken_call(config, [wav], voice=voice_caller)
            assert stack.app is not None
            said = [text for _, text in stack.app.turns]
        assert report.ok, report
        assert said == ["i'd like to book a flight to denver please"]  # one turn, the whole request
        sent = [m["event"] for c in fake.connections for m in c.sent if m.get("type") == "TurnInfo"]
        assert "EagerEndOfTurn" in sent and "TurnResumed" in sent
        assert sent.index("TurnResumed") < sent.index("EndOfTurn")
        assert all("ForceEndTurn" not in c.messages for c in fake.connections)  # Flux decided
    finally:
        from convener.speech.registry import asr_provider

        await asr_provider("deepgram-flux", config.speech).aclose()  # its HTTP session (cached)
        await fake.stop()
