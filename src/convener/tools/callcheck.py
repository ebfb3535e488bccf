"""A spoken test call: say things into the dialplan, hear and transcribe the answers.

For each turn the caller speaks one item (text through the configured TTS, or a WAV file as it
is) in real time, waits for the reply, records what it hears until the reply is over, and
recognises it with the configured ASR. ``latency_ms`` is measured on one clock from the end
of the caller's VOICE to the first frame of reply audio heard at the caller
(``latency_from = "end_of_voice"``). For a WAV file the end of the voice is found with the
configured VAD (``voice_end_ms`` into the file): a recording with 500 ms of trailing silence
would otherwise report 500 ms less than the caller waited. TTS turns are trimmed, so their
voice ends with the audio.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convener.audio import resample_pcm16, trim_silence_edges
from convener.config import Config
from convener.tools.testcall import CallerLeg, TestCaller

RATE = 8000


@dataclass
class TurnResult:
    said: str
    heard: str = ""
    latency_ms: float | None = None  # end of the caller's voice → first reply audio heard
    latency_from: str = "end_of_voice"
    voice_end_ms: float = 0.0  # where the voice ends in what was played (VAD)
    audio_ms: float = 0.0  # length of what was played (voice + trailing silence)
    reply_ms: float = 0.0  # how long the reply lasted at the caller
    ended_at: float = 0.0  # monotonic: the end of the caller's voice left
    heard_at: float | None = None  # monotonic: first frame of the reply arrived


@dataclass
class CallReport:
    ok: bool = False
    greeting: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    error: str = ""
    # How the call ended for the caller: {"kind": transferred | hung_up_by_convener | continued
    # | caller_hung_up, "target": the transfer target's name or None}.
    outcome: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def voice_end_ms(pcm: bytes, vad: Any, rate: int = RATE, frame_ms: int = 20) -> float:
    """Milliseconds into ``pcm`` where the last voiced frame ends (0.0 when nothing is voiced).

    ``vad`` is a per-stream VAD (``probability(pcm)``, ``threshold``) at ``rate``; it is fed
    every frame in order, as a live call would feed it."""
    step = rate * frame_ms // 1000 * 2
    end = 0.0
    for i in range(0, len(pcm) - step + 1, step):
        if vad.probability(pcm[i:i + step]) >= vad.threshold:
            end = (i + step) / 2 / rate * 1000
    return end


def read_wav_8k(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit PCM WAV")
        pcm = w.readframes(w.getnframes())
        if w.getnchannels() == 2:
            x = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2).mean(axis=1).astype("<i2")
            pcm = x.tobytes()
        return resample_pcm16(pcm, w.getframerate(), RATE)


class VoiceCaller:
    """Speech for the test caller: TTS to speak, ASR to understand what it hears."""

    def __init__(self, config: Config) -> None:
        from convener.speech.registry import build_asr, build_tts

        self.tts = build_tts(config.speech)
        self.asr = build_asr(config.speech)
        self.speech = config.speech

    def voice_end_ms(self, pcm: bytes) -> float:
        from convener.speech.registry import build_vad

        vad = build_vad(self.speech, RATE)
        try:
            return voice_end_ms(pcm, vad) or len(pcm) / 2 / RATE * 1000
        finally:
            vad.close()

    async def warm(self) -> None:
        await asyncio.gather(self.tts.warm(), self.asr.warm())

    async def speak(self, text: str) -> bytes:
        """``text`` as 8 kHz speech, leading and trailing silence trimmed, so that "end of the
        caller's speech" is the end of the voice and not of a silent tail."""
        parts = []
        async for chunk in self.tts.synthesize(text):
            parts.append(resample_pcm16(chunk.pcm, chunk.sample_rate, RATE))
        return trim_silence_edges(b"".join(parts), RATE, keep_lead_ms=0, keep_tail_ms=0)

    async def hear(self, pcm: bytes) -> str:
        if not pcm:
            return ""
        asr: Any = self.asr
        if hasattr(asr, "transcribe_pcm"):
            return (await asr.transcribe_pcm(pcm, RATE)).text.strip()
        from convener.speech.asr import EndOfTurn, FinalTranscript

        session = await asr.open_session(RATE)
        try:
            for i in range(0, len(pcm), 320):
                await session.feed(pcm[i:i + 320])
            await session.end_of_turn()
            texts = []
            async for e in session.events():
                if isinstance(e, FinalTranscript):
                    texts.append(e.text)
                if isinstance(e, EndOfTurn):
                    return (e.text or " ".join(texts)).strip()
            return " ".join(texts).strip()
        finally:
            await session.close()


