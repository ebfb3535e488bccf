"""Benchmark: an LLM agent on the phone, end of caller speech → first reply audio at the caller.

The whole product runs in this process on the sandbox Asterisk (offline speech), with one LLM
agent served from a TOML file (as ``convener agents serve --llm FILE`` does) and a local
chat-completions server (tests/fakes/openai_server.py) that sends its first token after 300 ms
and then 30 tokens per second. The agent answers convener's POST with its first sentence and
streams the rest.

For each turn, on the caller's clock and convener's turn marks (convener.timings):

  latency      end of the caller's voice → first reply audio heard at the caller
  hearing      the caller's last frame → convener's end of turn, and the ASR (not the LLM path)
  model        the model's own time to the first sentence: first token + the sentence's other
               tokens at the server's rate (the ideal agent would answer exactly then)
  tts          the first synthesised chunk of the first sentence
  overhead     latency - hearing - model - tts: what convener adds on the LLM path (floor,
               envelopes both ways, the agent's HTTP and sentence cutting, pacer, RTP to the
               caller). Goal: at most 150 ms at p95.
  ideal        hearing + model + tts (what the caller would wait with zero overhead)

With ``--convener llm`` the same model (same delays) also decides whom to invite
([ofp] convener = "llm"); the floor stage then shows what the LLM convener costs.

Run: .venv/bin/python bench/llm_latency.py [--turns 12] [--runs 3] [--convener llm]
(one run per call of the script when the sandbox is shared: flock /tmp/convener-asterisk.lock)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the local model server

from latency import pct  # bench/latency.py: the same percentiles

from convener.config import load_config
from convener.sandbox.runtime import Sandbox
from convener.tools.callcheck import VoiceCaller, spoken_call
from fakes.llm_line import LlmLine
from fakes.openai_server import tokens

FIRST_TOKEN_S = 0.300
TOKENS_PER_S = 30.0
FIRST = "The Blue Door on Main Street is a good choice."
ANSWER = FIRST + " It opens at six."
SCRIPT = ("I would like a restaurant for dinner tonight", "Is it far from the hotel",
          "Do they have vegetarian food", "Thank you")


def row(name: str, values: list[float], note: str = "") -> str:
    if not values:
        return f"  {name:<10} (no data)"
    return (f"  {name:<10} p50 {pct(values, 50):6.0f} ms  p95 {pct(values, 95):6.0f} ms  "
            f"mean {statistics.fmean(values):6.0f} ms  n={len(values)}  {note}").rstrip()


def model_ms() -> float:
    """When the ideal agent has its first sentence: the first token, then the others at the rate."""
    return (FIRST_TOKEN_S + (len(tokens(FIRST)) - 1) / TOKENS_PER_S) * 1000


async def one_run(turns: int, convener: str) -> dict[str, list[float]]:
    creds = await asyncio.to_thread(Sandbox().up)
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    config.voice.greeting = ""
    config.ofp.announce_handover = False  # the first audio is the agent's first sentence
    results: list = []
    with tempfile.TemporaryDirectory() as tmp:
        async with LlmLine(config, Path(tmp), reply=ANSWER, first_token_delay=FIRST_TOKEN_S,
                           tokens_per_second=TOKENS_PER_S, convener=convener) as line:
            voice = VoiceCaller(config)
            await voice.warm()
            while len(results) < turns:
                script = list(SCRIPT[: turns - len(results)])
                report = await spoken_call(config, script, voice=voice, quiet_s=1.0)
                results.extend(report.turns)
                print(f"  {len(results)}/{turns} turns", file=sys.stderr, flush=True)
            assert line.stack is not None and line.stack.app is not None
            marks = [t for t, _ in line.stack.app.turns]
    out: dict[str, list[float]] = {k: [] for k in ("latency", "hearing", "tts", "overhead", "ideal", "floor",
                                                   "agent", "out", "transport")}
    if len(marks) != len(results):
        print(f"  {len(marks)} convener turns for {len(results)} caller turns: not paired", file=sys.stderr)
        return out
    llm = model_ms()
    for m, r in zip(marks, results, strict=True):
        need = ("speech_end", "end_of_turn", "asr_final", "envelope_sent", "reply_received", "tts_first_chunk",
                "first_audio_out")
        if r.latency_ms is None or r.heard_at is None or any(k not in m.marks for k in need):
            continue
        hearing = (m.marks["asr_final"] - r.ended_at) * 1000
        tts = m.between("reply_received", "tts_first_chunk") * 1000
        out["latency"].append(r.latency_ms)
        out["hearing"].append(hearing)
        out["tts"].append(tts)
        out["ideal"].append(hearing + llm + tts)
        out["overhead"].append(r.latency_ms - hearing - llm - tts)
        out["floor"].append(m.between("asr_final", "envelope_sent") * 1000)
        out["agent"].append(m.between("envelope_sent", "reply_received") * 1000 - llm)
        out["out"].append(m.between("tts_first_chunk", "first_audio_out") * 1000)
        out["transport"].append((r.heard_at - m.marks["first_audio_out"]) * 1000)
    return out


async def main(turns: int, runs: int, convener: str) -> int:
    logging.basicConfig(level=logging.WARNING)
    per_run: list[dict[str, list[float]]] = []
    for i in range(runs):
        print(f"run {i + 1}/{runs}", file=sys.stderr, flush=True)
        res = await one_run(turns, convener)
        per_run.append(res)
        print(f"run {i + 1}: latency p50 {pct(res['latency'], 50):.0f} p95 {pct(res['latency'], 95):.0f} ms; "
              f"overhead p50 {pct(res['overhead'], 50):.0f} p95 {pct(res['overhead'], 95):.0f} ms", flush=True)
    print(f"LLM agent: first token {FIRST_TOKEN_S * 1000:.0f} ms, {TOKENS_PER_S:.0f} tokens/s; the first sentence "
          f"has {len(tokens(FIRST))} tokens, so the model has it after {model_ms():.0f} ms")
    print(f"convener: {convener}" + (" (the same model decides, asked ahead with the speculative transcript, "
                                     "600 ms budget)" if convener == "llm" else " (the embedded router)"))
    print(f"{runs} run(s) of {turns} turns; pooled:")
    pooled = {k: [v for r in per_run for v in r[k]] for k in per_run[0]}
    print(row("latency", pooled["latency"], "end of caller voice → first reply audio at the caller"))
    print(row("ideal", pooled["ideal"], "hearing + model + tts"))
    print(row("hearing", pooled["hearing"], "caller's last frame → end of turn → ASR final"))
    print(row("tts", pooled["tts"], "first chunk of the first sentence"))
    print(row("overhead", pooled["overhead"], "convener's own (goal: p95 <= 150 ms)"))
    print("  of which:")
    print(row("floor", pooled["floor"], "ASR final → envelope sent"))
    print(row("agent", pooled["agent"], "envelope sent → reply received, minus the model's time"))
    print(row("out", pooled["out"], "first TTS chunk → first frame out"))
    print(row("transport", pooled["transport"], "first frame out → heard at the caller"))
    if runs > 1:
        p95s = [pct(r["overhead"], 95) for r in per_run if r["overhead"]]
        p50s = [pct(r["latency"], 50) for r in per_run if r["latency"]]
        print(f"median over runs: overhead p95 {statistics.median(p95s):.0f} ms (runs: "
              f"{', '.join(f'{v:.0f}' for v in p95s)}); latency p50 {statistics.median(p50s):.0f} ms")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="LLM agent: end of caller speech → first reply audio at the caller")
    ap.add_argument("--turns", type=int, default=12)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--convener", choices=("router", "llm"), default="router",
                    help="llm: [ofp] convener = \"llm\" with the same local model deciding")
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.turns, a.runs, a.convener)))
