"""End of turn by completion: the pure detector + decision, the models, the fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from media_helpers import EnergyVad, frames_of, silence, tone

from convener.media.settings import MediaSettings
from convener.media.turns import SpeechStarted, TurnDetector, TurnEnded, TurnPaused
from convener.speech import turns as turns_pkg
from convener.speech.turns import TurnCompletion, build_completion, decide, smart_turn
from convener.speech.turns.decision import second_look, strongly_unfinished
from convener.speech.turns.text_model import TextTurnModel, load_text_model

T0 = 100.0
S = MediaSettings()  # turn_stop_ms 200, turn_incomplete_wait_ms 2000, hang-over 500


def drive(det: TurnDetector, pcm: bytes, comp: TurnCompletion, transcripts: list[str],
          confidence: float | None = None) -> list:
    """Feed ``pcm``; at each pause ask ``comp`` with the next transcript, as CallerVoice does
    (the later looks of a pause judge the same words again), heard with ``confidence``."""
    events: list = []
    said = iter(transcripts)
    text = ""
    for f in frames_of(pcm, 8000, start=T0):
        for e in det.process(f):
            events.append(e)
            if isinstance(e, TurnPaused) and not e.second:
                text = next(said)
            if isinstance(e, TurnPaused) and comp.decide(None, text, look=e.look, confidence=confidence).complete:
                if e.look > 1:  # a later look: the turn comes out of process() 60 ms later
                    det.end_soon(e)
                    continue
                ended = det.end_now(e)
                assert ended is not None
                events.append(ended)
    return events


@pytest.fixture(scope="module")
def text_comp() -> TurnCompletion:
    return TurnCompletion(None, load_text_model(), S.turn_complete_threshold)


def test_hesitating_caller_is_one_turn(energy_vad: EnergyVad, text_comp: TurnCompletion) -> None:
    """ "I'd like to book a flight to" … 800 ms … "Denver, please": one turn with both parts."""
    det = TurnDetector(energy_vad, S, completion=True)
    first, second = tone(1500), tone(700)
    events = drive(det, silence(300) + first + silence(800) + second + silence(2500), text_comp,
                   ["I'd like to book a flight to", "I'd like to book a flight to Denver, please."])
    kinds = [(type(e), getattr(e, "second", None)) for e in events]
    # The second look at 800 ms still hears "… to": it waits, and the caller goes on.
    assert kinds == [(SpeechStarted, None), (TurnPaused, False), (TurnPaused, True), (TurnPaused, False),
                     (TurnEnded, None)]
    ended = events[-1]
    assert ended.speech_start == pytest.approx(T0 + 0.3)
    assert ended.speech_end == pytest.approx(T0 + 0.3 + 1.5 + 0.8 + 0.7)
    assert ended.end_of_turn == pytest.approx(ended.speech_end + 0.2)  # the second pause decided
    assert first in ended.audio and second in ended.audio


def test_complete_request_is_answered_without_the_hangover(energy_vad: EnergyVad,
                                                           text_comp: TurnCompletion) -> None:
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, silence(300) + tone(1200) + silence(1000), text_comp,
                   ["What's the weather in Seattle tomorrow?"])
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnEnded]
    ended = events[-1]
    assert ended.end_of_turn - ended.speech_end == pytest.approx(0.2)  # not 0.5
    assert det.state == "idle"


def test_incomplete_caller_who_stays_silent_ends_at_the_longest_wait(energy_vad: EnergyVad,
                                                                     text_comp: TurnCompletion) -> None:
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, tone(1000) + silence(2500), text_comp, ["Book a table for"])
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnPaused, TurnPaused, TurnEnded]
    assert events[2].look == 2 and events[2].at - events[2].speech_end == pytest.approx(0.8)
    assert events[3].look == 3 and events[3].at - events[3].speech_end == pytest.approx(1.2)
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(2.0)  # "for": strongly unfinished


def test_a_doubted_finished_request_ends_at_the_second_look(energy_vad: EnergyVad,
                                                           text_comp: TurnCompletion) -> None:
    """ "Thank you" is called unfinished at the first look (p 0.34), but after 800 ms of silence
    it ends: no blind 2 s wait."""
    assert not text_comp.decide(None, "Thank you").complete
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, tone(800) + silence(2500), text_comp, ["Thank you"])
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnPaused, TurnEnded]
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(0.8 + 0.06)  # + the confirmation
    assert events[-1].paused is events[2]


def test_no_second_look_when_it_is_set_to_the_longest_wait(energy_vad: EnergyVad,
                                                           text_comp: TurnCompletion) -> None:
    s = MediaSettings(turn_uncertain_wait_ms=2000)
    s.validate()
    det = TurnDetector(energy_vad, s, completion=True)
    events = drive(det, tone(800) + silence(2500), text_comp, ["Thank you"])
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnEnded]
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(2.0)


def test_uncertain_wait_must_lie_between_the_stop_and_the_longest_wait() -> None:
    from convener.settings import ConfigError

    for bad in (150, 2500):
        with pytest.raises(ConfigError, match="turn_uncertain_wait_ms"):
            MediaSettings(turn_stop_ms=200, turn_uncertain_wait_ms=bad).validate()


@pytest.mark.parametrize("text", ["I'd like to book a flight to", "Show me flights too", "Book a room for",
                                  "Is it going to rain in", "Put me on the", "Reserve a car for um",
                                  "I want to fly from Boston and", "Find me a hotel near,", "Send it to my",
                                  "Get me a flight from Denver -", "What's the weather going to be"])
def test_strongly_unfinished_endings(text: str) -> None:
    assert strongly_unfinished(text)
    assert not second_look(decide(None, 0.1), text).complete  # waits on to the longest wait


@pytest.mark.parametrize("text", ["Thank you", "That works for me.", "A room for two", "Can I?",
                                  "Okay", "Book it for seven", "What's it like"])
def test_other_endings_end_the_turn_at_the_second_look(text: str) -> None:
    assert not strongly_unfinished(text)
    assert second_look(decide(None, 0.1), text).complete


def test_second_look_keeps_what_it_cannot_judge() -> None:
    assert second_look(decide(0.9, None), None).complete  # already complete stays complete
    assert not second_look(decide(0.2, None), None).complete  # no words: nothing to lower the bar on
    assert not second_look(decide(None, 0.2), "  ").complete


def test_a_late_decision_after_the_caller_resumed_ends_nothing(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad, S, completion=True)
    pauses = [e for f in frames_of(tone(500) + silence(300) + tone(400), 8000, start=T0)
              for e in det.process(f) if isinstance(e, TurnPaused)]
    assert len(pauses) == 1
    assert det.end_now(pauses[0]) is None  # the caller spoke again: that pause is void
    assert det.state == "speech"


def test_without_completion_the_fixed_hangover_ends_the_turn(energy_vad: EnergyVad) -> None:
    det = TurnDetector(energy_vad, S)
    events = [e for f in frames_of(tone(600) + silence(700), 8000, start=T0) for e in det.process(f)]
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(0.5)


def test_decide_combines_what_is_present() -> None:
    assert decide(None, None).complete is False and decide(None, None).probability is None
    assert decide(0.9, None).complete and not decide(0.3, None).complete
    assert not decide(0.99, 0.05).complete  # both must agree: the words say "unfinished"
    assert not decide(0.3, 0.9).complete
    assert decide(0.7, 0.6).complete and decide(0.7, 0.6).probability == pytest.approx(0.6)
    assert "audio 0.70" in decide(0.7, 0.6).describe()


UNFINISHED = ["I'd like to book a flight to", "Show me flight too.",
              "Can you get me a hotel in", "I want to fly from Boston and",
              "Reserve a car for um", "Put me on the", "Is there a train that", "Send it to my"]
FINISHED = ["I'd like to book a flight to Denver, please.", "What's the weather in Chicago?",
            "That works for me.", "Two tickets to Lisbon", "Reserve a car for Monday",
            "Is there a train tonight?", "Send it to my office."]


def test_text_model_never_ends_on_a_dangling_word_and_mostly_gets_wording_it_never_saw() -> None:
    m = load_text_model()
    assert [t for t in UNFINISHED if m.probability(t) >= 0.5] == []  # these would be cut-offs
    right = sum(m.probability(t) >= 0.5 for t in FINISHED)
    assert right >= len(FINISHED) - 2  # a miss costs waiting, not a cut-off


def test_a_reply_ending_on_its_object_is_finished_a_question_being_asked_is_not() -> None:
    m = load_text_model()
    for done in ("Yes, please book it.", "Cancel it.", "I'll take it"):
        assert m.probability(done) >= 0.5, done
    for going_on in ("Is it", "What time does it", "Can you", "Does he"):
        assert m.probability(going_on) < 0.5, going_on


def test_text_weights_pin_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "w.json"
    bad.write_text('{"features": {"bias": 1.0}}')
    with pytest.raises(ValueError, match="does not match the pinned"):
        load_text_model(bad)
    assert TextTurnModel.from_bytes(bad.read_bytes(), expected_sha256=None).probability("x") > 0.5


def test_missing_smart_turn_falls_back_with_one_log_line(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(smart_turn, "DISTRIBUTION", "no-such-distribution-installed")
    turns_pkg._load_audio.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="convener.speech.turns"):
            only = build_completion(MediaSettings(turn_completion="smart-turn"))
        assert only is None  # the detector then uses the fixed hang-over
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "hang-over 500 ms" in warnings[0].getMessage()
        caplog.clear()
        both = build_completion(MediaSettings(turn_completion="both"))
        assert both is not None and both.audio is None and both.text is not None  # the words alone
        assert any("Smart Turn" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        # A streaming recogniser gives no transcript to judge, and the audio model is missing.
        assert build_completion(MediaSettings(turn_completion="auto"), transcripts=False) is None
        auto = build_completion(MediaSettings(turn_completion="auto"))
        assert auto is not None and auto.audio is None and auto.text is not None
    finally:
        turns_pkg._load_audio.cache_clear()


def test_smart_turn_pin_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "model.onnx"
    f.write_bytes(b"not the model")
    with pytest.raises(ValueError, match="not the pinned Smart Turn"):
        smart_turn.check_sha256(f)


def test_smart_turn_scores_audio_when_installed() -> None:
    try:
        smart_turn.model_file()
    except smart_turn.ModelMissing:
        pytest.skip("pipecat-ai (the package holding Smart Turn) is not installed")
    model = smart_turn.SmartTurnModel()
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(8000) * 3000).astype("<i2").tobytes()
    p8, p16 = model.probability(pcm, 8000), model.probability(pcm + pcm, 16000)
    assert 0.0 <= p8 <= 1.0 and 0.0 <= p16 <= 1.0


def test_call_check_finds_the_end_of_the_voice_not_of_the_file() -> None:
    from convener.speech.vad import EnergyVad as SpeechEnergyVad
    from convener.tools.callcheck import voice_end_ms

    pcm = silence(300) + tone(800) + silence(500)
    assert voice_end_ms(pcm, SpeechEnergyVad(8000)) == pytest.approx(1100.0, abs=20)
    assert voice_end_ms(silence(400), SpeechEnergyVad(8000)) == 0.0


def test_the_recogniser_can_end_the_current_utterance(energy_vad: EnergyVad) -> None:
    """Flux's EndOfTurn ends our utterance (its audio and marks) without waiting for silence."""
    det = TurnDetector(energy_vad, S, completion=True)
    for f in frames_of(silence(300) + tone(800) + silence(100), 8000, start=T0):
        det.process(f)
    ended = det.end_current()
    assert ended is not None and ended.speech_end == pytest.approx(T0 + 1.1)
    assert det.state == "idle" and det.end_current() is None


