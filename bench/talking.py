"""Talking callers (issue 15): N callers each say one request AT ONCE to a `convener run` of its own.

Driven by ``bench/capacity.py --talking N[,N...]``. Per round and mode:

1. ``convener run`` starts in its own process with its own config file: the sandbox's ARI,
   the example agents (flights, hotels, weather; served by this harness process), a state
   folder of its own (its SQLite transcripts), no greeting and no filler (the first audio the
   caller hears is the agent's reply), and the mode's settings.
2. N test callers (``convener.tools.testcall.TestCaller``, each in a room of its own) are placed
   and bridged; then all of them say their request at the same instant. The audio was made
   before the round (hibari and flite voices; ``--espeak`` adds the espeak-ng ones, which
   tiny.en mishears: issue #11's concern, not capacity), trimmed speech in the telephone band
   with noise, so the end of the VOICE is known exactly.
3. The harness only plays and listens during the round: each caller's latency is end of voice
   → first reply audio heard (one clock). What each caller heard is kept; convener's CPU
   (utime + stime of its process over the round) and peak RSS are read from /proc.
4. convener's speculative decode counters are read from its /metrics, it is stopped, and its
   per-turn stage breakdown (TurnTimings, the "turn ... : {...}" log line) and its transcripts
   (which agent answered with what) are read from its log and its SQLite file.

After all rounds (convener stopped: nothing competes with it while it is measured), each
reply is checked: the right agent answered (the request's domain), and the reply is not cut or
missing (Whisper on what the caller heard recalls most of the words of the agent's reply text
in the transcript). Results go to ``--out`` (JSON + heard audio) and the report can be printed
again with ``--talking-report DIR``.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import re
import sqlite3
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "asterisk"))

RATE = 8000
REQUESTS: tuple[tuple[str, str], ...] = (
    ("What's the weather like in Boston today?", "weather"),
    ("Book me a flight to Chicago next Tuesday.", "flights"),
    ("I need a hotel room in Seattle for two nights.", "hotels"),
    ("Is it going to snow in Denver this weekend?", "weather"),
    ("Find me a cheap flight from Austin to Miami.", "flights"),
    ("Can you reserve a hotel near the beach in San Diego?", "hotels"),
    ("What will the temperature be in Phoenix tomorrow?", "weather"),
    ("I want to fly to London on Friday.", "flights"),
    ("Please book a double room in Portland.", "hotels"),
    ("How hot is it in Las Vegas right now?", "weather"),
    ("Get me on the first flight to Atlanta.", "flights"),
    ("Do you have a hotel with parking in Dallas?", "hotels"),
    ("Will it rain in Paris on Sunday?", "weather"),
    ("Show me flights from Denver to Houston on Monday.", "flights"),
    ("Find a hotel downtown in Nashville.", "hotels"),
    ("What's the forecast for Chicago?", "weather"),
    ("Fly me from Seattle to Boston tomorrow morning.", "flights"),
    ("I need a room for tonight in Atlanta.", "hotels"),
)
VOICES = ("hibari", "hibari-fast", "flite-slt", "flite-rms")
ESPEAK_VOICES = ("espeak-us", "espeak-gb")

# Modes: settings of convener's config file ("section.key": TOML value). Compared side by side,
# alternating round by round in the same run.
MODES: dict[str, dict[str, str]] = {
    "default": {},
    "batched-vad": {"speech.vad": '"silero-batched"'},  # the default since 2026-12-03
    "per-call-vad": {"speech.vad": '"silero"'},  # a Silero model per call (the default before)
    "spec-late": {"voice.speculate_after_ms": "150"},
    "spec-retry100": {"voice.speculate_retry_ms": "100"},
    "spec-retry150": {"voice.speculate_retry_ms": "150"},
    "spec-retry0": {"voice.speculate_retry_ms": "0"},
    "batched-retry150": {"speech.vad": '"silero-batched"', "voice.speculate_retry_ms": "150"},
    # Before issue 15's decoder changes: one decode at a time, speculation also on busy decoders.
    "before": {"speech.whisper.parallel": "1", "voice.speculate_when_busy": "true"},
    "parallel1": {"speech.whisper.parallel": "1"},
    "spec-busy": {"voice.speculate_when_busy": "true"},
    "batched-parallel1": {"speech.vad": '"silero-batched"', "speech.whisper.parallel": "1"},
    "pool4": {"speech.worker_threads": "4"},
    "pool4-ct1": {"speech.worker_threads": "4", "speech.whisper.cpu_threads": "1"},
    "no-unrouted-wait": {"media.turn_unrouted_waits": "false"},  # before 2026-12-04
    # Before 2026-12-04: every decode with as many threads as cores (now cores / parallel).
    # Words heard with doubt decoded again with the beam, for the agents' words only; and as
    # first measured (2026-12-04, gated by load), inside the decode the turn decision reads.
    "doubt-beam": {"speech.whisper.doubt_beam_below": "0.7"},
    "doubt-beam-decides": {"speech.whisper.doubt_beam_below": "0.7", "speech.whisper.doubt_beam_decides": "true"},
    "no-doubt-beam": {"speech.whisper.doubt_beam_below": "0"},
    "route-threads1": {"ofp.routing_threads": "1"},  # before 2026-12-04: the routing model on one thread
    "threads-cores": {"speech.whisper.cpu_threads": str(len(os.sched_getaffinity(0)))},
}
STAGES = (("stop", "speech_end", "turn_paused"), ("decide", "turn_paused", "end_of_turn"),
          ("endpointing", "speech_end", "end_of_turn"), ("asr", "end_of_turn", "asr_final"),
          ("floor", "asr_final", "envelope_sent"), ("agent", "envelope_sent", "reply_received"),
          ("tts", "reply_received", "tts_first_chunk"), ("out", "tts_first_chunk", "first_audio_out"))


@dataclass
class Line:
    caller: int
    text: str
    agent: str  # the agent that should answer
    voice: str


def lines(n: int, rnd: int, voices: tuple[str, ...]) -> list[Line]:
    """Who says what in round ``rnd``: a different mix of requests and voices every round."""
    return [Line(i, *REQUESTS[(i + 7 * rnd) % len(REQUESTS)], voices[(i + rnd) % len(voices)]) for i in range(n)]


def audio(line: Line, cache: Path) -> tuple[bytes, float]:
    """(caller audio, end of voice s): 200 ms of noise, the trimmed speech, 300 ms of noise."""
    from turn_taking import synth, telephone

    key = re.sub(r"\W+", "_", f"{line.voice}_{line.text}")[:80]
    f = cache / f"{key}.npz"
    if f.exists():
        d = np.load(f)
        return d["pcm"].tobytes(), float(d["voice_end"])
    pcm = b"\0\0" * (RATE // 5) + synth(line.voice, line.text)
    voice_end = len(pcm) / 2 / RATE
    pcm += b"\0\0" * (RATE * 3 // 10)
    pcm = telephone(pcm, np.random.default_rng(len(line.text)))
    np.savez(f, pcm=np.frombuffer(pcm, dtype="<i2"), voice_end=voice_end)
    return pcm, voice_end


# --- convener in its own process --------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return float("nan")


def with_settings(cfg: Path, settings: dict[str, str]) -> None:
    """Add ``section.key = value`` settings to the TOML file written by run_helpers.write_config."""
    text = cfg.read_text()
    sections: dict[str, list[str]] = {"voice": ['greeting = ""', 'filler = ""']}
    for key, value in settings.items():
        section, name = key.split(".", 1)
        sections.setdefault(section, []).append(f"{name} = {value}")
    for section, rows in sections.items():
        if f"[{section}]\n" in text:
            text = text.replace(f"[{section}]\n", f"[{section}]\n" + "\n".join(rows) + "\n", 1)
        else:
            text += f"\n[{section}]\n" + "\n".join(rows) + "\n"
    cfg.write_text(text)


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else float("nan")


TURN_LOG = re.compile(r"turn (\S+) (['\"].*['\"]): (\{.*\})\s*$")


def turn_breakdowns(log: str) -> list[dict[str, Any]]:
    """convener's per-turn stage breakdown from its 'turn ID TEXT: {...}' log lines."""
    out = []
    for row in log.splitlines():
        m = TURN_LOG.search(row)
        if m:
            with contextlib.suppress(ValueError, SyntaxError):
                out.append({"turn": m.group(1), "text": ast.literal_eval(m.group(2)),
                            "ms": ast.literal_eval(m.group(3))})
    return out


