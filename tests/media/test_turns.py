from __future__ import annotations

import pytest
from media_helpers import EnergyVad, frames_of, silence, tone

from convener.media.settings import MediaSettings
from convener.media.turns import SpeechStarted, TurnDetector, TurnEnded
from convener.timings import TurnTimings

T0 = 100.0


def run(det: TurnDetector, pcm: bytes, rate: int = 8000) -> list:
    events = []
    for f in frames_of(pcm, rate, start=T0):
        events += det.process(f)
    return events


def test_speech_start_preroll_and_end_of_turn(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    noise = tone(1000, freq=50, amp=100)  # quiet hum: below the VAD threshold, not zeros
    speech = tone(600)
    events = run(det, noise + speech + silence(700))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    start, end = events
    assert start.at == pytest.approx(T0 + 1.0)
    assert start.detected_at == pytest.approx(T0 + 1.1)  # min speech 100 ms
    assert end.speech_start == pytest.approx(T0 + 1.0)
    assert end.speech_end == pytest.approx(T0 + 1.6)
    assert end.end_of_turn == pytest.approx(T0 + 1.6 + 0.5)  # hang-over 500 ms
    assert end.preroll_ms == pytest.approx(300.0)
    # audio = the 300 ms right before speech + speech + 200 ms of the trailing silence
    assert end.audio == noise[-4800:] + speech + silence(200)
    assert end.duration_ms == pytest.approx(1100.0)
    assert not end.forced and det.state == "idle"


def test_clicks_shorter_than_min_speech_are_ignored(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    pcm = b"".join(tone(60) + silence(200) for _ in range(10))  # 60 ms < 100 ms
    assert run(det, pcm) == []


def test_pause_shorter_than_hangover_keeps_the_turn(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    events = run(det, silence(400) + tone(300) + silence(400) + tone(300) + silence(600))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    assert events[1].speech_end == pytest.approx(T0 + 1.4)


def test_configurable_hangover_and_min_speech() -> None:
    s = MediaSettings(turn_hangover_ms=300, turn_min_speech_ms=40)
    det = TurnDetector(EnergyVad(), s)
    events = run(det, silence(400) + tone(60) + silence(400))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    assert events[1].end_of_turn == pytest.approx(T0 + 0.46 + 0.3)


def test_preroll_is_shorter_when_speech_starts_early(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    events = run(det, silence(100) + tone(300) + silence(600))
    assert events[1].preroll_ms == pytest.approx(100.0)


def test_click_before_speech_stays_in_preroll(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    click = tone(40, freq=2000)
    events = run(det, silence(500) + click + silence(100) + tone(300) + silence(600))
    end = events[-1]
    assert end.preroll_ms == pytest.approx(300.0)
    assert end.audio.startswith(silence(160) + click + silence(100))


def test_max_utterance_forces_end() -> None:
    det = TurnDetector(EnergyVad(), MediaSettings(turn_max_utterance_ms=1000))
    events = run(det, tone(1800))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded, SpeechStarted]
    assert events[1].forced and events[1].end_of_turn == pytest.approx(T0 + 1.0)


def test_hysteresis_keeps_soft_endings_in_the_turn() -> None:
    probs = iter([0.9] * 10 + [0.4] * 30 + [0.0] * 30)

    def vad(pcm: bytes, rate: int) -> float:
        return next(probs)

    det = TurnDetector(vad)  # threshold 0.5, continue down to 0.35
    events = run(det, silence(1400))
    assert events[1].speech_end == pytest.approx(T0 + 0.8)


def test_marks_go_into_turn_timings(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    end = run(det, silence(300) + tone(300) + silence(600))[-1]
    tt = TurnTimings("t1")
    end.mark(tt)
    assert tt.between("speech_start", "end_of_turn") == pytest.approx(0.8)
    assert tt.between("speech_end", "end_of_turn") == pytest.approx(0.5)


def test_works_at_16k(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    events = run(det, silence(500, 16000) + tone(400, 16000) + silence(600, 16000), 16000)
    assert events[1].sample_rate == 16000
    assert len(events[1].audio) == (300 + 400 + 200) * 32


def test_accepts_a_vad_object_with_probability_method() -> None:
    class ProbVad:
        def __init__(self) -> None:
            self.inner = EnergyVad()

        def probability(self, pcm: bytes) -> float:
            return self.inner(pcm, 8000)

    det = TurnDetector(ProbVad())
    events = run(det, silence(300) + tone(300) + silence(600))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    with pytest.raises(TypeError):
        TurnDetector(object())  # type: ignore[arg-type]


def test_peek_during_hangover_is_the_turns_audio(energy_vad: EnergyVad) -> None:
    """A speculative decode started 200 ms into the hang-over sees exactly the audio the turn
    will end with, and the detector says how long the silence has lasted."""
    det = TurnDetector(energy_vad)
    peeked = None
    events = []
    for f in frames_of(silence(400) + tone(600) + silence(700), 8000, start=T0):
        events += det.process(f)
        if peeked is None and det.trailing_silence_s >= 0.2:
            peeked = (det.peek(), det.speech_end)
    assert peeked is not None
    end = events[-1]
    assert isinstance(end, TurnEnded)
    assert peeked == (end.audio, end.speech_end)
    assert det.trailing_silence_s == 0.0  # idle again


def test_peek_is_outdated_when_speech_resumes(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad)
    ends = []
    for f in frames_of(silence(400) + tone(300) + silence(300) + tone(300) + silence(700), 8000, start=T0):
        det.process(f)
        if det.trailing_silence_s >= 0.2:
            ends.append(det.speech_end)
    assert len(set(ends)) == 2  # the first pause's snapshot would be stale: speech_end moved on