class TrailingVad:
    """A VAD that trails the voice like Silero: still "speech" for ``trail_ms`` after the level
    falls (the level decides, 20 ms frames)."""

    def __init__(self, trail_ms: int = 140, threshold: float = 500.0) -> None:
        self.trail = trail_ms // 20
        self.threshold = threshold
        self.quiet_frames = 1000  # the line was quiet before

    def __call__(self, pcm16: bytes, sample_rate: int) -> float:
        x = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
        loud = float(np.sqrt(np.mean(x * x))) > self.threshold
        self.quiet_frames = 0 if loud else self.quiet_frames + 1
        return 1.0 if loud or self.quiet_frames <= self.trail else 0.0


def noise(ms: int, amp: float = 60.0, seed: int = 1) -> bytes:
    n = 8000 * ms // 1000
    return (np.random.default_rng(seed).standard_normal(n) * amp).astype("<i2").tobytes()


def first_looks(settings: MediaSettings, pcm: bytes) -> list[TurnPaused]:
    det = TurnDetector(TrailingVad(), settings, completion=True)
    return [e for f in frames_of(pcm, 8000, start=T0) for e in det.process(f) if isinstance(e, TurnPaused)]


def test_the_first_look_counts_the_stop_from_where_the_level_fell() -> None:
    pcm = noise(1000) + tone(800) + noise(1500, seed=2)
    voice_end = T0 + 1.8
    on = first_looks(MediaSettings(), pcm)
    off = first_looks(MediaSettings(turn_energy_end_ms=0), pcm)
    # From the VAD's end (140 ms after the voice) + 200 ms; from the level's end: 200 ms.
    assert off[0].at == pytest.approx(voice_end + 0.14 + 0.2)
    assert on[0].at == pytest.approx(voice_end + 0.2)
    # The speech ends where the level fell, not where the VAD did; the second look (Silero's
    # silence) does not move.
    assert on[0].speech_end == pytest.approx(voice_end)
    assert off[0].speech_end == pytest.approx(voice_end + 0.14)
    assert on[1].second and on[1].at == pytest.approx(off[1].at)


