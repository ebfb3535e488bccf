from __future__ import annotations

import pytest
from media_helpers import EnergyVad, frames_of, silence, tone

from convener.media.bargein import BargeIn
from convener.media.pacer import PacerCore
from convener.media.turns import SpeechStarted, TurnDetector


def test_speech_while_playing_flushes_and_reports_played_ms() -> None:
    core = PacerCore(8000, warmup_ms=40)
    got = []
    barge = BargeIn(core, on_barge_in=got.append, clock=lambda: 7.0)
    det = TurnDetector(EnergyVad())
    core.feed("reply-1", tone(3000), 8000)
    t = 0.0
    caller = frames_of(silence(500) + tone(400), start=0.0)
    report = None
    for frame in caller:  # one caller frame in, one reply frame out, every 20 ms
        assert core.pop_due(t) is not None or report is not None
        for ev in det.process(frame):
            r = barge.on_event(ev)
            if isinstance(ev, SpeechStarted):
                report = r
        if report is not None:
            break
        t += 0.02
    assert report is not None and got == [report]
    # speech began at 0.5 s, confirmed after 100 ms: 30 frames (600 ms) of the reply went out
    assert report.speech_at == pytest.approx(0.5)
    assert report.detected_at == pytest.approx(0.6)
    assert report.flushed_at == 7.0
    assert report.replies["reply-1"].played_samples == 30 * 160
    assert report.played_ms == {"reply-1": pytest.approx(600.0)}
    assert not core.is_playing and core.pop_due(t + 1) is None


def test_no_flush_when_nothing_plays() -> None:
    core = PacerCore(8000)
    barge = BargeIn(core)
    assert barge.on_event(SpeechStarted(1.0, 1.1)) is None
    core.feed("r", tone(100), 8000)
    barge.enabled = False
    assert barge.on_event(SpeechStarted(1.0, 1.1)) is None
    assert core.is_playing
    barge.enabled = True
    rep = barge.on_event(SpeechStarted(1.0, 1.1))
    assert rep is not None and rep.replies["r"].played_samples == 0 and barge.count == 1