def live_breakdowns(live: dict[str, Any]) -> list[dict[str, Any]]:
    """The same breakdown from the console's live view (its waterfall has the marks of the reply,
    which come after the turn's log line): the 20 latest turns."""
    return [{"turn": t.get("turn_id"), "text": t.get("text"), "origin_at": t.get("origin_monotonic"),
             "ms": {f"{b['from']}->{b['stage']}": b["duration_ms"] for b in t.get("bars", [])}}
            for t in live.get("turns", [])]


async def idle(pid: int, below_pct: float = 15.0, timeout: float = 60.0) -> None:
    """Wait until the process used less than ``below_pct`` % of a core in two 0.5 s windows in a row."""
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and quiet < 2:
        c0 = proc_cpu_s(pid)
        await asyncio.sleep(0.5)
        quiet = quiet + 1 if (proc_cpu_s(pid) - c0) / 0.5 * 100 < below_pct else 0


def stage_ms(bd: dict[str, float], a: str, b: str) -> float | None:
    """Time from stage a to stage b in a consecutive breakdown (None when either is missing)."""
    from convener.timings import STAGES as ORDER

    present = [s for s in ORDER if any(k.startswith(s + "->") or k.endswith("->" + s) for k in bd)]
    if a not in present or b not in present:
        return None
    i, j = present.index(a), present.index(b)
    return sum(bd[f"{present[k]}->{present[k + 1]}"] for k in range(i, j))