def test_the_decode_may_start_before_the_vad_hears_silence() -> None:
    det = TurnDetector(TrailingVad(), MediaSettings(), completion=True)
    quiet: list[float] = []
    for f in frames_of(noise(1000) + tone(800) + noise(120, seed=2), 8000, start=T0):
        det.process(f)
        quiet.append(det.quiet_s)
    # The VAD still says speech (trailing 140 ms), but the level is the line's: 120 ms quiet.
    assert det.trailing_silence_s == 0.0 and quiet[-1] == pytest.approx(0.12)
    assert det.speech_end == pytest.approx(T0 + 1.8)
    # Digital silence before the words gives no background: only the VAD's end counts.
    det = TurnDetector(TrailingVad(), MediaSettings(), completion=True)
    for f in frames_of(silence(1000) + tone(800) + noise(120, seed=2), 8000, start=T0):
        det.process(f)
    assert det.quiet_s == 0.0 and det.speech_end == pytest.approx(T0 + 1.92)


def test_the_credit_is_capped_and_needs_a_quiet_line() -> None:
    from collections import deque

    from convener.media.turns import quiet_tail_s

    loud, quiet = [-20.0] * 50, [-60.0] * 20
    assert quiet_tail_s(deque(quiet + loud + quiet[:3] + [-61.0]), 0.02, 0.15) == pytest.approx(0.06)
    assert quiet_tail_s(deque(quiet + loud + quiet + [-61.0]), 0.02, 0.15) == pytest.approx(0.14)  # cap: 7 frames
    # Digital silence around the utterance does not matter: the background is the line now.
    silent = [-120.0] * 100
    assert quiet_tail_s(deque(silent + loud + quiet[:4] + [-61.0]), 0.02, 0.15) == pytest.approx(0.08)
    # Noise as loud as the voice (no gap between the background and the loud part): nothing.
    assert quiet_tail_s(deque([-20.0, -24.0] * 40 + [-22.0]), 0.02, 0.15) == 0.0
    # The last frames still loud (well above the background): nothing.
    assert quiet_tail_s(deque(quiet + loud + [-50.0, -61.0]), 0.02, 0.15) == 0.0


