"""Whisper decodes at once: how many CTranslate2 replicas, how many threads each (issue 15).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/asr_parallel.py [--turns 16] [--rounds 5] [--beams 1,5]

Requests spoken by flite (Debian's flite), through the phone channel (8 kHz G.711 with 20 dB
noise), are decoded through the service's own path (``WhisperAsr.transcribe_pcm``: the speech
thread pool, the short encoder window, the conversation's bias prompt) with tiny.en, in each
variant of ``speech.whisper.parallel`` x ``cpu_threads``:

- **alone**: one turn at a time: the latency of a caller on a quiet system;
- **N at once**: N turns submitted together, as N callers ending their turns together: p50,
  p95 and last of the per-turn latency (submission → text).

Variants alternate round by round in one process; medians over the rounds. Texts are compared
with the first variant's: replicas must not change what is heard. ``--beams 1,5`` compares beam
sizes instead (the default replicas and threads): what beam search costs a crowd.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from convener.audio import resample_pcm16
from convener.speech import workers
from convener.speech.bias import BiasContext
from convener.speech.channel import add_noise, through_phone
from convener.speech.settings import WhisperSettings
from convener.speech.whisper_asr import WhisperAsr

REQUESTS = (
    "What's the weather like in Boston today?",
    "Book me a flight to Chicago next Tuesday.",
    "I need a hotel room in Seattle for two nights.",
    "Is it going to snow in Denver this weekend?",
    "Find me a cheap flight from Austin to Miami.",
    "Can you reserve a hotel near the beach in San Diego?",
    "What will the temperature be in Phoenix tomorrow?",
    "I want to fly to London on Friday.",
)
BIAS = BiasContext(terms=("Boston", "Chicago", "Seattle", "Denver", "Austin", "Miami", "San Diego",
                          "Phoenix", "London", "Flights", "Hotels", "Weather"), vocabulary_count=9)


def speak(text: str, folder: Path, i: int) -> bytes:
    """flite's voice, 8 kHz PCM16 through the phone channel with 20 dB noise."""
    out = folder / f"{i}.wav"
    subprocess.run(["flite", "-t", text, "-o", str(out)], check=True)
    with wave.open(str(out)) as w:
        pcm = resample_pcm16(w.readframes(w.getnframes()), w.getframerate(), 8000)
    return through_phone(add_noise(pcm, 20.0, seed=i), 8000)


async def alone(asr: WhisperAsr, clips: list[bytes]) -> tuple[list[float], list[str]]:
    times, texts = [], []
    for pcm in clips:
        t0 = time.perf_counter()
        final = await asr.transcribe_pcm(pcm, 8000, bias=BIAS)
        times.append(time.perf_counter() - t0)
        texts.append(final.text)
    return times, texts


async def at_once(asr: WhisperAsr, clips: list[bytes]) -> list[float]:
    t0 = time.perf_counter()

    async def one(pcm: bytes) -> float:
        await asr.transcribe_pcm(pcm, 8000, bias=BIAS)
        return time.perf_counter() - t0

    return list(await asyncio.gather(*(one(p) for p in clips)))


def q(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=16, help="turns submitted at once")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--beams", default="",
                    help="compare beam sizes instead (e.g. 1,5), each with the default parallel and threads")
    args = ap.parse_args()
    cores = workers.cores()
    if args.beams:
        variants = {f"beam {b}": WhisperSettings(model="tiny.en", beam_size=int(b))
                    for b in args.beams.split(",")}
    else:
        variants = {f"parallel {p}, threads {t}": WhisperSettings(model="tiny.en", parallel=p, cpu_threads=t)
                    for p, t in ((1, cores), (cores, cores), (cores, 1))}
    with tempfile.TemporaryDirectory() as tmp:
        clips = [speak(t, Path(tmp), i) for i, t in enumerate(REQUESTS)]
    crowd = [clips[i % len(clips)] for i in range(args.turns)]
    asrs = {name: WhisperAsr(s) for name, s in variants.items()}
    for asr in asrs.values():
        await asr.warm()
    print(f"{cores} cores, speech pool {workers.pool()._max_workers} threads, {len(clips)} requests "
          f"({sum(len(c) for c in clips) / 16000 / len(clips):.1f} s each), {args.turns} at once, "
          f"{args.rounds} rounds", flush=True)
    res: dict[str, dict[str, list[float]]] = {n: {"alone": [], "p50": [], "p95": [], "last": []} for n in asrs}
    texts: dict[str, list[str]] = {}
    for r in range(args.rounds):
        for name, asr in asrs.items():
            times, heard = await alone(asr, clips)
            texts.setdefault(name, heard)
            crowd_t = await at_once(asr, crowd)
            res[name]["alone"].append(statistics.median(times))
            res[name]["p50"].append(q(crowd_t, 0.5))
            res[name]["p95"].append(q(crowd_t, 0.95))
            res[name]["last"].append(max(crowd_t))
        print(f"round {r + 1}: " + "; ".join(f"{n}: alone {res[n]['alone'][-1] * 1000:.0f}, "
                                             f"last {res[n]['last'][-1] * 1000:.0f}" for n in asrs), flush=True)
    first = next(iter(texts.values()))
    print(f"\nmedians of {args.rounds} rounds, ms       alone p50   {args.turns} at once: p50    p95   last"
          "   texts as the first")
    for name, r in res.items():
        same = sum(a == b for a, b in zip(first, texts[name], strict=True))
        print(f"{name:34s} {statistics.median(r['alone']) * 1000:9.0f}   {statistics.median(r['p50']) * 1000:14.0f}"
              f" {statistics.median(r['p95']) * 1000:6.0f} {statistics.median(r['last']) * 1000:6.0f}"
              f"   {same}/{len(first)}")


if __name__ == "__main__":
    asyncio.run(main())
