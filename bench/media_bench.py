"""Media path benchmark: CPU cost per call and how many concurrent calls one event loop carries.

Run: ``.venv/bin/python bench/media_bench.py`` (options: ``--calls 1,50,100``, ``--seconds 4``,
``--vad energy|silero``, ``--format ulaw|slin16``).

Part 1 (micro, one thread, no event loop): per 20 ms frame,

- inbound: RTP parse + source/SSRC/flood checks + jitter buffer + decode + ``AudioFrame`` +
  turn detection with a VAD (``energy``: numpy RMS; ``silero``: convener.speech.vad.SileroVad);
- outbound: TTS chunks at 24 kHz resampled by ``soxr.ResampleStream`` + pacer bookkeeping +
  encode + RTP build + ``sendto`` on loopback.

Part 2 (macro): N simulated calls in ONE asyncio loop, each with a real ``RtpTransport`` (UDP
on loopback), a consumer running the turn detector on every inbound frame, and a ``Pacer``
sending a continuous reply fed with 24 kHz TTS chunks every 100 ms. A separate process plays
Asterisk: it sends each call one RTP packet every 20 ms and drains our packets. Printed per N:
outgoing frame lateness (p50/p99/max, ms after the frame's deadline; negative = inside the 1 ms
early window), CPU of our process (% of one core), inbound frames per call per second, drops,
and, as a reference for host noise, the p99/max lateness of a bare 20 ms asyncio timer measured
just before the round plus the load average. The capacity is the largest N whose max
lateness stays <= 5 ms (and the largest with p99 <= 5 ms).

Measured 2026-11-26 on the shared 2-vCPU dev VM while other engineers' test runs kept its load
average at 3-4 (so our loop was regularly descheduled; a bare asyncio timer alone showed p99
2-30 ms / max 2-50 ms lateness between runs):

- micro, energy VAD: inbound 23-58 µs/frame, outbound 13-42 µs/frame → 0.2-0.5 % of one core
  per call (the spread is the host load); with convener.speech.vad.SileroVad inbound is
  ~230-320 µs/frame → ~1.4-1.7 % of one core per call: the VAD dominates the per-call cost.
- macro (ulaw, energy VAD): N=1 p99 1.7 ms / max 3.1 ms; N=25 p99 4.4 / max 10.2 ms (CPU 22 %);
  N=50 p99 9.6 / max 34 ms (CPU 39 %); N=100 p50 10 ms, p99 63 ms: the loop falls behind
  (CPU 52 % of one core = what the loaded VM gave us). The event-loop cost per call is
  ~0.5-0.8 % of a core (≈3× the pure per-frame work: datagram callbacks, task wake-ups, timers).
- macro (slin16, energy VAD): N=1 p99 2.1 / max 3.6 ms; N=25 p99 3.7 / max 5.5 ms (0.08 % of
  frames > 5 ms, CPU 23 %); N=50 p99 6.8 / max 59 ms; N=100 p99 39 ms (CPU 47 %).
- Capacity on this loaded VM: ~25 calls with p99 <= 5 ms; max <= 5 ms held only for 1 call
  (host noise alone exceeds 5 ms). Re-measure on a quiet machine before sizing production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import multiprocessing as mp
import os
import socket
import struct
import sys
import time
from multiprocessing.connection import Connection

import numpy as np

from convener.media.formats import leg_format
from convener.media.pacer import Pacer, PacerCore
from convener.media.rtp import build_rtp
from convener.media.rtp_transport import PortAllocator, RtpReceiver, RtpSender, RtpTransport
from convener.media.settings import MediaSettings
from convener.media.transport import TransportStats
from convener.media.turns import TurnDetector

FRAME_S = 0.02


def energy_vad(pcm16: bytes, sample_rate: int) -> float:
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    return 1.0 if len(x) and float(np.sqrt(np.mean(x * x))) > 500.0 else 0.0


_BATCHES: dict[int, object] = {}


def silero_batch(rate: int):
    """The process's one batched Silero (convener.speech.vad_batch) at ``rate``."""
    from convener.speech.vad_batch import SileroBatch

    if rate not in _BATCHES:
        _BATCHES[rate] = SileroBatch(rate)
    return _BATCHES[rate]


def make_vad(kind: str, rate: int):
    if kind == "batched":  # Silero batched across calls, run off the loop (vad_batch)
        return silero_batch(rate).stream()
    if kind == "silero":
        from convener.speech.vad import SileroVad  # the speech engineer's VAD

        return SileroVad(rate)
    return energy_vad