def test_speech_that_goes_on_after_a_dip_keeps_the_turn(text_comp: TurnCompletion) -> None:
    # A 100 ms dip inside speech: the VAD never says silence, so no credit and no pause.
    pcm = noise(1000) + tone(500) + noise(100, seed=3) + tone(500) + noise(600, seed=4)
    looks = first_looks(MediaSettings(), pcm)
    assert len([p for p in looks if not p.second]) == 1
    assert looks[0].at == pytest.approx(T0 + 2.1 + 0.2)


def test_energy_end_setting_is_validated() -> None:
    from convener.settings import ConfigError

    with pytest.raises(ConfigError, match="turn_energy_end_ms"):
        MediaSettings(turn_energy_end_ms=600).validate()


def test_words_heard_with_low_confidence_do_not_end_the_turn_at_the_first_look(text_comp: TurnCompletion) -> None:
    gated = TurnCompletion(None, text_comp.text, S.turn_complete_threshold, min_confidence=0.55)
    said = "Please remember my vocalist."  # how tiny.en heard "Please reserve a hotel in"
    assert gated.decide(None, said, confidence=0.9).complete
    low = gated.decide(None, said, confidence=0.44)
    assert not low.complete and low.doubted_words and "low confidence" in low.describe()
    assert gated.decide(None, said, confidence=None).complete  # a recogniser without confidence
    # Nor at the second look: the ending of misheard words says nothing; silence ends it (2 s).
    assert not gated.decide(None, said, look=2, confidence=0.44).complete
    assert gated.decide(None, "That works for me", look=2, confidence=0.9).complete
    assert not gated.decide(None, "I'd like to book a flight to", look=2, confidence=0.44).complete
    assert text_comp.decide(None, said, confidence=0.44).complete  # min_confidence 0: trusted
    # One or two words are answers; their confidence says nothing: not gated.
    assert gated.decide(None, "Next Friday.", confidence=0.40).complete
    assert gated.decide(None, "Yes.", look=2, confidence=0.30).complete