async def spoken_call(config: Config, items: list[str | Path], *, room: str | None = None,
                      voice: VoiceCaller | None = None, reply_timeout: float = 10.0,
                      quiet_s: float = 1.2, progress: Any = None) -> CallReport:
    """Place a call, greet, then one turn per item; see the module docstring."""
    say = progress or (lambda msg: None)
    voice = voice or VoiceCaller(config)
    await voice.warm()
    audio: list[tuple[str, bytes]] = []
    for item in items:
        if isinstance(item, Path):
            audio.append((item.name, read_wav_8k(item)))
        else:
            audio.append((item, await voice.speak(item)))
    s, c = config.ari, config.calls
    report = CallReport()
    # A caller application of its own: several test calls at once must not replace each other.
    app = f"{s.app}-caller-{uuid.uuid4().hex[:8]}"
    async with TestCaller(s.url, s.user, s.password, app=app) as caller:
        leg = await caller.place(c.dialplan_extension, c.dialplan_context, room=room)
        try:
            await leg.wait_answered()
            media = await leg.open_media(config.media)
            try:
                await leg.wait_in_bridge(timeout=10)
            except TimeoutError:
                report.error = "the call never reached convener's bridge: is `convener run` running?"
                return report
            start = time.monotonic()
            # The greeting: wait for it to start and end.
            first = await media.wait_voice_after(start, 6.0)
            if first is not None:
                await media.wait_quiet(quiet_s, 15.0, since=first)
                report.greeting = await voice.hear(media.audio_between(first - 0.1, time.monotonic()))
                say(f"convener: {report.greeting}")
            for said, pcm in audio:
                if leg.ended:  # convener hung up (an agent's hang-up action) or transferred away
                    break
                await _turn(leg, voice, said, pcm, report, reply_timeout, quiet_s, say)
            report.ok = all(t.latency_ms is not None for t in report.turns)
        finally:
            await leg.hangup()
            report.outcome = leg.outcome()
    return report


async def _turn(leg: CallerLeg, voice: VoiceCaller, said: str, pcm: bytes, report: CallReport,
                reply_timeout: float, quiet_s: float, say: Any) -> None:
    media = leg.media
    assert media is not None
    say(f"caller: {said}")
    audio_ms = len(pcm) / 2 / RATE * 1000
    voice_ms = await asyncio.to_thread(voice.voice_end_ms, pcm)
    end = await media.say(pcm, RATE) - (audio_ms - voice_ms) / 1000  # the voice's last sample left
    result = TurnResult(said=said, ended_at=end, voice_end_ms=round(voice_ms, 1), audio_ms=round(audio_ms, 1))
    report.turns.append(result)
    first = await media.wait_voice_after(end, reply_timeout)
    if first is None:
        say("  (no reply heard)")
        return
    result.heard_at = first
    result.latency_ms = round((first - end) * 1000, 1)
    await media.wait_quiet(quiet_s, 30.0, since=first)
    last = media.last_voice() or first
    result.reply_ms = round((last - first) * 1000, 1)
    result.heard = await voice.hear(media.audio_between(first - 0.1, last + 0.05))
    say(f"heard ({result.latency_ms:.0f} ms): {result.heard}")


def print_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