def speech_like(rate: int, seconds: float = 2.0) -> np.ndarray:
    """1 s of a 300 Hz tone with vibrato, then 1 s of quiet noise (a turn every 2 s)."""
    n = int(rate * seconds)
    t = np.arange(n) / rate
    x = 6000 * np.sin(2 * np.pi * (300 + 30 * np.sin(2 * np.pi * 3 * t)) * t)
    x[n // 2:] = np.random.default_rng(0).normal(0, 30, n - n // 2)
    return x.astype("<i2")


def tts_chunk(ms: int = 100, rate: int = 24000) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (5000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


# --- part 1 ----------------------------------------------------------------------------------


def micro(fmt_name: str, vad_kind: str, n: int = 5000) -> tuple[float, float]:
    settings = MediaSettings(format=fmt_name)  # type: ignore[arg-type]
    leg = leg_format(fmt_name, "rtp")
    rate = leg.sample_rate
    audio = speech_like(rate)
    spf = leg.samples_per_frame
    payloads = [leg.encode(audio[i:i + spf].tobytes()) for i in range(0, len(audio), spf)]
    packets = [build_rtp(leg.payload_type, i & 0xFFFF, i * spf, 4242, payloads[i % len(payloads)])
               for i in range(n)]
    addr = ("127.0.0.1", 5555)
    rx = RtpReceiver(leg, settings, TransportStats())
    rx.set_remote(*addr, 0.0)
    det = TurnDetector(make_vad(vad_kind, rate), settings)
    gc.collect()
    now = 0.0
    t0 = time.perf_counter()
    for p in packets:
        now += FRAME_S
        for f in rx.feed(p, addr, now):
            det.process(f)
    in_us = (time.perf_counter() - t0) / n * 1e6

    core = PacerCore(rate, warmup_ms=40)
    sender = RtpSender(leg, clock=lambda: now)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = sink.getsockname()
    chunk = tts_chunk(100)
    now = 0.0
    sent = 0
    t0 = time.perf_counter()
    for i in range(n):
        if i % 5 == 0:
            core.feed("r", chunk, 24000)  # 100 ms of 24 kHz TTS every 5 frames
        now += FRAME_S
        due = core.pop_due(now)
        if due is not None:
            src.sendto(sender.packet(due[1]), dest)
            sent += 1
        if i % 50 == 0:
            with contextlib.suppress(BlockingIOError):
                while True:
                    sink.recv(2048)
    out_us = (time.perf_counter() - t0) / max(sent, 1) * 1e6
    sink.close()
    src.close()
    return in_us, out_us


# --- part 2: Asterisk simulator (child process) ----------------------------------------------


def asterisk_sim(conn: Connection, fmt_name: str) -> None:
    leg = leg_format(fmt_name, "rtp")
    audio = speech_like(leg.sample_rate)
    spf = leg.samples_per_frame
    payloads = [leg.encode(audio[i:i + spf].tobytes()) for i in range(0, len(audio), spf)]
    hdr = struct.Struct("!BBHII")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    while True:
        msg = conn.recv()
        if msg[0] == "exit":
            return
        ports: list[int] = msg[1]
        conn.send(sock.getsockname())
        seq = 0
        received = 0
        nxt = time.monotonic()
        # Real channels are not phase-aligned: call k sends in sub-slot k % SLOTS of each
        # 20 ms period (2 ms apart), instead of all N packets in one burst.
        slots = 10
        sub = 0
        while not conn.poll():
            payload = payloads[seq % len(payloads)]
            for k in range(sub, len(ports), slots):
                pkt = hdr.pack(0x80, leg.payload_type, seq & 0xFFFF, (seq * spf) & 0xFFFFFFFF,
                               1000 + k) + payload
                with contextlib.suppress(BlockingIOError):
                    sock.sendto(pkt, ("127.0.0.1", ports[k]))
            with contextlib.suppress(BlockingIOError):
                while True:
                    sock.recv(4096)
                    received += 1
            sub += 1
            if sub == slots:
                sub = 0
                seq += 1
            nxt += FRAME_S / slots
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
        conn.recv()  # "stop"
        conn.send(received)


async def timer_baseline(seconds: float = 2.0) -> tuple[float, float]:
    """p99/max lateness (ms) of a bare 20 ms asyncio timer: what the host alone costs."""
    loop = asyncio.get_running_loop()
    lat = []
    nxt = loop.time() + FRAME_S
    for _ in range(int(seconds / FRAME_S)):
        fut = loop.create_future()
        loop.call_at(nxt, fut.set_result, None)
        await fut
        lat.append((loop.time() - nxt) * 1000)
        nxt += FRAME_S
    a = np.array(lat)
    return float(np.percentile(a, 99)), float(a.max())


async def macro_round(conn: Connection, n: int, seconds: float, fmt_name: str,
                      vad_kind: str) -> dict[str, float]:
    settings = MediaSettings(format=fmt_name, rtp_port_min=31000, rtp_port_max=31999)  # type: ignore[arg-type]
    alloc = PortAllocator(settings.rtp_port_min, settings.rtp_port_max)
    transports = [RtpTransport(settings, allocator=alloc) for _ in range(n)]
    for t in transports:
        await t.start()
    conn.send(("start", [t.local_port for t in transports]))
    addr = conn.recv()
    for t in transports:
        t.set_remote(*addr)
    rate = transports[0].sample_rate
    pacers = []
    tasks = []
    chunk = tts_chunk(100)
    turns = [0]

    async def consume(t: RtpTransport) -> None:
        vad = make_vad(vad_kind, rate)
        det = TurnDetector(vad, settings)
        try:
            async for f in t.frames():
                turns[0] += len(det.process(f))
        finally:
            if hasattr(vad, "close"):
                vad.close()

    if vad_kind == "batched":
        tasks.append(asyncio.create_task(silero_batch(rate).run(FRAME_S)))

    rng = np.random.default_rng(1)

    async def feed(p: Pacer, phase: float) -> None:
        await asyncio.sleep(phase)  # replies start at arbitrary times, not all at once
        while True:
            p.feed("reply", chunk, 24000)
            await asyncio.sleep(0.1)

    for t in transports:
        p = Pacer(PacerCore(rate, warmup_ms=40, late_ms=settings.pacer_late_ms), t.send)
        p.start()
        pacers.append(p)
        tasks.append(asyncio.create_task(consume(t)))
        tasks.append(asyncio.create_task(feed(p, float(rng.uniform(0, FRAME_S)))))
    await asyncio.sleep(1.0)  # warm up
    for p in pacers:
        p.core.stats.lateness_ms.clear()
    in0 = sum(t.stats.frames_in for t in transports)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
    frames_in = (sum(t.stats.frames_in for t in transports) - in0) / seconds / n
    lat = np.concatenate([np.fromiter(p.core.stats.lateness_ms, float) for p in pacers])
    conn.send(("stop",))
    received = conn.recv()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for p in pacers:
        await p.close()
    drops = sum(t.stats.dropped_flood + t.stats.dropped_queue_full + t.stats.lost
                for t in transports)
    for t in transports:
        await t.close()
    return {
        "n": n, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
        "max": float(lat.max()), "late_pct": float((lat > 5.0).mean() * 100), "cpu": cpu,
        "in_fps": frames_in, "out_fps": len(lat) / seconds / n, "drops": drops,
        "asterisk_got": received, "turn_events": turns[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="1,25,50,100,150,200,300,400")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--format", default="ulaw", choices=("ulaw", "slin16"))
    ap.add_argument("--vad", default="energy", choices=("energy", "silero", "batched"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the per-call late-frame warnings are summarised

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, format {args.format}, "
          f"VAD {args.vad}, load average before: {os.getloadavg()[0]:.2f}")
    for fmt in ("ulaw", "slin16"):
        in_us, out_us = micro(fmt, args.vad)
        per_call = (in_us + out_us) / (FRAME_S * 1e6) * 100
        print(f"[micro {fmt:6}] inbound {in_us:6.1f} µs/frame   outbound {out_us:6.1f} µs/frame"
              f"   => {per_call:.2f} % of one core per call (both directions, 50 frames/s each)")

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=asterisk_sim, args=(child, args.format), daemon=True)
    proc.start()
    print("[macro] N calls in one event loop, RTP on loopback, Asterisk simulated in a "
          "second process (calls' packets spread over the 20 ms period)")
    print("    N   late p50    p99     max  >5ms%   CPU%  in/s/call out/s/call  drops  turns"
          "   | bare-timer p99/max, load")
    best_max = best_p99 = 0
    try:
        for n in (int(x) for x in args.calls.split(",")):
            b99, bmax = asyncio.run(timer_baseline())
            r = asyncio.run(macro_round(parent, n, args.seconds, args.format, args.vad))
            print(f"{n:5d}  {r['p50']:7.2f} {r['p99']:7.2f} {r['max']:7.2f} {r['late_pct']:6.2f}"
                  f" {r['cpu']:6.1f} {r['in_fps']:10.1f} {r['out_fps']:10.1f} {r['drops']:6d}"
                  f" {r['turn_events']:6d}   | {b99:5.2f}/{bmax:5.2f} ms, "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            if r["max"] <= 5.0:
                best_max = n
            if r["p99"] <= 5.0:
                best_p99 = n
            if r["p99"] > 20.0 or r["cpu"] > 98.0:
                break
    finally:
        parent.send(("exit",))
        proc.join(5)
    print(f"load average after: {os.getloadavg()[0]:.2f} (other work on the machine skews "
          "lateness: compare runs)")
    print(f"capacity: {best_max} calls with max lateness <= 5 ms; "
          f"{best_p99} calls with p99 <= 5 ms")


if __name__ == "__main__":
    main()