def test_a_guessed_last_word_does_not_end_the_turn_at_the_first_look(text_comp: TurnCompletion) -> None:
    gated = TurnCompletion(None, text_comp.text, S.turn_complete_threshold, min_confidence=0.55,
                           min_last_word=0.4)
    said = "Show me flight 2."  # how tiny.en heard "Show me flights to": confidence 0.62, "2" 0.27
    assert gated.decide(None, said, confidence=0.62, last_word=0.9).complete
    guessed = gated.decide(None, said, confidence=0.62, last_word=0.27)
    assert not guessed.complete and guessed.doubted_words
    assert gated.decide(None, said, confidence=0.62, last_word=None).complete  # not known: trusted
    # read at the doubt look, as words heard with a low confidence are
    assert not gated.decide(None, said, look=2, confidence=0.62, last_word=0.27).complete
    assert gated.decide(None, said, look=3, confidence=0.62, last_word=0.27).complete
    assert not gated.decide(None, "I'd like to book a flight to", look=3, last_word=0.2).complete
    # short answers are not gated ("Next Friday." heard right with a low last word)
    assert gated.decide(None, "Next Friday.", confidence=0.8, last_word=0.2).complete


def test_min_last_word_confidence_is_read_from_the_settings_and_validated() -> None:
    from convener.settings import ConfigError

    assert MediaSettings().turn_min_last_word_confidence == 0.4
    comp = build_completion(MediaSettings(turn_completion="text", turn_min_last_word_confidence=0.3))
    assert comp is not None and comp.min_last_word == 0.3
    with pytest.raises(ConfigError, match="turn_min_last_word_confidence"):
        MediaSettings(turn_min_last_word_confidence=1.5).validate()


def test_min_confidence_is_read_from_the_settings() -> None:
    comp = build_completion(MediaSettings(turn_completion="text", turn_min_confidence=0.7))
    assert comp is not None and comp.min_confidence == 0.7


@pytest.fixture(scope="module")
def gated_comp(text_comp: TurnCompletion) -> TurnCompletion:
    return TurnCompletion(None, text_comp.text, S.turn_complete_threshold, min_confidence=0.55)


