"""Pacer logic with a fake clock (no timed assertions on the real clock here)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soxr
from media_helpers import tone

from convener.media.pacer import Pacer, PacerCore

F = 0.02


def run(core: PacerCore, until: float, now: float, jitter=None) -> tuple[list, float]:
    """Drive the core like the asyncio shell would; returns [(sent_at, reply, frame)]."""
    sent = []
    while True:
        d = core.next_deadline(now)
        if d is None:
            return sent, now
        now = max(now, d) + (jitter() if jitter else 0.0)
        if now > until:
            return sent, now
        out = core.pop_due(now)
        if out is not None:
            sent.append((now, *out))


def test_no_drift_over_ten_simulated_minutes() -> None:
    core = PacerCore(8000, warmup_ms=40)
    audio = tone(600_000)
    core.feed("r1", audio, 8000)
    core.end_reply("r1")
    rng = np.random.default_rng(7)
    sent, _ = run(core, 10_000.0, 1000.0, jitter=lambda: float(rng.uniform(0, 0.004)))
    assert len(sent) == 30_000
    start = sent[0][0]
    # every frame left within [-1 ms early window, +4 ms injected wake-up jitter] of
    # start + k·20 ms, also the last one after 10 minutes
    offsets = np.array([t - (start + k * F) for k, (t, _, _) in enumerate(sent)])
    assert offsets.min() >= -0.001 - 1e-6 and offsets.max() <= 0.003 + 1e-6
    assert core.stats.schedule_resets == 0 and core.stats.late_frames == 0
    assert b"".join(f for _, _, f in sent) == audio
    assert core.reports["r1"].played_samples == 600 * 8000 and core.reports["r1"].finished


def test_stall_resets_schedule_without_burst() -> None:
    core = PacerCore(8000, early_ms=0)
    core.feed("r", tone(2000), 8000)
    core.end_reply("r")
    sent, now = run(core, 1000.0 + 10 * F - 1e-9, 1000.0)
    assert len(sent) == 10
    stall_at = core.next_deadline(now) + 0.2  # the loop was blocked 200 ms
    assert core.pop_due(stall_at) is not None  # one frame goes out at once…
    assert core.pop_due(stall_at) is None  # …but no burst of the 10 missed frames
    assert core.pop_due(stall_at + 0.019) is None
    assert core.pop_due(stall_at + F) is not None  # new schedule from the stall on
    assert core.stats.schedule_resets == 1
    assert core.stats.late_frames == 1 and core.stats.max_lateness_ms == pytest.approx(200, 0.01)


def test_small_lateness_keeps_schedule() -> None:
    core = PacerCore(8000, early_ms=0)
    core.feed("r", tone(200), 8000)
    core.end_reply("r")
    t0 = 50.0
    assert core.pop_due(t0) is not None
    assert core.pop_due(t0 + F + 0.010) is not None  # 10 ms late
    assert core.next_deadline(t0 + 0.03) == pytest.approx(t0 + 2 * F)  # catches up, no drift
    assert core.stats.schedule_resets == 0 and core.stats.late_frames == 1


def test_warmup_before_first_frame() -> None:
    core = PacerCore(8000, warmup_ms=60)
    core.feed("r", tone(20), 8000)
    assert core.next_deadline(0.0) is None and core.pop_due(0.0) is None
    core.feed("r", tone(20), 8000)
    assert core.pop_due(0.0) is None  # 40 ms < 60 ms warm-up
    core.feed("r", tone(20), 8000)
    assert core.next_deadline(0.0) == 0.0
    assert core.pop_due(0.0) is not None
    assert core.reports["r"].first_frame_at == 0.0


def test_short_reply_starts_without_full_warmup_and_tail_is_padded() -> None:
    core = PacerCore(8000, warmup_ms=60)
    audio = tone(30)
    core.feed("r", audio, 8000)
    core.end_reply("r")
    sent, _ = run(core, 10.0, 0.0)
    assert len(sent) == 2
    assert sent[1][2] == audio[320:] + bytes(160)
    rep = core.reports["r"]
    assert rep.played_samples == 240 and rep.played_ms == pytest.approx(30.0) and rep.finished
    assert not core.is_playing


def test_odd_byte_chunks_are_carried() -> None:
    core = PacerCore(8000, warmup_ms=0)
    audio = tone(40)
    core.feed("r", audio[:101], 8000)
    core.feed("r", audio[101:], 8000)
    core.end_reply("r")
    sent, _ = run(core, 10.0, 0.0)
    assert b"".join(f for _, _, f in sent) == audio


def test_streaming_resample_matches_whole_buffer() -> None:
    core = PacerCore(8000, warmup_ms=40)
    src = tone(1000, rate=24000, freq=300.0)
    rng = np.random.default_rng(3)
    i = 0
    while i < len(src):  # TTS chunks of random sizes
        n = int(rng.integers(1, 4000)) * 2
        core.feed("r", src[i:i + n], 24000)
        i += n
    core.end_reply("r")
    sent, _ = run(core, 100.0, 0.0)
    out = np.frombuffer(b"".join(f for _, _, f in sent), dtype="<i2").astype(np.float64)
    ref = soxr.resample(np.frombuffer(src, dtype="<i2"), 24000, 8000, quality="HQ").astype(
        np.float64
    )
    assert core.reports["r"].played_samples == len(ref)
    assert len(out) == 50 * 160
    diff = out[: len(ref)] - ref
    assert np.sqrt(np.mean(diff**2)) < 2.0  # same signal (int16 rounding only)


def test_replies_never_share_a_frame() -> None:
    core = PacerCore(8000, warmup_ms=0)
    core.feed("a", tone(30), 8000)
    core.end_reply("a")
    core.feed("b", tone(40, freq=1000), 8000)
    core.end_reply("b")
    sent, _ = run(core, 10.0, 0.0)
    assert [r for _, r, _ in sent] == ["a", "a", "b", "b"]
    assert sent[1][2][160:] == bytes(160)


def test_underrun_goes_idle_and_warms_up_again() -> None:
    core = PacerCore(8000, warmup_ms=40)
    core.feed("r", tone(60), 8000)
    sent, now = run(core, 10.0, 0.0)
    assert len(sent) == 3 and core.stats.underruns == 1
    assert core.next_deadline(now) is None
    core.feed("r", tone(20), 8000)
    assert core.next_deadline(now) is None  # 20 ms < warm-up
    core.feed("r", tone(20), 8000)
    core.end_reply("r")
    more, _ = run(core, 20.0, now + 1)
    assert len(more) == 2
    assert core.reports["r"].played_samples == 5 * 160


def test_flush_reports_played_part_and_drops_queue() -> None:
    core = PacerCore(16000, warmup_ms=40)
    core.feed("r1", tone(1000, rate=16000), 16000)
    sent, now = run(core, 0.0 + 9 * F + 1e-9, 0.0)
    assert len(sent) == 10
    reports = core.flush()
    assert set(reports) == {"r1"}
    rep = reports["r1"]
    assert rep.played_samples == 10 * 320 and rep.played_ms == pytest.approx(200.0)
    assert rep.interrupted and not rep.finished and rep.first_frame_at == 0.0
    assert not core.is_playing and core.pop_due(now + 1) is None
    core.feed("r1", tone(100, rate=16000), 16000)  # late TTS chunk of the cut reply
    assert not core.is_playing
    assert core.flush() == {}  # nothing playing: nothing interrupted


def test_late_frames_counted() -> None:
    core = PacerCore(8000, warmup_ms=0, late_ms=5.0, early_ms=0)
    core.feed("r", tone(100), 8000)
    core.end_reply("r")
    core.pop_due(0.0)
    core.pop_due(F + 0.004)
    core.pop_due(2 * F + 0.006)
    assert core.stats.late_frames == 1


async def test_asyncio_shell_sends_every_frame_and_reports() -> None:
    sent: list[bytes] = []
    firsts: list[str] = []
    done = asyncio.Event()
    cleared = []
    core = PacerCore(8000, warmup_ms=40)
    pacer = Pacer(core, sent.append, clear_output=lambda: cleared.append(1),
                  on_first_frame=lambda rid, t: firsts.append(rid),
                  on_reply_done=lambda rep: done.set())
    async with pacer:
        audio = tone(200)
        for i in range(0, len(audio), 500):
            pacer.feed("r", audio[i:i + 500], 8000)
            await asyncio.sleep(0)
        pacer.end_reply("r")
        await asyncio.wait_for(done.wait(), 2.0)
        assert b"".join(sent) == audio and firsts == ["r"]
        pacer.feed("s", tone(1000), 8000)
        await asyncio.sleep(0.05)
        reports = pacer.flush()
        assert reports["s"].played_samples == 160 * (len(sent) - 10)
        assert cleared == [1]
        n = len(sent)
        await asyncio.sleep(0.05)
        assert len(sent) == n  # stopped


def test_early_window_is_bounded() -> None:
    core = PacerCore(8000, warmup_ms=0, early_ms=1.0)
    core.feed("r", tone(100), 8000)
    core.end_reply("r")
    assert core.pop_due(0.0) is not None
    assert core.next_deadline(0.0) == pytest.approx(0.019)
    assert core.pop_due(0.0189) is None  # more than 1 ms early: not yet
    assert core.pop_due(0.019) is not None
    assert core.next_deadline(0.019) == pytest.approx(0.039)  # schedule unchanged
