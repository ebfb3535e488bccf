"""Benchmark: turn-taking through the sandbox Asterisk — cut-offs, latency, model cost.

Speech the project generates: requests spoken by several voices (hibari "heart" at two
speeds, espeak-ng en-us and en-gb, flite slt and rms), band-passed to the telephone band
(300–3400 Hz) with steady noise under voice and pauses (~25 dB SNR), sent as μ-law by a test
caller. Three kinds of item:

  complete    one finished request                                   (48)
  hesitation  unfinished phrase, 400–1200 ms pause, the rest           (48)
  pause       finished request, 600–1200 ms pause, an addition         (24)

Every item is played with ``completion`` (the new end of turn: 200 ms VAD stop, then the
completion decision), and every third item also with ``fixed`` (the old fixed 500 ms
hang-over, ``turn_completion = "off"``), side by side in the same run (the sandbox lock is
shared, so the old mode gets a third of the set). Three parts, each reported apart:

  tuning    three quarters of the 120 items above: looked at while tuning
  held-out  every fourth of them (idx % 4 == 0): looked at once per round, at its end. Its
            complete requests are spoken by hibari and the two espeak voices only (4 and 6
            share a factor), so it is two thirds espeak, the voices tiny.en fails on.
  fresh     40 items (16 complete, 16 hesitations, 8 pauses; ``data/turn_taking/fresh.json``)
            written blind by a helper session that saw neither this code nor the other
            phrases, with other cities; every voice speaks every kind. Held out: played only
            after the rules they measure were set.

Measured at the caller on one clock: end of the VOICE (known exactly: the items are built
from trimmed speech) → first reply audio heard. A false cut-off: convener answered a
hesitation item before its voice ended, or the item reached the agents as more than one turn.
By default a mode plays its items one after another in one call, so from the second item on
an agent already holds the floor; ``--call-per-item`` places a call for each item, so every
request is a caller's first, as on most real calls (the report says which).
Per-stage breakdown from convener's TurnTimings marks. The model's CPU time per decision
(thread CPU time) and its p99 wall time with 8 callers deciding at once are measured offline
on the same audio.

The Asterisk part runs in pieces so that no hold of the sandbox lock is long:

  for i in 0 1 2 3 4; do
    flock /tmp/convener-asterisk.lock .venv/bin/python bench/turn_taking.py --part $i --of 5 --out /tmp/tt
  done
  .venv/bin/python bench/turn_taking.py --report /tmp/tt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convener.audio import resample_pcm16, trim_silence_edges
from convener.tools.testcall import TestCaller

RATE = 8000
COMPLETE = [
    "What's the weather like in Boston today?", "Book me a flight to Chicago next Tuesday.",
    "I need a hotel room in Seattle for two nights.", "Is it going to snow in Denver this weekend?",
    "Find me a cheap flight from Austin to Miami.", "Can you reserve a hotel near the beach in San Diego?",
    "What will the temperature be in Phoenix tomorrow?", "I want to fly to London on Friday.",
    "Please book a double room in Portland.", "How hot is it in Las Vegas right now?",
    "Get me on the first flight to Atlanta.", "Do you have a hotel with parking in Dallas?",
    "Will it rain in Paris on Sunday?", "I'd like a window seat to New York.",
    "Book a suite in Boston for three nights.", "What's the forecast for Chicago?",
    "Show me flights from Denver to Houston on Monday.", "I need a room for tonight in Atlanta.",
    "Is it windy in San Francisco?", "Reserve two seats to Orlando in June.",
    "Find a hotel downtown in Nashville.", "What's the humidity in Miami?",
    "Fly me from Seattle to Boston tomorrow morning.", "Is the hotel in Denver pet friendly?",
]
HESITATION = [
    ("I'd like to book a flight to", "Denver, please."), ("What's the weather going to be in", "Portland tomorrow?"),
    ("Can you find me a hotel near", "the airport in Dallas?"),
    ("I need a flight from Boston to", "Chicago on Friday."),
    ("Book me a room for", "three nights in Seattle."), ("Is it going to rain in", "London this weekend?"),
    ("I want to fly to Miami on", "the twentieth of May."), ("Please reserve a hotel in", "San Diego for Monday."),
    ("What's the temperature in", "Phoenix right now?"), ("Find me a cheap flight to", "New York next week."),
    ("I'm looking for a hotel with", "a pool in Orlando."), ("Will it be sunny in", "Austin on Saturday?"),
    ("Get me a ticket from Denver to", "Houston, please."), ("Can you check the forecast for", "Nashville tomorrow?"),
    ("I'd like a double room at", "the hotel in Boston."), ("Book the earliest flight from", "Atlanta to Dallas."),
    ("How cold will it be in", "Chicago tonight?"), ("I need a hotel room in", "Las Vegas for the weekend."),
    ("Show me flights to", "Paris in June."), ("Is there a hotel near", "the station in Portland?"),
    ("What's the weather like in", "Seattle this afternoon?"), ("Reserve a flight for", "two people to Miami."),
    ("I'd like to stay in", "a hotel in Denver."), ("Can I get a flight from Austin on", "Thursday evening?"),
]
PAUSE = [
    ("Book a flight to Miami.", "Leaving on Friday."), ("What's the weather in Boston?", "And tomorrow?"),
    ("I need a hotel in Denver.", "For two nights."), ("Find me a flight to Seattle.", "In the morning."),
    ("Is it raining in London?", "I'm going there today."), ("Reserve a room in Dallas.", "With a king bed."),
    ("Book a flight to Chicago.", "Economy is fine."), ("What's the forecast for Paris?", "For the weekend."),
    ("I want a hotel in Austin.", "Near downtown."), ("Get me a flight to Phoenix.", "On Monday."),
    ("How warm is it in Miami?", "Thanks."), ("Find a hotel in Portland.", "Under two hundred dollars."),
]
VOICES = ("hibari", "hibari-fast", "espeak-us", "flite-slt", "espeak-gb", "flite-rms")
STAGES = (("stop", "speech_end", "turn_paused"), ("decide", "turn_paused", "end_of_turn"),
          ("endpointing", "speech_end", "end_of_turn"), ("asr", "end_of_turn", "asr_final"),
          ("floor", "asr_final", "envelope_sent"), ("agent", "envelope_sent", "reply_received"),
          ("tts", "reply_received", "tts_first_chunk"), ("out", "tts_first_chunk", "first_audio_out"))


FRESH = Path(__file__).resolve().parent / "data" / "turn_taking" / "fresh.json"
PARTS = ("tuning", "held-out", "fresh")


@dataclass
class Item:
    idx: int
    kind: str  # complete | hesitation | pause
    voice: str
    parts: tuple[str, ...]
    pause_ms: int  # between the parts (0 for complete)
    part: str = ""  # tuning | held-out | fresh ("": by idx, the first 120 items)

    def __post_init__(self) -> None:
        if not self.part:
            self.part = "held-out" if self.idx % 4 == 0 else "tuning"

    @property
    def held_out(self) -> bool:
        return self.part != "tuning"

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def items() -> list[Item]:
    rng = random.Random(11)
    out: list[Item] = []
    for i in range(48):
        out.append(Item(len(out), "complete", VOICES[i % len(VOICES)], (COMPLETE[i % len(COMPLETE)],), 0))
    for i in range(48):
        a, b = HESITATION[i % len(HESITATION)]
        out.append(Item(len(out), "hesitation", VOICES[(i + 1) % len(VOICES)], (a, b), rng.randint(400, 1200)))
    for i in range(24):
        a, b = PAUSE[i % len(PAUSE)]
        out.append(Item(len(out), "pause", VOICES[(i + 2) % len(VOICES)], (a, b), rng.randint(600, 1200)))
    fresh = json.loads(FRESH.read_text())
    rng = random.Random(23)
    for i, text in enumerate(fresh["complete"]):
        out.append(Item(len(out), "complete", VOICES[i % len(VOICES)], (text,), 0, "fresh"))
    for i, (a, b) in enumerate(fresh["hesitation"]):
        out.append(Item(len(out), "hesitation", VOICES[(i + 3) % len(VOICES)], (a, b), rng.randint(400, 1200), "fresh"))
    for i, (a, b) in enumerate(fresh["pause"]):
        out.append(Item(len(out), "pause", VOICES[(i + 1) % len(VOICES)], (a, b), rng.randint(600, 1200), "fresh"))
    return out


# --- speech generation ----------------------------------------------------------------------------


def _wav_pcm(path: Path) -> tuple[bytes, int]:
    import wave

    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


_HIBARI: dict[str, object] = {}


def synth(voice: str, text: str) -> bytes:
    """``text`` in ``voice`` as trimmed 8 kHz PCM16."""
    if voice.startswith("hibari"):
        from convener.speech.hibari_tts import HibariTts
        from convener.speech.settings import HibariSettings

        tts = _HIBARI.get(voice)
        if tts is None:
            tts = _HIBARI[voice] = HibariTts(HibariSettings(speed=1.2 if voice == "hibari-fast" else 1.0))

        async def run() -> bytes:
            return b"".join([resample_pcm16(c.pcm, c.sample_rate, RATE) async for c in tts.synthesize(text)])

        pcm = asyncio.run(run())
    else:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "x.wav"
            if voice.startswith("espeak"):
                v = {"espeak-us": "en-us", "espeak-gb": "en-gb+f3"}[voice]
                subprocess.run(["espeak-ng", "-v", v, "-w", str(out), text], check=True)
            else:
                subprocess.run(["flite", "-voice", voice.split("-")[1], "-t", text, "-o", str(out)], check=True)
            raw, rate = _wav_pcm(out)
            pcm = resample_pcm16(raw, rate, RATE)
    return trim_silence_edges(pcm, RATE, keep_lead_ms=0, keep_tail_ms=0)


def telephone(pcm: bytes, rng: np.random.Generator, snr_db: float = 25.0) -> bytes:
    """Band-pass 300–3400 Hz (FFT mask) and add steady noise at ``snr_db`` below the voice."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    y = np.fft.irfft(spec, len(x))
    voiced = np.abs(y) > 0.05 * np.abs(y).max()
    level = np.sqrt(np.mean(y[voiced] ** 2)) if voiced.any() else 1000.0
    y += rng.standard_normal(len(y)) * level / 10 ** (snr_db / 20)
    return np.clip(y, -32768, 32767).astype("<i2").tobytes()