def test_words_heard_badly_end_the_turn_at_the_doubt_look(energy_vad: EnergyVad,
                                                         gated_comp: TurnCompletion) -> None:
    """A finished request heard with low confidence waits for turn_doubt_wait_ms (1.2 s), not
    for the longest wait (2 s): its ending is read then, as the second look reads words heard well."""
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, tone(1000) + silence(2500), gated_comp, ["Please remember my vocalist."], confidence=0.44)
    assert [type(e) for e in events] == [SpeechStarted, TurnPaused, TurnPaused, TurnPaused, TurnEnded]
    assert [e.look for e in events[1:4]] == [1, 2, 3]
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(1.2 + 0.06)


def test_words_heard_badly_that_end_unfinished_wait_the_longest(energy_vad: EnergyVad,
                                                               gated_comp: TurnCompletion) -> None:
    said = "Please remember my vocalist,"  # the classifier calls it finished; the comma trails
    assert gated_comp.decide(None, said, confidence=0.40).doubted_words
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, tone(1000) + silence(2500), gated_comp, [said], confidence=0.40)
    assert [e.look for e in events if isinstance(e, TurnPaused)] == [1, 2, 3]
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(2.0)


def test_a_misheard_fragment_is_not_cut_off_before_the_doubt_look(energy_vad: EnergyVad,
                                                                  gated_comp: TurnCompletion) -> None:
    """The caller hesitates 1 s after a fragment tiny.en heard as a finished sentence with low
    confidence: neither the first look nor the second ends it, and the whole is one turn."""
    det = TurnDetector(energy_vad, S, completion=True)
    events = drive(det, silence(300) + tone(1200) + silence(1000) + tone(700) + silence(2500), gated_comp,
                   ["Please remember my vocalist.", "Please reserve a hotel in San Diego for Monday."],
                   confidence=0.44)
    ended = [e for e in events if isinstance(e, TurnEnded)]
    assert len(ended) == 1
    assert ended[0].speech_end == pytest.approx(T0 + 0.3 + 1.2 + 1.0 + 0.7)
    assert [e.look for e in events if isinstance(e, TurnPaused)][:2] == [1, 2]


def test_doubt_wait_is_validated_and_kept_between_the_second_look_and_the_limit(energy_vad: EnergyVad) -> None:
    from convener.settings import ConfigError

    with pytest.raises(ConfigError, match="turn_doubt_wait_ms"):
        MediaSettings(turn_doubt_wait_ms=100).validate()
    # Settings that were valid before the doubt look still are; the look moves between the two.
    for kw in ({"turn_uncertain_wait_ms": 2000}, {"turn_uncertain_wait_ms": 1500},
               {"turn_incomplete_wait_ms": 1000}, {"turn_incomplete_wait_ms": 1000, "turn_uncertain_wait_ms": 600}):
        MediaSettings(**kw).validate()
    assert TurnDetector(energy_vad, MediaSettings(turn_uncertain_wait_ms=1500), completion=True).doubt_s == 1.5
    assert TurnDetector(energy_vad, MediaSettings(turn_incomplete_wait_ms=1000), completion=True).doubt_s == 1.0


def test_two_looks_set_equal_come_as_one(energy_vad: EnergyVad, gated_comp: TurnCompletion) -> None:
    s = MediaSettings(turn_uncertain_wait_ms=1000, turn_doubt_wait_ms=1000)
    events = drive(TurnDetector(energy_vad, s, completion=True), tone(1000) + silence(2500), gated_comp,
                   ["Please remember my vocalist."], confidence=0.44)
    looks = [e for e in events if isinstance(e, TurnPaused)]
    assert [e.look for e in looks] == [1, 3] and looks[1].at - looks[1].speech_end == pytest.approx(1.0)
    assert events[-1].end_of_turn - events[-1].speech_end == pytest.approx(1.0 + 0.06)


