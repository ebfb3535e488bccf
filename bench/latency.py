"""Benchmark: end of caller speech → first agent audio at the caller, through the real sandbox.

Runs the whole product in this process (example agents, offline speech, convener) against the
sandbox Asterisk, and places spoken test calls. Prints p50/p95 of the latency the caller
experiences, and convener's own per-stage breakdown of the same turns:

  endpointing  speech_end → end_of_turn     (the VAD hang-over that decides the turn is over)
  asr          end_of_turn → asr_final
  floor        asr_final → envelope_sent     (floor manager, convener policy, envelope checks)
  agent        envelope_sent → reply_received
  tts          reply_received → tts_first_chunk
  out          tts_first_chunk → first_audio_out (pacer warm-up)
  transport    first_audio_out → heard at the caller (Asterisk, bridges, RTP both ways)

With ``--callers N`` N callers talk at once (each in its own room), to find how many
simultaneous talking callers the offline defaults sustain with p95 within 2 s.

Run: .venv/bin/python bench/latency.py [--turns 24] [--callers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time

from convener.config import load_config
from convener.sandbox.runtime import Sandbox
from convener.tools.callcheck import VoiceCaller, spoken_call
from convener.tools.stack import Stack

CONVERSATIONS = (
    ("Book a flight to Denver", "From Boston", "Next Friday", "Yes, please book it"),
    ("What is the weather in Seattle", "And in Chicago"),
    ("I need a hotel in Denver", "Two nights from Friday"),
)

STAGES = (("endpointing", "speech_end", "end_of_turn"), ("asr", "end_of_turn", "asr_final"),
          ("floor", "asr_final", "envelope_sent"), ("agent", "envelope_sent", "reply_received"),
          ("tts", "reply_received", "tts_first_chunk"), ("out", "tts_first_chunk", "first_audio_out"))


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<12} (no data)"
    return (f"  {name:<12} p50 {pct(values, 50):7.0f} ms  p95 {pct(values, 95):7.0f} ms  "
            f"mean {statistics.fmean(values):7.0f} ms  n={len(values)}")


async def caller_loop(config, voice: VoiceCaller, turns_wanted: int, room: str, results: list) -> None:
    done = 0
    i = 0
    while done < turns_wanted:
        script = CONVERSATIONS[i % len(CONVERSATIONS)]
        i += 1
        script = script[: turns_wanted - done]
        report = await spoken_call(config, list(script), room=room, voice=voice)
        results.extend(report.turns)
        done += len(report.turns)
        print(f"  [{room}] {done}/{turns_wanted} turns", file=sys.stderr, flush=True)


async def main(turns: int, callers: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    creds = await asyncio.to_thread(Sandbox().up)
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    results: list = []
    async with Stack(config, progress=lambda m: print(f"  {m}", file=sys.stderr)) as stack:
        voice = VoiceCaller(config)
        await voice.warm()
        started = time.monotonic()
        await asyncio.gather(*(caller_loop(config, voice, turns // callers, f"bench{i}", results)
                               for i in range(callers)))
        elapsed = time.monotonic() - started
        assert stack.app is not None
        marks = [t for t, _ in stack.app.turns]
    lat = [t.latency_ms for t in results if t.latency_ms is not None]
    missed = sum(1 for t in results if t.latency_ms is None)
    print(f"latency over {len(results)} turns, {callers} caller(s) at once, offline defaults "
          f"({config.speech.asr} ASR, {config.speech.tts} TTS), {elapsed:.0f} s")
    print(row("at caller", lat))
    if missed:
        print(f"  {missed} turn(s) without a reply heard")
    print("convener's breakdown (first reply of each turn):")
    for name, a, b in STAGES:
        print(row(name, [m.between(a, b) * 1000 for m in marks if m.between(a, b) is not None]))
    e2e = [m.between("speech_end", "first_audio_out") * 1000 for m in marks
           if m.between("speech_end", "first_audio_out") is not None]
    print(row("in convener", e2e))
    if callers == 1 and len(marks) == len(results):
        # One caller: the caller's turns and convener's turns pair up, on one clock.
        vad = [(m.marks["speech_end"] - r.ended_at) * 1000 for m, r in zip(marks, results, strict=True)
               if "speech_end" in m.marks]
        out = [(r.heard_at - m.marks["first_audio_out"]) * 1000 for m, r in zip(marks, results, strict=True)
               if r.heard_at is not None and "first_audio_out" in m.marks]
        print(row("vad end", vad) + "   (convener's speech_end minus the caller's last frame)")
        print(row("transport", out) + "   (first frame out → heard at the caller)")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="end of caller speech → first agent audio at the caller")
    ap.add_argument("--turns", type=int, default=24)
    ap.add_argument("--callers", type=int, default=1)
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.turns, a.callers)))