def transcripts(db: Path) -> dict[str, list[tuple[str, str, str | None]]]:
    """room -> [(speaker, text, floor holder)] in order, from convener's SQLite transcripts."""
    out: dict[str, list[tuple[str, str, str | None]]] = {}
    if not db.exists():
        return out
    with contextlib.closing(sqlite3.connect(db)) as c:
        for room, speaker, text, holder in c.execute(
                "SELECT c.room, t.speaker, t.text, t.floor_holder FROM turns t JOIN conversations c"
                " USING (conversation_id) ORDER BY t.at, t.id"):
            out.setdefault(room, []).append((speaker, text, holder))
    return out


WARM_UP = (("What's the weather in Miami?", "weather"), ("Book a flight to Denver.", "flights"),
           ("I need a hotel in Boston.", "hotels"))


async def warm_up(creds: Any, app: str, cache: Path, pid: int) -> None:
    """One caller per agent says one request (not in REQUESTS) and hears the reply: convener in
    steady state, as a running service is (what it says itself, "Connecting you to ...", is in
    its TTS cache; the first routing and the first decodes of the process are done)."""
    from convener.tools.testcall import TestCaller

    async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password, app=app) as caller:
        legs = await asyncio.gather(*(caller.place(room=f"warm{i}") for i in range(len(WARM_UP))))
        for leg in legs:
            await leg.wait_answered()
        medias = await asyncio.gather(*(leg.open_media() for leg in legs))
        await asyncio.gather(*(leg.wait_in_bridge(timeout=15) for leg in legs))
        await idle(pid)

        async def one(media: Any, text: str, agent: str) -> None:
            pcm, _ = audio(Line(0, text, agent, "hibari"), cache)
            end = await media.say(pcm, RATE)
            heard = await media.wait_voice_after(end - 0.3, 10.0)
            if heard is not None:
                await media.wait_quiet(0.8, 20.0, since=heard)

        await asyncio.gather(*(one(m, t, a) for m, (t, a) in zip(medias, WARM_UP, strict=True)))
        for leg in legs:
            await leg.hangup()