def test_long_pauses_inside_a_turn_are_shortened_for_the_recogniser(energy_vad: EnergyVad,
                                                                    text_comp: TurnCompletion) -> None:
    """Whisper often stops at a long pause and drops what follows; the audio it gets keeps at
    most turn_asr_max_gap_ms (300 ms) of each pause inside the turn, and all of the words."""
    first, second = tone(1500), tone(700, freq=660)
    pcm = silence(300) + first + silence(1000) + second + silence(2500)
    ended = [e for e in drive(TurnDetector(energy_vad, S, completion=True), pcm, text_comp,
                              ["I'd like to book a flight to", "I'd like to book a flight to Denver, please."])
             if isinstance(e, TurnEnded)]
    assert len(ended) == 1
    audio = ended[0].audio
    assert first in audio and second in audio
    gap = audio.index(second) - (audio.index(first) + len(first))
    assert gap == 300 * 16  # 300 ms of 8 kHz PCM16 between the parts, not 1000
    # The times are those heard: the turn's speech still ends where the second part did.
    assert ended[0].speech_end == pytest.approx(T0 + 0.3 + 1.5 + 1.0 + 0.7)
    # Off: the audio as heard.
    off = [e for e in drive(TurnDetector(energy_vad, MediaSettings(turn_asr_max_gap_ms=0), completion=True), pcm,
                            text_comp, ["I'd like to book a flight to", "I'd like to book a flight to Denver."])
           if isinstance(e, TurnEnded)]
    assert off[0].audio.index(second) - (off[0].audio.index(first) + len(first)) == 1000 * 16


def test_compact_gaps_keeps_short_pauses_and_the_tail() -> None:
    from convener.audio import AudioFrame
    from convener.media.turns import compact_gaps

    fr = [AudioFrame(bytes([i]) * 320, 8000, i * 0.02) for i in range(40)]
    #       voice 0-4, quiet 5-9 (100 ms), voice 10-14, quiet 15-34 (400 ms), voice 35-37, quiet 38-39
    quiet = [False] * 5 + [True] * 5 + [False] * 5 + [True] * 20 + [False] * 3 + [True] * 2
    out = compact_gaps(fr, quiet, 0.3)
    # The short pause stays whole; of the long one 140 ms after the words and 160 ms before the
    # next; the last words and the tail stay.
    assert [f.pcm[0] for f in out] == [*range(22), *range(27, 40)]
    assert sum(f.duration for f in out) == pytest.approx(0.8 - 0.1)
    assert compact_gaps(fr, quiet, 10.0) == fr


def test_asr_gap_setting_is_validated() -> None:
    from convener.settings import ConfigError

    MediaSettings(turn_asr_max_gap_ms=0).validate()
    with pytest.raises(ConfigError, match="turn_asr_max_gap_ms"):
        MediaSettings(turn_asr_max_gap_ms=50).validate()


def test_may_the_month_ends_a_request_may_the_verb_does_not(text_comp: TurnCompletion) -> None:
    """Whisper writes the month "May"; the classifier and the second look read words in lower
    case, where it was the auxiliary: "... on the 20th of May." waited 2 s."""
    assert text_comp.decide(None, "I want to fly to Miami on the 20th of May.").complete
    assert not strongly_unfinished("I want to fly to Miami on the 20th of May.")
    assert not text_comp.decide(None, "I think it may").complete
    assert strongly_unfinished("I think it may")
    assert strongly_unfinished("OK. May") and not text_comp.decide(None, "OK. May").complete  # "May I ..."


