"""bench/hearing.py's sandbox path: play clips into a real call, keep what convener's turns held.

The whole product runs in this process (``Stack``: convener on the sandbox Asterisk, example
agents) with one change: its recogniser is a recorder that keeps each turn's audio (as
CallerVoice hands it over when its turn detector ends the turn) and answers with no words, so
no reply is spoken and the next clip can follow at once. Greeting, filler and speculative
decoding are off. A test caller (its own ARI application) dials in and speaks each clip in
real time; the turns recorded while a clip plays (and until 0.6 s after the last turn that
ended after the clip) are that clip's audio.

Must run under the sandbox lock (``flock /tmp/convener-asterisk.lock ...``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from typing import Any

from convener.audio import resample_pcm16
from convener.speech.asr import FinalTranscript

QUIET_AFTER_S = 0.6  # no new turn this long after a clip's turn ended: the clip is over
MAX_WAIT_S = 4.0


class TurnRecorder:
    """Stands in for the recogniser: records the turn audio it is given."""

    name = "recorder"

    def __init__(self) -> None:
        self.turns: list[tuple[float, bytes]] = []  # (monotonic time, 8 kHz PCM16)
        self.changed = asyncio.Event()

    async def warm(self) -> None:
        return None

    async def transcribe_pcm(self, pcm: bytes, sample_rate: int, bias: Any = None) -> FinalTranscript:
        self.turns.append((time.monotonic(), resample_pcm16(pcm, sample_rate, 8000)))
        self.changed.set()
        return FinalTranscript("", 0.0)

    async def open_session(self, sample_rate: int = 8000, bias: Any = None) -> Any:
        raise NotImplementedError("the recorder only takes whole turns")


async def record_turns(clips: list[bytes]) -> list[bytes]:
    """Each clip (8 kHz PCM16) spoken into a sandbox call → the audio convener's turns held."""
    from convener.app import conversation as conversation_module
    from convener.app.conversation import Speech
    from convener.config import load_config
    from convener.sandbox.runtime import Sandbox
    from convener.tools.stack import Stack
    from convener.tools.testcall import TestCaller

    recorder = TurnRecorder()

    class RecordingSpeech(Speech):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.asr = recorder  # type: ignore[assignment]

    logging.basicConfig(level=logging.WARNING)
    creds = await asyncio.to_thread(Sandbox().up)
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    config.speech.asr = "whisper"
    config.speech.whisper.model = "tiny.en"  # loaded by Speech, unused (the recorder answers)
    config.voice.greeting = ""
    config.voice.filler = ""
    config.voice.speculate_after_ms = 0
    conversation_module.Speech = RecordingSpeech  # type: ignore[misc]  # startup builds it from there
    out: list[bytes] = []
    try:
        async with Stack(config, progress=lambda m: print(f"  {m}", file=sys.stderr)):
            s, c = config.ari, config.calls
            app = f"{s.app}-caller-{uuid.uuid4().hex[:8]}"
            async with TestCaller(s.url, s.user, s.password, app=app) as caller:
                room = f"hearing{uuid.uuid4().hex[:6]}"
                leg = await caller.place(c.dialplan_extension, c.dialplan_context, room=room)
                try:
                    await leg.wait_answered()
                    media = await leg.open_media(config.media)
                    await leg.wait_in_bridge(timeout=10)
                    await asyncio.sleep(1.0)  # the snoop and external media settle
                    for i, pcm in enumerate(clips):
                        start = time.monotonic()
                        end = await media.say(pcm, 8000)
                        await _wait_turns(recorder, end)
                        got = [p for t, p in recorder.turns if t >= start]
                        recorder.turns = [(t, p) for t, p in recorder.turns if t < start]
                        out.append(b"".join(got))
                        if (i + 1) % 12 == 0:
                            print(f"  {i + 1}/{len(clips)} clips", file=sys.stderr, flush=True)
                finally:
                    await leg.hangup()
    finally:
        conversation_module.Speech = Speech  # type: ignore[misc]
    missed = sum(1 for p in out if not p)
    if missed:
        print(f"  {missed} clip(s) gave no turn", file=sys.stderr)
    return out


async def _wait_turns(recorder: TurnRecorder, end: float) -> None:
    deadline = end + MAX_WAIT_S
    while time.monotonic() < deadline:
        last = recorder.turns[-1][0] if recorder.turns else 0.0
        if last >= end and time.monotonic() - last >= QUIET_AFTER_S:
            return  # a turn ended after the clip, and nothing since
        if last < end and time.monotonic() - end >= QUIET_AFTER_S + 1.5:
            return  # nothing at all: give up on this clip
        recorder.changed.clear()
        try:
            await asyncio.wait_for(recorder.changed.wait(), 0.1)
        except TimeoutError:
            pass