async def one_round(creds: Any, agents: Any, n: int, rnd: int, mode: str, voices: tuple[str, ...],
                    out: Path, warm: bool = True) -> dict[str, Any]:
    import aiohttp
    from run_helpers import Convener, write_config

    from convener.tools.testcall import TestCaller

    work = out / f"n{n}-r{rnd}-{mode}"
    work.mkdir(parents=True, exist_ok=True)
    cfg, env, ops_port, _ = write_config(work, creds, agents.urls)
    with_settings(cfg, MODES[mode])
    conv = Convener(cfg, env, ops_port, work / "convener.log")
    said = lines(n, rnd, voices)
    pcms = [audio(x, out / "audio") for x in said]
    await conv.start()
    results: list[dict[str, Any]] = []
    try:
        await conv.ready(90)
        assert conv.proc is not None
        pid = conv.proc.pid
        app = f"talk-{uuid.uuid4().hex[:8]}"
        if warm:
            await warm_up(creds, app + "-w", out / "audio", pid)
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password, app=app) as caller:
            legs = await asyncio.gather(*(caller.place(room=f"talk{x.caller}") for x in said))
            for leg in legs:
                await leg.wait_answered()
            round_calls = {leg.remote_id for leg in legs}  # convener's call ids (the warm-up's are not)
            medias = await asyncio.gather(*(leg.open_media() for leg in legs))
            await asyncio.gather(*(leg.wait_in_bridge(timeout=15) for leg in legs))
            # Everyone joined; convener idle again (a new conversation embeds the agents'
            # manifests: callers speaking into that would measure set-up, not talking callers).
            await idle(pid)
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{ops_port}/metrics") as r:
                before = await r.text()  # the warm-up's decodes are not the round's
            rss = [proc_rss_mb(pid)]
            cpu0, t0 = proc_cpu_s(pid), time.monotonic()

            async def talk(media: Any, pcm: bytes, voice_end: float) -> dict[str, Any]:
                end_of_audio = await media.say(pcm, RATE)
                started = end_of_audio - len(pcm) / 2 / RATE
                heard = await media.wait_voice_after(started + 0.25, len(pcm) / 2 / RATE + 8.0)
                if heard is not None:
                    await media.wait_quiet(1.0, 20.0, since=heard)
                return {"started": started, "voice_end": started + voice_end, "heard": heard}

            async def sample() -> None:
                while True:
                    await asyncio.sleep(0.25)
                    rss.append(proc_rss_mb(pid))

            sampler = asyncio.create_task(sample())
            try:
                timed = await asyncio.gather(*(talk(m, p, ve) for m, (p, ve) in zip(medias, pcms, strict=True)))
            finally:
                sampler.cancel()
            wall, cpu = time.monotonic() - t0, proc_cpu_s(pid) - cpu0
            for x, m, t, leg in zip(said, medias, timed, legs, strict=True):
                pcm = m.audio_between(t["heard"] - 0.05, time.monotonic()) if t["heard"] is not None else b""
                np.save(work / f"heard{x.caller}.npy", np.frombuffer(pcm, dtype="<i2"))
                lat = None if t["heard"] is None else round((t["heard"] - t["voice_end"]) * 1000, 1)
                late = list(m.pacer.stats.lateness_ms)
                results.append({"caller": x.caller, "text": x.text, "agent": x.agent, "voice": x.voice,
                                "latency_ms": lat, "call": leg.remote_id, "voice_end_at": t["voice_end"],
                                "heard_at": t["heard"],
                                "say_late_max_ms": round(max(late), 1) if late else None})
            await asyncio.sleep(0.5)  # the last marks
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{ops_port}/metrics") as r:
                    metrics = await r.text()
                async with http.get(f"http://127.0.0.1:{ops_port}/console/api/live") as r:
                    live = await r.json()
    finally:
        await conv.stop()
    await asyncio.sleep(0.5)
    log = (work / "convener.log").read_text(errors="replace")
    return {"n": n, "round": rnd, "mode": mode, "warm": warm, "callers": results, "cpu_pct": 100 * cpu / wall,
            "rss_mb": max(rss), "wall_s": wall,
            "spec_decodes": metric(metrics, "convener_speculative_decodes_total")
            - metric(before, "convener_speculative_decodes_total"),
            "spec_hits": metric(metrics, "convener_speculative_hits_total")
            - metric(before, "convener_speculative_hits_total"),
            "turns": [t for t in live_breakdowns(live) if str(t["turn"]).rsplit("-", 1)[0] in round_calls],
            "logged_turns": turn_breakdowns(log),
            "transcript": transcripts(work / "transcripts.sqlite3"),
            "dir": str(work)}