def test_a_later_look_does_not_end_the_turn_when_the_caller_has_started_again() -> None:
    """The caller goes on ("... a room that | sleeps four") just before the second look; the VAD
    hears the new word 120 ms late (a fricative), the line at once. With end_now the turn would
    end on the first part (a cut-off); end_soon waits 60 ms, hears the line, drops the look."""

    class LateOnsetVad:
        """Speech by level; the word after the pause is called speech only from its 7th frame."""

        def __init__(self) -> None:
            self.frames = 0
            self.loud_run = 0

        def __call__(self, pcm: bytes, rate: int) -> float:
            self.frames += 1
            loud = float(np.abs(np.frombuffer(pcm, "<i2")).mean()) > 500
            self.loud_run = self.loud_run + 1 if loud else 0
            late = self.frames > 100  # after the first word and the pause began
            return 1.0 if loud and (not late or self.loud_run > 6) else 0.0

    pcm = noise(300) + tone(1200) + noise(780, seed=5) + tone(600) + noise(2500, seed=6)

    def turns(end_later_looks_soon: bool) -> list[TurnEnded]:
        det = TurnDetector(LateOnsetVad(), S, completion=True)
        out: list[TurnEnded] = []
        for f in frames_of(pcm, 8000, start=T0):
            for e in det.process(f):
                if isinstance(e, TurnEnded):
                    out.append(e)
                elif isinstance(e, TurnPaused) and e.look == 2:  # "... a room that": read as finished
                    if end_later_looks_soon:
                        det.end_soon(e)
                    elif (ended := det.end_now(e)) is not None:
                        out.append(ended)
        return out

    assert len(turns(False)) == 2  # the race: the first part alone, then the rest
    one = turns(True)
    assert len(one) == 1 and one[0].speech_end == pytest.approx(T0 + 0.3 + 1.2 + 0.78 + 0.6)


def test_words_no_agent_fits_wait_past_the_first_look(energy_vad: EnergyVad, text_comp: TurnCompletion) -> None:
    """ "Get me on the first." … 400 ms … "flight to Atlanta.": the first half fits no agent, so
    the first look does not answer it ("none of our agents can help"); the caller goes on, and
    the request is one turn. Without the rule it is cut in two."""
    from convener.speech.turns.decision import wait_unrouted

    def run(waits: bool) -> list:
        comp = TurnCompletion(None, text_comp.text, S.turn_complete_threshold, unrouted_waits=waits)
        det = TurnDetector(energy_vad, S, completion=True)
        said = iter(["Get me on the first.", "Get me on the first flight to Atlanta."])
        text, out = "", []
        for f in frames_of(silence(300) + tone(900) + silence(400) + tone(800) + silence(2500), 8000, start=T0):
            for e in det.process(f):
                out.append(e)
                if isinstance(e, TurnPaused) and not e.second:
                    text = next(said)
                if not isinstance(e, TurnPaused):
                    continue
                d = comp.decide(None, text, look=e.look)
                if comp.asks_routing(d, e.look) and "Atlanta" not in text:  # what the floor answers
                    d = wait_unrouted(d)
                    assert d.unrouted and not d.complete and "no agent fits" in d.describe()
                if d.complete:
                    ended = det.end_now(e) if e.look == 1 else None
                    if ended is None:
                        det.end_soon(e)
                    else:
                        out.append(ended)
        return [e for e in out if isinstance(e, TurnEnded)]

    assert text_comp.decide(None, "Get me on the first.").complete  # the words alone: done
    one = run(True)
    assert len(one) == 1 and one[0].speech_end == pytest.approx(T0 + 0.3 + 0.9 + 0.4 + 0.8)
    assert len(run(False)) == 2


def test_the_routing_is_asked_only_for_a_complete_at_the_first_look(text_comp: TurnCompletion) -> None:
    from convener.speech.turns.decision import TurnDecision, wait_unrouted

    comp = TurnCompletion(None, text_comp.text, S.turn_complete_threshold, unrouted_waits=True)
    done, not_done = TurnDecision(True, 0.9), TurnDecision(False, 0.2)
    assert comp.asks_routing(done, 1)
    assert not comp.asks_routing(done, 2) and not comp.asks_routing(done, 3)  # later looks decide as ever
    assert not comp.asks_routing(not_done, 1)
    assert wait_unrouted(not_done) is not_done
    off = TurnCompletion(None, text_comp.text, S.turn_complete_threshold, unrouted_waits=False)
    assert not off.asks_routing(done, 1)
    built = build_completion(MediaSettings(turn_completion="text"))
    assert built is not None and built.unrouted_waits  # on by default
    built = build_completion(MediaSettings(turn_completion="text", turn_unrouted_waits=False))
    assert built is not None and not built.unrouted_waits