def build(item: Item, cache: Path) -> tuple[bytes, float, float]:
    """(caller audio, end of the first part's voice s, end of the whole voice s)."""
    f = cache / f"{item.idx}.npz"
    if f.exists():
        d = np.load(f)
        return d["pcm"].tobytes(), float(d["first_end"]), float(d["voice_end"])
    lead = b"\0\0" * (RATE * 200 // 1000)
    segs = [synth(item.voice, p) for p in item.parts]
    pcm = lead + segs[0]
    first_end = len(pcm) / 2 / RATE
    for s in segs[1:]:
        pcm += b"\0\0" * (RATE * item.pause_ms // 1000) + s
    voice_end = len(pcm) / 2 / RATE
    pcm += b"\0\0" * (RATE * 300 // 1000)  # the line does not fall silent the instant the voice ends
    pcm = telephone(pcm, np.random.default_rng(item.idx))
    np.savez(f, pcm=np.frombuffer(pcm, dtype="<i2"), first_end=first_end, voice_end=voice_end)
    return pcm, first_end, voice_end


# --- the calls -----------------------------------------------------------------------------------


async def play_items(config, mode: str, batch: list[Item], cache: Path, per_call: bool = False) -> list[dict]:

    config = copy.deepcopy(config)  # each mode changes its own copy
    config.media.turn_completion = "off" if mode == "fixed" else "auto"
    if mode == "no-second-look":  # the rule before the second look: every "incomplete" waits 2 s
        config.media.turn_uncertain_wait_ms = config.media.turn_incomplete_wait_ms
        config.media.turn_doubt_wait_ms = config.media.turn_incomplete_wait_ms
    if mode == "no-gap-compaction":  # the recogniser gets the pauses inside a turn whole
        config.media.turn_asr_max_gap_ms = 0
    if mode == "no-confirm":  # a later look's "finished" ends the turn at once, as before turn_confirm_ms
        config.media.turn_confirm_ms = 0
    if mode == "no-doubt-look":  # words heard badly wait the longest (2 s), as before turn_doubt_wait_ms
        config.media.turn_doubt_wait_ms = config.media.turn_incomplete_wait_ms
    if mode == "stop150":
        config.media.turn_stop_ms = 150
    if mode == "trust-words":  # a "complete" ends the turn whatever the recogniser's confidence
        config.media.turn_min_confidence = 0.0
    if mode == "no-last-word":  # the last word's probability does not doubt the words
        config.media.turn_min_last_word_confidence = 0.0
    if mode == "no-unrouted-wait":  # words no agent fits end a turn at the first look too
        config.media.turn_unrouted_waits = False
    if mode == "no-tts-cache":  # every reply synthesised, even one said before
        config.speech.tts_cache_mb = 0
    if mode == "batched-vad":  # Silero batched across calls (issue 15), probabilities a tick later
        config.speech.vad = "silero-batched"
    if mode == "per-call-vad":  # Silero run per call on the event loop (the default before issue 15)
        config.speech.vad = "silero"
    if mode == "doubt-beam":  # words heard with doubt decoded again with the beam (idle decoder), for the agents
        config.speech.whisper.doubt_beam_below = 0.7
    if mode == "doubt-beam-decides":  # ... inside the decode, so the turn decision reads the beam's words too
        config.speech.whisper.doubt_beam_below = 0.7
        config.speech.whisper.doubt_beam_decides = True
    if mode == "no-doubt-beam":  # never decoded again with the beam
        config.speech.whisper.doubt_beam_below = 0.0
    if mode == "silero-end":  # the stop counted from the VAD's end, as before turn_energy_end_ms
        config.media.turn_energy_end_ms = 0
    from convener.ofp.session import FloorSession

    prepare = FloorSession.prepare
    if mode == "no-route-ahead":  # routing embeds the text only once the turn has ended
        FloorSession.prepare = lambda self, text: None  # type: ignore[method-assign]
    try:
        return await _play(config, mode, batch, cache, per_call)
    finally:
        FloorSession.prepare = prepare  # type: ignore[method-assign]


async def _play(config, mode: str, batch: list[Item], cache: Path, per_call: bool = False) -> list[dict]:
    from convener.ops import metrics
    from convener.tools.stack import Stack

    config.voice.greeting = ""
    results: list[dict] = []
    # The router is process-wide: without this, a mode would find the requests the modes before
    # it embedded, and its floor stage would look free.
    from convener.ofp.routing.router import _shared

    for router in _shared.values():
        router.clear_queries()
    decodes0 = metrics.SPECULATIVE_DECODES_TOTAL.value()
    hits0 = metrics.SPECULATIVE_HITS_TOTAL.value()
    async with Stack(config) as stack:
        assert stack.app is not None
        s = config.ari
        async with TestCaller(s.url, s.user, s.password, app=f"{s.app}-tt-{uuid.uuid4().hex[:8]}") as caller:
            # The previous item's turn must be over before the next is said: a turn left open
            # (no reply, or a reply still to come after the silence limit) would take in the
            # next item's words, or be lost with a hang-up. So at least the silence limit + 1 s
            # after its voice, and 1 s without reply audio.
            gap = config.media.turn_incomplete_wait_ms / 1000 + 1.0
            calls = [[item] for item in batch] if per_call else [batch]
            for group in calls:
                async with _call(caller, config) as media:
                    last_voice_end = 0.0
                    for item in group:
                        results.append(await _say(media, mode, item, cache, last_voice_end + gap))
                        last_voice_end = results[-1]["voice_end"]
                    # the last turn's record, and a turn still open closes before the hang-up
                    await asyncio.sleep(max(1.5, last_voice_end + gap - time.monotonic()))
            # Each turn convener recorded belongs to the item during which its speech started
            # (one clock: the test caller and convener run in this process).
            turns = list(stack.app.turns)
            for i, r in enumerate(results):
                until = results[i + 1]["started"] if i + 1 < len(results) else float("inf")
                mine = [(m, t) for m, t in turns
                        if r["started"] - 0.1 <= m.marks.get("speech_start", 0) < until - 0.1]
                r["turns"], r["marks"] = [t for _, t in mine], [m.marks for m, _ in mine]
                r["call"] = "own" if per_call else "shared"
            if results:  # speculative decodes of this batch: started, and used by a turn
                results[0]["spec"] = [metrics.SPECULATIVE_DECODES_TOTAL.value() - decodes0,
                                      metrics.SPECULATIVE_HITS_TOTAL.value() - hits0]
    return results


@contextlib.asynccontextmanager
async def _call(caller: TestCaller, config) -> AsyncIterator:
    """One call to convener, answered and in its bridge: yields the caller's media."""
    leg = await caller.place(config.calls.dialplan_extension, config.calls.dialplan_context)
    try:
        await leg.wait_answered()
        media = await leg.open_media(config.media)
        await leg.wait_in_bridge(timeout=10)
        await asyncio.sleep(0.5)
        yield media
    finally:
        await leg.hangup()


async def _say(media, mode: str, item: Item, cache: Path, not_before: float) -> dict:
    """Say one item once the previous reply is over, and note when its reply was first heard."""
    pcm, first_end, voice_end = build(item, cache)
    await media.wait_quiet(1.0, 12.0)  # the previous reply is over
    if (wait := not_before - time.monotonic()) > 0:
        await asyncio.sleep(wait)
    end_of_audio = await media.say(pcm, RATE)
    started = end_of_audio - len(pcm) / 2 / RATE
    # Replies are looked for from the end of the first phrase on.
    heard = await media.wait_voice_after(started + first_end, len(pcm) / 2 / RATE + 4.0)
    if heard is not None:
        await media.wait_quiet(0.6, 15.0, since=heard)
    await asyncio.sleep(0.2)
    lat = "-" if heard is None else round((heard - started - voice_end) * 1000)
    print(f"  [{mode}] {item.idx:3d} {item.kind:<10} lat={lat}", file=sys.stderr, flush=True)
    return {"idx": item.idx, "kind": item.kind, "voice": item.voice, "mode": mode,
            "held_out": item.held_out, "part": item.part, "pause_ms": item.pause_ms, "text": item.text,
            "started": started, "first_end": started + first_end,
            "voice_end": started + voice_end, "heard": heard}


MODES = ("completion", "no-unrouted-wait", "no-last-word", "no-confirm", "no-doubt-look", "no-gap-compaction",
         "no-second-look", "stop150", "silero-end", "no-route-ahead", "no-tts-cache", "trust-words", "batched-vad",
         "per-call-vad", "doubt-beam", "doubt-beam-decides", "no-doubt-beam", "fixed")


async def run_part(part: int, of: int, out: Path, modes: list[str], kinds: list[str], which: str = "all",
                   per_call: bool = False) -> int:
    from convener.config import load_config
    from convener.sandbox.runtime import Sandbox

    logging.basicConfig(level=logging.WARNING)
    creds = await asyncio.to_thread(Sandbox().up)
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    cache = out / "audio"
    cache.mkdir(parents=True, exist_ok=True)
    batch = [it for it in items() if it.idx % of == part and it.kind in kinds
             and which in ("all", it.part)]
    for it in batch:
        await asyncio.to_thread(build, it, cache)
    results = []
    # The old fixed hang-over on every third item only (enough to compare, and the lock is shared).
    runs = [(m, [it for it in batch if m != "fixed" or it.idx % 3 == 0]) for m in modes]
    for mode, its in runs if part % 2 == 0 else runs[::-1]:  # alternate the order between parts
        results += await play_items(config, mode, its, cache, per_call)
        (out / f"part{part}.json").write_text(json.dumps(results))  # kept if a later mode is stopped
    return 0


# --- the report ----------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def row(name: str, values: list[float], unit: str = "ms") -> str:
    if not values:
        return f"    {name:<22} (no data)"
    return (f"    {name:<22} p50 {pct(values, 50):6.0f} {unit}  p95 {pct(values, 95):6.0f} {unit}  "
            f"mean {statistics.fmean(values):6.0f} {unit}  n={len(values)}")


def cut_off(r: dict) -> bool:
    """Answered before the voice ended, or the request reached the agents in pieces."""
    early = r["heard"] is not None and r["heard"] < r["voice_end"] - 0.05
    return early or len(r["turns"]) > 1


def report(results: list[dict]) -> None:
    for r in results:  # results recorded before the fresh part have no "part"
        r.setdefault("part", "held-out" if r["held_out"] else "tuning")
    for name in PARTS:
        part = [r for r in results if r["part"] == name]
        if not part:
            continue
        print(f"\n== {name} part ({len({r['idx'] for r in part})} items) ==")
        for mode, call in ((m, c) for m in MODES for c in ("shared", "own")):
            rs = [r for r in part if r["mode"] == mode and r.get("call", "shared") == call]
            if not rs:
                continue
            comp = [r for r in rs if r["kind"] == "complete"]
            hes = [r for r in rs if r["kind"] == "hesitation"]
            pau = [r for r in rs if r["kind"] == "pause"]
            lat = [(r["heard"] - r["voice_end"]) * 1000 for r in comp if r["heard"] is not None]
            cuts = sum(cut_off(r) for r in hes)
            own = " (a call per item: every request a caller's first)" if call == "own" else ""
            print(f"  mode {mode}{own}:")
            rate = 100 * cuts / max(1, len(hes))
            print(f"    false cut-offs         {cuts}/{len(hes)} hesitation items = {rate:.1f} %")
            print(row("complete: voice→reply", lat) + f"   (no reply: {sum(r['heard'] is None for r in comp)})")
            by_voice = {v: [(r["heard"] - r["voice_end"]) * 1000 for r in comp if r["voice"] == v and r["heard"]]
                        for v in VOICES}
            print("    complete by voice      " + ", ".join(f"{v} {pct(x, 50):.0f}" for v, x in by_voice.items() if x)
                  + " ms (p50)")
            whole = [r for r in hes if not cut_off(r) and r["heard"] is not None]
            print(row("hesitation: voice→reply", [(r["heard"] - r["voice_end"]) * 1000 for r in whole]))
            first = [r for r in pau if r["heard"] is not None and r["heard"] < r["voice_end"]]
            print(f"    pause items answered after the first phrase: {len(first)}/{len(pau)}")
            print(row("pause: 1st phrase→reply", [(r["heard"] - r["first_end"]) * 1000 for r in first]))
            marks = [m for r in comp for m in r["marks"][:1]]
            print(row("stage vad tail", [(r["marks"][0]["speech_end"] - r["voice_end"]) * 1000 for r in comp
                                         if r["marks"] and "speech_end" in r["marks"][0]])
                  + "   (end of voice → VAD's end of speech: path in + Silero's tail)")
            for name, a, b in STAGES:
                vals = [(m[b] - m[a]) * 1000 for m in marks if a in m and b in m]
                if vals:
                    print(row(f"stage {name}", vals))
            print(row("stage transport", [(r["heard"] - r["marks"][0]["first_audio_out"]) * 1000 for r in comp
                                          if r["heard"] and r["marks"] and "first_audio_out" in r["marks"][0]])
                  + "   (first frame out → heard at the caller)")
            spec = [r["spec"] for r in rs if "spec" in r]
            if spec:
                started, used = sum(x[0] for x in spec), sum(x[1] for x in spec)
                print(f"    speculative decodes    {started:.0f} started, {used:.0f} used by a turn "
                      f"({sum(len(r['marks']) for r in rs)} turns)")


def model_cost(cache: Path, decisions: int = 64) -> None:
    """Smart Turn CPU time per decision, and its wall time with 8 callers deciding at once."""
    from convener.speech.turns.smart_turn import ModelMissing, SmartTurnModel
    from convener.speech.turns.text_model import load_text_model

    pcms = [np.load(f)["pcm"].tobytes() for f in sorted(cache.glob("*.npz"))[:16]]
    text = load_text_model()
    t0 = time.thread_time()
    for _ in range(1000):
        text.probability("I'd like to book a flight to Denver, please")
    print(f"\ntranscript classifier: {(time.thread_time() - t0) * 1000:.1f} µs CPU per decision (mean of 1000)")
    try:
        model = SmartTurnModel()
    except ModelMissing as e:
        print(f"Smart Turn: not installed ({e})")
        return

    def one(pcm: bytes) -> tuple[float, float]:
        c, w = time.thread_time(), time.perf_counter()
        model.probability(pcm, RATE)
        return (time.thread_time() - c) * 1000, (time.perf_counter() - w) * 1000

    single = [one(pcms[i % len(pcms)]) for i in range(decisions // 2)]
    print(row("Smart Turn CPU, 1 caller", [c for c, _ in single]))
    print(row("Smart Turn wall, 1 caller", [w for _, w in single]))
    with ThreadPoolExecutor(8) as pool:
        eight = list(pool.map(one, [pcms[i % len(pcms)] for i in range(decisions * 2)]))
    w8 = [w for _, w in eight]
    print(row("Smart Turn wall, 8 at once", w8) + f"  p99 {pct(w8, 99):.0f} ms")
    print(row("Smart Turn CPU, 8 at once", [c for c, _ in eight]))


def looks(cache: Path, which: str, window: int = 0) -> None:
    """Offline, no Asterisk: what the first and the later looks decide on the recogniser's text
    of each hesitation item's first phrase (+200 ms, what the first look hears) and of each
    complete request: by the words alone, and with the gates on what was heard badly (the
    confidence, ``turn_min_confidence``, and the last word's, ``turn_min_last_word_confidence``),
    as ``TurnCompletion.decide`` makes the decision in a call."""
    from convener.config import load_config
    from convener.ofp.routing import Router
    from convener.speech.registry import build_asr
    from convener.speech.turns import build_completion
    from convener_agents.serve import AGENTS

    router = Router.default()
    manifests = [cls("http://127.0.0.1:9/").manifest for cls in AGENTS.values()]

    def fits_nobody(text: str) -> bool:  # as FloorSession.fits_nobody decides a first request
        return bool(text) and router.route(text, manifests).kind == "none"

    async def run() -> None:
        config = load_config(None, env={})
        speech = config.speech
        if window:  # not validated: the bench may try windows the settings refuse
            speech.whisper.window_s = window
        asr = build_asr(speech)
        comp = build_completion(config.media)
        assert comp is not None and comp.text is not None
        # side by side: the same decision without the last word's gate
        without = copy.copy(comp)
        without.min_last_word = 0.0
        for kind in ("hesitation", "complete"):
            rs, spent = [], []
            for it in items():
                if it.kind != kind or which not in ("all", it.part):
                    continue
                pcm, first_end, _ = await asyncio.to_thread(build, it, cache)  # synth() runs a loop of its own
                t0 = time.perf_counter()
                final = await asr.transcribe_pcm(pcm[: int((first_end + 0.2) * RATE) * 2], RATE)
                spent.append((time.perf_counter() - t0) * 1000)
                text = final.text.strip()
                words_say = comp.text.probability(text) >= comp.threshold
                gated = [comp.decide(None, text, look, final.confidence, final.last_word_confidence).complete
                         for look in (1, 2, 3)]
                old = [without.decide(None, text, look, final.confidence, final.last_word_confidence).complete
                       for look in (1, 2, 3)]
                nobody = gated[0] and fits_nobody(text)
                waits = [gated[0] and not nobody, gated[1], gated[2]]  # the first look waits on it
                rs.append((it, text, words_say, waits, old, gated, nobody))
                last = final.last_word_confidence
                print(f"      {it.idx:3d} {it.voice:<11} {final.confidence:.2f} "
                      f"{'-' if last is None else f'{last:.2f}'} {text!r}", file=sys.stderr)
            # a hesitation's later looks come at 0.8 s (second) and 1.2 s (doubt) of silence
            cut, cut_old, cut_gated = ([r for r in rs if r[k][0] or (r[0].pause_ms >= 800 and r[k][1])
                                        or (r[0].pause_ms >= 1200 and r[k][2])] if kind == "hesitation" else []
                                       for k in (3, 4, 5))

            def three(f: Callable[[list[bool]], bool], rs: list = rs) -> str:
                return " / ".join(str(sum(f(r[k]) for r in rs)) for k in (3, 5, 4))

            print(f"{kind} ({which}, window {speech.whisper.window_s} s): n={len(rs)}; "
                  f"the words say complete: {sum(r[2] for r in rs)}; fit no agent at the first look: "
                  f"{sum(r[6] for r in rs)}; counts as: all gates / without the unrouted wait / "
                  f"without it and the last word's gate: "
                  f"ends at the first look {three(lambda d: d[0])}; "
                  f"by the second look {three(lambda d: d[0] or d[1])}; "
                  f"by the doubt look {three(any)}"
                  + (f"; cut off (a look ends it before the caller goes on): {len(cut)} / {len(cut_gated)} / "
                     f"{len(cut_old)}" if kind == "hesitation" else "")
                  + f"; decode p50 {pct(spent, 50):.0f} ms, p95 {pct(spent, 95):.0f} ms")
            for r in rs:
                if r[6]:
                    print(f"    {r[0].idx:3d} {r[0].voice:<11} fits no agent, the first look waits: {r[1]!r}")
            for it, text, _, gated, *_ in cut:
                look = "first" if gated[0] else "second" if gated[1] else "doubt"
                print(f"    {it.idx:3d} {it.voice:<11} {look} look ends: {text!r}")

    asyncio.run(run())


def stops(cache: Path, which: str) -> None:
    """Offline, no Asterisk: when the first look comes (TurnPaused), with the stop counted from
    the VAD's end (``turn_energy_end_ms = 0``) and from where the level fell (the default),
    side by side on the same audio (μ-law round trip, Silero at 8 kHz). Early pauses are first
    looks before the item's last voice ends (mid-sentence, or the hesitation itself: the
    completion decision must keep those going)."""
    from convener.audio import AudioFrame, pcm16_to_ulaw, ulaw_to_pcm16
    from convener.media.settings import MediaSettings
    from convener.media.turns import TurnDetector, TurnPaused
    from convener.speech.vad import SileroVad

    frame = RATE // 50 * 2
    for credit in (0, MediaSettings().turn_energy_end_ms):
        ms = MediaSettings(turn_energy_end_ms=credit)
        late: list[float] = []
        early = {"complete": 0, "hesitation": 0, "pause": 0}
        n = dict.fromkeys(early, 0)
        for it in items():
            if which not in ("all", it.part):
                continue
            pcm, _, voice_end = build(it, cache)
            pcm += pcm[-RATE // 5 * 2:] * 5  # 1 s more of the line's noise: every first look comes
            pcm = bytes(RATE * 2) + pcm  # the test caller sends digital silence between items
            pcm = ulaw_to_pcm16(pcm16_to_ulaw(pcm))
            vad = SileroVad(RATE)
            det = TurnDetector(vad, ms, completion=True)
            firsts: list[float] = []
            for i in range(0, len(pcm) - frame + 1, frame):
                for e in det.process(AudioFrame(pcm[i:i + frame], RATE, i / 2 / RATE - 1.0)):
                    if isinstance(e, TurnPaused) and not e.second:
                        firsts.append(e.at)
            vad.close()
            n[it.kind] += 1
            early[it.kind] += sum(1 for t in firsts if t < voice_end)
            after = [t for t in firsts if t >= voice_end]
            if it.kind == "complete" and after:
                late.append((after[0] - voice_end) * 1000)
        print(f"turn_energy_end_ms={credit} ({which}): complete requests, end of voice → first look "
              f"p50 {pct(late, 50):.0f} ms, p95 {pct(late, 95):.0f} ms (n={len(late)}); "
              + "; ".join(f"{k}: {early[k]} early pauses in {n[k]} items" for k in early))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", type=int)
    ap.add_argument("--of", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("/tmp/turn_taking"))
    ap.add_argument("--report", type=Path, help="combine the parts in this folder and print")
    ap.add_argument("--modes", default="completion,fixed",
                    help=f"comma-separated, side by side in the same run: {', '.join(MODES)}")
    ap.add_argument("--kinds", default="complete,hesitation,pause", help="which kinds of item to play")
    ap.add_argument("--call-per-item", action="store_true",
                    help="each item in a call of its own, so every request is a caller's first (the rules "
                         "for a first request, such as the unrouted wait, apply); default: one call per mode")
    ap.add_argument("--set", choices=("all", *PARTS), default="all",
                    help="play only one part: tuning, held-out or fresh (look at the held-out parts once, at the end)")
    ap.add_argument("--window", default="0", help="--looks: comma-separated Whisper encoder windows in s, "
                    "one after the other (0 = speech.whisper.window_s)")
    ap.add_argument("--looks", action="store_true",
                    help="offline (no Asterisk): the first and second look on recognised first phrases")
    ap.add_argument("--stops", action="store_true",
                    help="offline (no Asterisk): when the first look comes, from the VAD's end or the level's")
    a = ap.parse_args()
    if a.stops:
        (a.out / "audio").mkdir(parents=True, exist_ok=True)
        stops(a.out / "audio", a.set)
        return 0
    if a.looks:
        (a.out / "audio").mkdir(parents=True, exist_ok=True)
        for window in a.window.split(","):
            looks(a.out / "audio", a.set, int(window))
        return 0
    if a.report is not None:
        results = [r for f in sorted(a.report.glob("part*.json")) for r in json.loads(f.read_text())]
        print(f"turn-taking over {len({r['idx'] for r in results})} items x {len({r['mode'] for r in results})} modes"
              f" (voices: {', '.join(VOICES)}; telephone band, ~25 dB SNR noise)")
        report(results)
        model_cost(a.report / "audio")
        return 0
    if a.part is None:
        ap.error("--part N (under the sandbox lock) or --report DIR")
    for tool in ("espeak-ng", "flite"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install {tool}); its voices are needed", file=sys.stderr)
            return 2
    modes = a.modes.split(",")
    if unknown := set(modes) - set(MODES):
        ap.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    return asyncio.run(run_part(a.part, a.of, a.out, modes, a.kinds.split(","), a.set, a.call_per_item))


if __name__ == "__main__":
    sys.exit(main())