AGENTS = """
import asyncio, json
from convener_agents.serve import start_agents
async def main():
    agents = await start_agents(ports={"flights": 0, "hotels": 0, "weather": 0})
    print(json.dumps(agents.urls), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@dataclass
class Agents:
    urls: dict[str, str]


async def play(ns: list[int], rounds: int, modes: list[str], voices: tuple[str, ...], out: Path,
               first_round: int = 0, warm: bool = True) -> None:
    from convener.sandbox.runtime import Sandbox

    sb = Sandbox()
    if not sb.ari_ready(sb.credentials()):
        raise SystemExit("the sandbox Asterisk is not up: `flock /tmp/convener-asterisk.lock convener sandbox up`")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for n in ns:  # every caller's audio made before any round
        for rnd in range(first_round, first_round + rounds):
            for x in lines(n, rnd, voices) + [Line(i, t, a, "hibari") for i, (t, a) in enumerate(WARM_UP)]:
                await asyncio.to_thread(audio, x, out / "audio")
    # The agents in a process of their own: the harness's loop, busy pacing N callers' audio,
    # must not delay their answers.
    agents_proc = await asyncio.create_subprocess_exec(sys.executable, "-c", AGENTS, stdout=asyncio.subprocess.PIPE)
    assert agents_proc.stdout is not None
    agents = Agents(json.loads(await asyncio.wait_for(agents_proc.stdout.readline(), 60)))
    try:
        for n in ns:
            for rnd in range(first_round, first_round + rounds):
                order = modes if rnd % 2 == 0 else modes[::-1]  # alternate who goes first
                for mode in order:
                    r = await one_round(sb.credentials(), agents, n, rnd, mode, voices, out, warm)
                    (out / f"n{n}-r{rnd}-{mode}.json").write_text(json.dumps(r))
                    lat = [c["latency_ms"] for c in r["callers"] if c["latency_ms"] is not None]
                    print(f"  N={n} round {rnd} {mode:<12} p50 {pct(lat, 50):5.0f} ms  p95 {pct(lat, 95):5.0f} ms"
                          f"  heard {len(lat)}/{n}  CPU {r['cpu_pct']:.0f} %  spec {r['spec_decodes']:.0f}"
                          f"/{r['spec_hits']:.0f} used  load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    finally:
        agents_proc.terminate()
        await agents_proc.wait()


# --- the check, after the rounds ----------------------------------------------------------------


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("°", " degrees "))


def recall(expected: str, heard: str) -> float:
    """Share of the expected words found in what was heard (bag of words, each used once)."""
    from collections import Counter

    want, got = Counter(words(expected)), Counter(words(heard))
    total = sum(want.values())
    return sum(min(c, got[w]) for w, c in want.items()) / total if total else 0.0


async def check(out: Path) -> list[dict[str, Any]]:
    """Recognise what each caller heard (once; cached in check.json) and judge each reply."""
    from convener.config import load_config
    from convener.speech.registry import build_asr

    rounds = [json.loads(f.read_text()) for f in sorted(out.glob("n*-r*-*.json"))]  # noqa: ASYNC240
    cache_f = out / "check.json"
    cache = json.loads(cache_f.read_text()) if cache_f.exists() else {}
    asr = None
    for r in rounds:
        for c in r["callers"]:
            key = f"{r['dir']}/{c['caller']}"
            if key not in cache:
                pcm = np.load(Path(r["dir"]) / f"heard{c['caller']}.npy").tobytes()
                if len(pcm) < RATE // 5:
                    cache[key] = ""
                else:
                    if asr is None:
                        asr = build_asr(load_config(None, env={}).speech)
                    cache[key] = (await asr.transcribe_pcm(pcm, RATE)).text.strip()
            c["heard_text"] = cache[key]
            lines_ = r["transcript"].get(f"talk{c['caller']}", [])
            replies = [(s, t, h) for s, t, h in lines_ if h]  # agents' lines carry the floor holder
            c["replies"] = replies
            agents = [s for s, _, _ in replies if s.lower() != "convener"]  # not its "Connecting you to ..."
            c["answered_by"] = agents[0] if agents else None
            c["reply_text"] = " ".join(t for _, t, _ in replies)
            c["recall"] = recall(c["reply_text"], c["heard_text"]) if replies else 0.0
            c["right_agent"] = bool(agents) and all(c["agent"] in a.lower() for a in agents)
            c["fits"] = c["latency_ms"] is not None and c["right_agent"] and c["recall"] >= 0.6
    cache_f.write_text(json.dumps(cache))
    return rounds


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def report(rounds: list[dict[str, Any]]) -> None:
    ns = sorted({r["n"] for r in rounds})
    modes = [m for m in MODES if any(r["mode"] == m for r in rounds)]
    print("talking callers: end of voice → first reply audio at the caller; medians over the rounds "
          "of each round's p50 / p95; CPU % of one core and peak RSS of the convener process")
    print("    N  mode          rounds  p50 ms  p95 ms  (p95 per round)          fits     CPU%  RSS MB"
          "  spec/turn  used")
    for n in ns:
        for mode in modes:
            rs = [r for r in rounds if r["n"] == n and r["mode"] == mode]
            if not rs:
                continue
            p50s, p95s = [], []
            for r in rs:
                lat = [c["latency_ms"] for c in r["callers"] if c["latency_ms"] is not None]
                p50s.append(pct(lat, 50))
                p95s.append(pct(lat, 95) if len(lat) == n else float("inf"))  # a missing reply: no p95
            fits = sum(c["fits"] for r in rs for c in r["callers"])
            total = sum(len(r["callers"]) for r in rs)
            turns = sum(len(r["turns"]) for r in rs) or 1
            spec = sum(r["spec_decodes"] for r in rs) / turns
            used = sum(r["spec_hits"] for r in rs) / turns
            print(f"{n:5d}  {mode:<12} {len(rs):6d} {med(p50s):7.0f} {med(p95s):7.0f}  "
                  f"({', '.join(f'{x:.0f}' for x in p95s):<22}) {fits:4d}/{total:<4d}"
                  f" {med([r['cpu_pct'] for r in rs]):6.0f} {med([r['rss_mb'] for r in rs]):7.0f}"
                  f" {spec:9.2f} {used:5.2f}")
    print("\nconvener's stage breakdown (TurnTimings of every turn, p50 / p95 ms over all rounds):")
    for n in ns:
        for mode in modes:
            bds = [t["ms"] for r in rounds if r["n"] == n and r["mode"] == mode for t in r["turns"]]
            if not bds:
                continue
            cells = []
            for name, a, b in STAGES:
                vals = [v for bd in bds if (v := stage_ms(bd, a, b)) is not None]
                if vals:
                    cells.append(f"{name} {pct(vals, 50):.0f}/{pct(vals, 95):.0f}")
            e2e = [v for bd in bds if (v := stage_ms(bd, "speech_end", "first_audio_out")) is not None]
            print(f"{n:5d}  {mode:<12} " + "  ".join(cells) + f"  | in convener {pct(e2e, 50):.0f}/{pct(e2e, 95):.0f}")
    print("\nthe caller's wait in three parts, on one clock (convener's marks are on the host's monotonic "
          "clock): end of voice → convener's speech_end (Asterisk in, the VAD's tail, the frame queue) | "
          "speech_end → first frame out (convener) | first frame out → heard (Asterisk out, the caller's "
          "reader); p50 / p95 ms; the test callers' own send lateness p95 of each caller's max")
    for n in ns:
        for mode in modes:
            parts = [split_wait(r) for r in rounds if r["n"] == n and r["mode"] == mode]
            rows = [row for p in parts for row in p]
            if not rows:
                continue
            cells = [f"{name} {pct([x[i] for x in rows], 50):.0f}/{pct([x[i] for x in rows], 95):.0f}"
                     for i, name in enumerate(("in", "convener", "back"))]
            late = [c["say_late_max_ms"] for r in rounds if r["n"] == n and r["mode"] == mode
                    for c in r["callers"] if c.get("say_late_max_ms") is not None]
            print(f"{n:5d}  {mode:<12} {len(rows):3d} turns  " + "  ".join(cells)
                  + f"  | callers' send late max p95 {pct(late, 95):.0f}")
    bad = [(r, c) for r in rounds for c in r["callers"] if not c["fits"]]
    if bad:
        print("\nreplies that do not fit:")
        for r, c in bad[:30]:
            print(f"  N={r['n']} r{r['round']} {r['mode']} caller {c['caller']} ({c['voice']}) {c['text']!r}: "
                  f"latency {c['latency_ms']}, expected {c['agent']}, answered by {c['answered_by']}, "
                  f"recall {c['recall']:.2f}; heard {c['heard_text'][:80]!r}")


def split_wait(r: dict[str, Any]) -> list[tuple[float, float, float]]:
    """Per caller of a round: (in, convener, back) ms, where the caller's wait went. The turn is
    the caller's call's last one whose first frame went out before the caller heard the reply."""
    rows = []
    for c in r["callers"]:
        if c.get("heard_at") is None or "call" not in c:
            continue
        best = None
        for t in r["turns"]:
            e2e = stage_ms(t["ms"], "speech_end", "first_audio_out")
            if t.get("origin_at") is None or e2e is None or str(t["turn"]).rsplit("-", 1)[0] != c["call"]:
                continue
            out_at = t["origin_at"] + e2e / 1000
            if out_at <= c["heard_at"] + 0.005 and (best is None or out_at > best[1]):
                best = (t["origin_at"], out_at)
        if best is not None:
            rows.append(((best[0] - c["voice_end_at"]) * 1000, (best[1] - best[0]) * 1000,
                         (c["heard_at"] - best[1]) * 1000))
    return rows


def main(args: Any) -> int:
    if args.talking_report:
        report(asyncio.run(check(args.talking_report)))
        return 0
    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    voices = VOICES + (ESPEAK_VOICES if args.espeak else ())
    ns = [int(x) for x in args.talking.split(",")]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"talking callers N={ns}, {args.rounds} round(s) from round {args.first_round}, modes {modes}, "
          f"voices {', '.join(voices)}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; results in {out}")
    asyncio.run(play(ns, args.rounds, modes, voices, out, args.first_round, not args.cold))
    if not args.no_check:
        report(asyncio.run(check(out)))
    return 0
