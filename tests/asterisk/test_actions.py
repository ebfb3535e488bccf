"""Telephony actions against the real sandbox Asterisk (issue 12): a caller who asks for a
person is transferred to the sandbox operator (extension ``operator@convener-operators``, which
records what it hears and plays a 440 Hz tone), the operator hears the summary first, a busy or
absent operator leaves the caller with the agents, and the outcome is what ``convener call``
reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from ast_helpers import assert_clean_since, snapshot, wait_until

from convener.app.actions.settings import TransferSettings
from convener.settings import load_section
from convener.tools.callcheck import CallReport, VoiceCaller, _turn
from convener.tools.stack import Stack

OPS = "convener-operators"
TARGETS = {
    "operator": {"endpoint": f"Local/operator@{OPS}", "label": "an operator"},
    "busy": {"endpoint": f"Local/operator-busy@{OPS}", "label": "the busy operator"},
    "away": {"endpoint": f"Local/operator-away@{OPS}", "label": "the absent operator", "ring_timeout": 3},
    "desk": {"kind": "dialplan", "context": OPS, "extension": "desk"},
}


def transfer_settings(person_target: str = "operator") -> TransferSettings:
    return load_section(TransferSettings, {"person_target": person_target, "ring_timeout": 6,
                                           "targets": TARGETS})


@pytest.fixture(scope="module")
def voice_caller():
    from convener.config import load_config

    return VoiceCaller(load_config(None, env={}))


def _words(text: str) -> str:
    return text.lower().replace(".", " ").replace(",", " ").replace("?", " ")


def dominant_hz(pcm: bytes, rate: int = 8000) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) < rate // 4 or not np.any(x):
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def operator_recordings(sandbox, since: float) -> list[Path]:
    d = sandbox.paths.recordings_dir
    return sorted((p for p in d.glob("operator-*.wav")
                   if not p.name.endswith("-both.wav") and p.stat().st_mtime >= since - 1),
                  key=lambda p: p.stat().st_mtime)


class Call:
    """A test caller's call into extension 100 with its mouth and ear."""

    def __init__(self, caller, config, voice: VoiceCaller) -> None:
        self.caller, self.config, self.voice = caller, config, voice
        self.report = CallReport()
        self.leg = None

    async def __aenter__(self) -> Call:
        await self.voice.warm()
        self.leg = await self.caller.place("100")
        await self.leg.wait_answered()
        media = await self.leg.open_media(self.config.media)
        await self.leg.wait_in_bridge(timeout=10)
        first = await media.wait_voice_after(time.monotonic(), 6.0)
        if first is not None:  # the greeting
            await media.wait_quiet(1.0, 15.0, since=first)
        return self

    async def say(self, text: str, reply_timeout: float = 10.0) -> str:
        pcm = await self.voice.speak(text)
        await _turn(self.leg, self.voice, text, pcm, self.report, reply_timeout, 1.2, lambda m: None)
        return _words(self.report.turns[-1].heard)

    def heard_since(self, t: float) -> bytes:
        return self.leg.media.audio_between(t, time.monotonic())

    async def __aexit__(self, *exc) -> None:
        await self.leg.hangup()


@pytest.fixture
async def stack(config, sandbox) -> AsyncIterator[Stack]:
    config.transfer = transfer_settings()
    async with Stack(config) as s:
        yield s
    assert s.app is not None and s.app.errors == 0


async def test_spoken_request_for_a_person_reaches_the_operator_who_hears_the_summary(
        stack, config, caller, voice_caller, ari, sandbox):
    before = await snapshot(ari)
    t0 = time.time()
    async with Call(caller, config, voice_caller) as call:
        heard = await call.say("Book a flight to Denver")
        assert "denver" in heard or "from" in heard, heard
        heard = await call.say("I'd like to speak to a real person")
        assert "hold" in heard or "through" in heard or "operator" in heard, heard
        await wait_until(lambda: call.leg.outcome_var == "transferred:operator", 20)
        t = time.monotonic()
        await asyncio.sleep(1.5)
        hz = dominant_hz(call.heard_since(t))
        assert 420 <= hz <= 460, f"the caller does not hear the operator's tone ({hz:.0f} Hz)"
        app = stack.app
        (c,) = app.calls.values()
        assert not any(c.id in r.members for r in app.rooms.rooms.values()), "still in the room"
    assert call.leg.outcome() == {"kind": "transferred", "target": "operator"}
    await assert_clean_since(ari, stack.app, before, timeout=8)
    await asyncio.sleep(0.5)  # MixMonitor closes the file at hangup
    recs = operator_recordings(sandbox, t0)
    assert recs, "the operator recorded nothing"
    from convener.tools.callcheck import read_wav_8k

    operator_heard = _words(await voice_caller.hear(read_wav_8k(recs[-1])))
    assert "denver" in operator_heard and ("caller" in operator_heard or "transferred" in operator_heard), \
        operator_heard
    for p in recs:
        p.unlink(missing_ok=True)
        p.with_name(p.stem + "-both.wav").unlink(missing_ok=True)


@pytest.mark.parametrize("target,told", [("busy", "busy"), ("away", "answering")])
async def test_failed_transfer_leaves_the_caller_with_the_agents(
        config, sandbox, caller, voice_caller, ari, target, told):
    config.transfer = transfer_settings(person_target=target)
    async with Stack(config) as stack:
        before = await snapshot(ari)
        async with Call(caller, config, voice_caller) as call:
            # "Please hold..." then, once the dial fails, what went wrong (in one reply or two).
            await call.say("Can I talk to a human please")
            turn = call.report.turns[-1]
            assert turn.heard_at is not None, "the caller heard nothing"
            media = call.leg.media
            if told not in _words(turn.heard):
                await media.wait_voice_after(time.monotonic(), 15)
            await media.wait_quiet(1.5, 20, since=time.monotonic())
            told_text = _words(await voice_caller.hear(media.audio_between(turn.heard_at - 0.1, time.monotonic())))
            assert "hold" in told_text and told in told_text and "still with" in told_text, told_text
            assert call.leg.outcome_var == ""
            app = stack.app
            (c,) = app.calls.values()
            assert any(c.id in r.members for r in app.rooms.rooms.values()), "not back in the room"
            held = c.ledger.held("channel") + c.ledger.held("bridge")
            assert not [h for h in held if "-peer-" in h or "-xfer-" in h], held
            live = {ch.id for ch in await ari.channels()} | {b.id for b in await ari.bridges()}
            assert not [x for x in live if "-peer-" in x or "-xfer-" in x], live
            heard = await call.say("What is the weather in Seattle")
            assert "seattle" in heard, heard  # the agents answer again
        assert call.leg.outcome() == {"kind": "caller_hung_up", "target": None}
        await assert_clean_since(ari, stack.app, before, timeout=8)
    assert stack.app.errors == 0


async def test_dialplan_target_continues_the_caller(config, sandbox, caller, voice_caller, ari):
    config.transfer = transfer_settings(person_target="desk")
    async with Stack(config) as stack:
        async with Call(caller, config, voice_caller) as call:
            await call.say("Operator please")
            await wait_until(lambda: any("front desk" in d for _a, d in call.leg.dialplan), 15)
            await wait_until(lambda: not stack.app.calls, 5)
        assert call.leg.outcome() == {"kind": "transferred", "target": "desk"}
    assert stack.app.errors == 0
