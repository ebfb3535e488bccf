"""Caller-side turn detection on inbound frames (pure logic; the VAD is injected).

The VAD is any callable ``vad(pcm16: bytes, sample_rate: int) -> float`` returning the speech
probability of one frame (``convener.speech.vad`` provides the real one; tests use an energy
VAD). A frame is speech when the probability is >= ``vad_threshold``; once speaking, frames
stay speech down to ``vad_threshold - vad_hysteresis`` so soft word endings do not start the
hang-over early.

Events, in media time (frame timestamps, i.e. ``time.monotonic()`` of the audio itself):

- ``SpeechStarted`` once ``turn_min_speech_ms`` of consecutive speech frames were seen (shorter
  bursts — clicks, a door, a cough — are ignored). ``at`` is the first voiced sample;
  ``detected_at`` is when the detector knew (end of the confirming frame). Barge-in uses it.
- ``TurnEnded`` after ``turn_hangover_ms`` of non-speech following speech (or when the
  utterance reaches ``turn_max_utterance_ms``, ``forced=True``). It carries the utterance
  audio: up to ``turn_preroll_ms`` (300 ms) of audio from before the first voiced frame, so the
  first phoneme is not clipped, then the speech, then at most ``turn_tail_ms`` of the trailing
  silence; and the marks ``speech_start``, ``speech_end`` (end of the last voiced frame) and
  ``end_of_turn``.

- ``TurnPaused`` (only with ``completion=True``) after ``turn_stop_ms`` (200 ms) of silence:
  a candidate end. The shell asks a turn-completion model (``convener.speech.turns``) whether
  the caller has finished and, if so, calls ``end_now(pause)`` to end the turn at once. If not,
  the detector keeps listening: the caller speaks again (the pause is void) or the turn ends by
  silence after ``turn_incomplete_wait_ms`` (2 s). A second ``TurnPaused`` (``look=2``)
  comes at ``turn_uncertain_wait_ms`` (800 ms) of silence: the second look, where the shell
  ends the turn unless the words are strongly unfinished (``speech.turns.decision.second_look``).
  A third (``look=3``) at ``turn_doubt_wait_ms`` (1.2 s) reads the same way the words heard
  with low confidence, which the first two looks do not trust (``decision.doubt_look``).

**Where the voice really ended.** Silero's probability trails the voice: it stays above the
threshold for ~100-150 ms of the word's decay and of the noise after it (measured on the turn
benchmark's complete requests: p50 ~140 ms). The first look does not need to wait for that.
When Silero's silence begins, the frames it still called speech just before are checked for
level: those no louder than the line's background at that moment (the first frame Silero
called silence, + 6 dB), which must lie 20 dB under the recent loud part, are counted as
silence already (at most ``turn_energy_end_ms``, 150 ms). Only the
first look (``turn_stop_ms``) and the speculative decode use that credit; the second look, the
silence limit and the turn's audio stay on Silero's end, so patience with hesitating callers is
unchanged. Earlier still, while Silero says speech: when the line had noise just before the
words (not digital silence), frames no louder than it (+ 6 dB) do not move ``speech_end``, and
``quiet_s`` counts them, so the speculative decode can start before Silero's silence and stays
valid until the caller is louder again. ``turn_energy_end_ms = 0`` turns all of it off.

Without a completion model the end of turn is silence alone: ``turn_hangover_ms`` (500 ms).
Pauses inside a telephone utterance (breath, hesitation, between clauses) are mostly below
~400 ms, so a shorter fixed hang-over cuts callers off mid-sentence, and a hesitation of
400–1200 ms after "a flight to …" is cut off by any hang-over short enough to feel quick. The
completion decision removes that trade: a finished request is answered after 200 ms of
silence, an unfinished one waits up to 2 s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from convener.audio import AudioFrame
from convener.media.settings import MediaSettings
from convener.timings import TurnTimings


class Vad(Protocol):
    def __call__(self, pcm16: bytes, sample_rate: int) -> float: ...


class _ProbabilityVad(Protocol):
    def probability(self, pcm: bytes) -> float: ...


def as_vad(vad: Vad | _ProbabilityVad) -> Vad:
    """Accept a ``vad(pcm, rate) -> float`` callable, or an object with ``probability(pcm)``
    (the shape of ``convener.speech.vad``'s per-leg VADs, bound to one sample rate)."""
    if callable(vad):
        return vad
    probability = getattr(vad, "probability", None)
    if callable(probability):
        return lambda pcm16, sample_rate: float(probability(pcm16))
    raise TypeError("VAD must be callable(pcm16, sample_rate) or have probability(pcm16)")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at: float  # first sample of the first voiced frame
    detected_at: float  # end of the frame that confirmed it (min speech reached)


@dataclass(frozen=True, slots=True)
class TurnEnded:
    audio: bytes  # PCM16 LE mono: pre-roll + speech + short tail
    sample_rate: int
    speech_start: float
    speech_end: float
    end_of_turn: float
    preroll_ms: float  # how much of ``audio`` is pre-roll
    forced: bool = False  # cut at turn_max_utterance_ms
    paused: TurnPaused | None = None  # the later look that ended it (``end_soon``), if any

    @property
    def duration_ms(self) -> float:
        return len(self.audio) * 500.0 / self.sample_rate

    def mark(self, timings: TurnTimings) -> None:
        """Record speech_start / speech_end / end_of_turn in ``timings``."""
        timings.mark("speech_start", self.speech_start)
        timings.mark("speech_end", self.speech_end)
        timings.mark("end_of_turn", self.end_of_turn)


@dataclass(frozen=True, slots=True)
class TurnPaused:
    """``turn_stop_ms`` of silence after speech: ask whether the caller has finished."""

    audio: bytes  # the utterance so far, as ``TurnEnded.audio`` would hold it
    sample_rate: int
    speech_end: float  # identifies the pause: end of the last voiced frame
    at: float  # end of the frame that reached turn_stop_ms (or the later look's wait)
    look: int = 1  # 1 after turn_stop_ms, 2 after turn_uncertain_wait_ms, 3 after turn_doubt_wait_ms

    @property
    def second(self) -> bool:
        """A later look (2 or 3): the caller stayed silent past the first."""
        return self.look > 1


TurnEvent = SpeechStarted | TurnPaused | TurnEnded


def compact_gaps(frames: list[AudioFrame], quiet: list[bool], max_gap_s: float) -> list[AudioFrame]:
    """``frames`` with every run of quiet frames longer than ``max_gap_s`` shortened to it: the
    first and the last half of the run are kept, the middle dropped. Runs at the very end (the
    hang-over, already cut to the tail) are kept whole."""
    out: list[AudioFrame] = []
    i, n = 0, len(frames)
    while i < n:
        if not quiet[i]:
            out.append(frames[i])
            i += 1
            continue
        j = i
        while j < n and quiet[j]:
            j += 1
        run = frames[i:j]
        if j < n and sum(f.duration for f in run) > max_gap_s + 1e-9:
            half = max_gap_s / 2
            k, kept = 0, 0.0  # the first half of the gap, after the words before
            while k < len(run) and kept + run[k].duration <= half + 1e-9:
                kept += run[k].duration
                k += 1
            m, rest = len(run), max_gap_s - kept  # the rest, before the words after
            while m > k and run[m - 1].duration <= rest + 1e-9:
                rest -= run[m - 1].duration
                m -= 1
            run = run[:k] + run[m:]
        out += run
        i = j
    return out


class TurnDetector:
    """Feed inbound frames in order with ``process``; get ``TurnEvent``s back."""

    def __init__(self, vad: Vad | _ProbabilityVad, settings: MediaSettings | None = None,
                 completion: bool = False) -> None:
        self.vad = as_vad(vad)
        s = settings or MediaSettings()
        # With a completion model: pause after turn_stop_ms, silence ends it at the longer wait.
        self.completion = completion
        self.stop_s = s.turn_stop_ms / 1000.0
        # The second look; at or beyond the silence limit there is none.
        self.second_s = s.turn_uncertain_wait_ms / 1000.0
        self.silence_limit_s = (s.turn_incomplete_wait_ms if completion else s.turn_hangover_ms) / 1000.0
        # The third look, for words heard badly: not before the second, not after the limit.
        self.doubt_s = min(max(s.turn_doubt_wait_ms, s.turn_uncertain_wait_ms), s.turn_incomplete_wait_ms) / 1000.0
        self.threshold = s.vad_threshold
        self.low_threshold = s.vad_threshold - s.vad_hysteresis
        self.preroll_s = s.turn_preroll_ms / 1000.0
        self.min_speech_s = s.turn_min_speech_ms / 1000.0
        self.hangover_s = s.turn_hangover_ms / 1000.0  # the fallback (no completion model)
        self.max_utt_s = s.turn_max_utterance_ms / 1000.0
        self.tail_s = s.turn_tail_ms / 1000.0
        self.max_gap_s = s.turn_asr_max_gap_ms / 1000.0  # 0: no compaction
        self.energy_end_s = s.turn_energy_end_ms / 1000.0 if completion else 0.0
        self._levels: deque[float] = deque(maxlen=LEVEL_HISTORY)  # dBFS of recent frames, all states
        self._credit_s = 0.0  # quiet frames Silero still called speech, counted as silence
        self._background: float | None = None  # dBFS of the line just before the utterance
        self._loud = -120.0  # loudest frame of the utterance so far
        self._level_quiet_s = 0.0  # trailing frames Silero calls speech but as quiet as the line
        self._pause_floor = 0.0  # quietest frame of the current silence (dBFS)
        self._loud_run = 0  # frames of the current silence, at the end, well above that floor
        self._pending: tuple[TurnPaused, float] | None = None  # end_soon: the look, silence still to hear
        self.confirm_s = s.turn_confirm_ms / 1000.0
        self.state = "idle"  # idle | candidate | speech
        self._preroll: deque[AudioFrame] = deque()
        self._preroll_dur = 0.0
        self._cand: list[AudioFrame] = []
        self._cand_dur = 0.0
        self._utt: list[AudioFrame] = []
        self._utt_quiet: list[bool] = []  # per frame of _utt: below the VAD's low threshold
        self._utt_preroll: list[AudioFrame] = []
        self._utt_dur = 0.0
        self._silence_s = 0.0
        self._speech_start = 0.0
        self._speech_end = 0.0
        self._looks = 0  # the last look (TurnPaused) emitted in the current silence (0-3)
        self._last_frame_end = 0.0
        self.last_probability = 0.0

    def _keep_preroll(self, frame: AudioFrame) -> None:
        self._preroll.append(frame)
        self._preroll_dur += frame.duration
        while self._preroll and self._preroll_dur - self._preroll[0].duration >= self.preroll_s - 1e-9:
            self._preroll_dur -= self._preroll.popleft().duration

    def process(self, frame: AudioFrame) -> list[TurnEvent]:
        p = float(self.vad(frame.pcm, frame.sample_rate))
        self.last_probability = p
        dur = frame.duration
        if self.energy_end_s > 0:
            self._levels.append(level_db(frame.pcm))
        if self.state == "idle":
            if p >= self.threshold:
                self.state = "candidate"
                self._cand = [frame]
                self._cand_dur = dur
                return self._maybe_confirm(frame)
            self._keep_preroll(frame)
            return []
        if self.state == "candidate":
            if p >= self.threshold:
                self._cand.append(frame)
                self._cand_dur += dur
                return self._maybe_confirm(frame)
            # Too short: a click. Its frames become pre-roll history.
            for f in self._cand:
                self._keep_preroll(f)
            self._keep_preroll(frame)
            self._cand = []
            self.state = "idle"
            return []
        # speech
        self._utt.append(frame)
        self._utt_quiet.append(p < self.low_threshold)
        self._utt_dur += dur
        self._last_frame_end = frame.timestamp + dur
        if p >= self.low_threshold:
            self._silence_s = 0.0
            self._credit_s = 0.0
            self._looks = 0
            self._pending = None
            if self._quiet_as_the_line():
                self._level_quiet_s += dur  # Silero's trailing "speech": the voice may be over
            else:
                self._level_quiet_s = 0.0
                self._speech_end = frame.timestamp + dur
        else:
            if self._silence_s == 0.0 and self.energy_end_s > 0:
                self._credit_s = quiet_tail_s(self._levels, dur, self.energy_end_s)
                self._pause_floor, self._loud_run = self._levels[-1], 0
            elif self.energy_end_s > 0:
                lv = self._levels[-1]
                self._pause_floor = min(self._pause_floor, lv)
                self._loud_run = self._loud_run + 1 if lv >= self._pause_floor + VOICE_BACK_DB else 0
            self._silence_s += dur
        if self._silence_s >= self.silence_limit_s - 1e-9:
            return [self._end(frame, forced=False)]
        if self._utt_dur >= self.max_utt_s - 1e-9:
            return [self._end(frame, forced=True)]
        if self.completion and self._looks == 0 and self._silence_s + self._credit_s >= self.stop_s - 1e-9:
            self._looks = 1
            return [TurnPaused(self._audio(), frame.sample_rate, self._speech_end, frame.timestamp + dur)]
        if self.completion and self._looks >= 1:
            # The latest look whose wait has passed (two waits set equal give one look, the later).
            due = [look for look, wait in ((2, self.second_s), (3, self.doubt_s))
                   if self._looks < look and wait < self.silence_limit_s and self._silence_s >= wait - 1e-9]
            if self._pending is not None:
                ended = self._confirm_pending(frame)
                if ended is not None:
                    return [ended]
            if due:
                self._looks = due[-1]
                return [TurnPaused(self._audio(), frame.sample_rate, self._speech_end, frame.timestamp + dur,
                                   due[-1])]
        return []

    def end_current(self) -> TurnEnded | None:
        """End the current utterance now (the recogniser decided the turn is over); None if idle."""
        if self.state != "speech" or not self._utt:
            return None
        return self._end(self._utt[-1], forced=False)

    @property
    def voice_back(self) -> bool:
        """In a pause, the last frames are well above the pause's own floor (``VOICE_BACK_DB``,
        for ``VOICE_BACK_FRAMES``): the caller may have started again though the VAD has not
        said so yet (Silero is slow on a word that begins with a fricative: "sleeps")."""
        return self.state == "speech" and self._silence_s > 0 and self._loud_run >= VOICE_BACK_FRAMES

    def end_soon(self, pause: TurnPaused) -> None:
        """End the turn of a later look (2 or 3) once ``turn_confirm_ms`` (60 ms) more have
        passed with the caller still silent: the VAD hears a caller who starts again tens of ms
        late, and a later look has already waited 800 ms, so 60 ms more costs little. The turn
        comes out of ``process`` as a ``TurnEnded`` whose ``paused`` is this look; nothing comes
        when the caller spoke (``speech_end`` moved) or the line says they are starting to."""
        if self.state == "speech" and abs(self._speech_end - pause.speech_end) <= 1e-9:
            self._pending = (pause, self.confirm_s)

    def _confirm_pending(self, frame: AudioFrame) -> TurnEnded | None:
        assert self._pending is not None
        pause, left = self._pending
        if abs(self._speech_end - pause.speech_end) > 1e-9 or self._silence_s <= 0 or self.voice_back:
            self._pending = None
            return None
        left -= frame.duration
        if left > 1e-9:
            self._pending = (pause, left)
            return None
        return self._end(frame, forced=False, paused=pause)

    def end_now(self, pause: TurnPaused) -> TurnEnded | None:
        """End the turn the pause belongs to (the model said the caller has finished).

        None when that pause is over: the caller spoke again (or the line says they are starting
        to: ``voice_back``), or the turn already ended."""
        if self.state != "speech" or abs(self._speech_end - pause.speech_end) > 1e-9 or not self._utt:
            return None
        if self.voice_back:
            return None
        return self._end(self._utt[-1], forced=False)

    def _quiet_as_the_line(self) -> bool:
        """This frame is no louder than the line was before the utterance (+ QUIET_MARGIN_DB),
        and the utterance was clearly louder than that (GAP_DB)."""
        if self.energy_end_s <= 0 or self._background is None or not self._levels:
            return False
        lv = self._levels[-1]
        self._loud = max(self._loud, lv)
        return self._loud - self._background >= GAP_DB and lv <= self._background + QUIET_MARGIN_DB

    def _maybe_confirm(self, frame: AudioFrame) -> list[TurnEvent]:
        if self._cand_dur < self.min_speech_s - 1e-9:
            return []
        self._background = None
        self._loud = -120.0
        self._level_quiet_s = 0.0
        before = list(self._levels)[-len(self._cand) - PREROLL_LEVELS:-len(self._cand)]
        if self.energy_end_s > 0 and len(before) == PREROLL_LEVELS:
            bg = float(np.median(before))
            # Digital silence before the words (a phone's DTX, a test caller) says nothing of
            # the noise under them: then only Silero's end counts.
            self._background = bg if bg > DIGITAL_SILENCE_DB else None
        self.state = "speech"
        self._speech_start = self._cand[0].timestamp
        self._speech_end = frame.timestamp + frame.duration
        self._utt_preroll = list(self._preroll)
        self._preroll.clear()
        self._preroll_dur = 0.0
        self._utt = self._cand
        self._utt_quiet = [False] * len(self._cand)
        self._utt_dur = self._cand_dur
        self._cand = []
        self._silence_s = 0.0
        self._looks = 0
        return [SpeechStarted(self._speech_start, frame.timestamp + frame.duration)]

    @property
    def trailing_silence_s(self) -> float:
        """Silence since the last voiced frame of the current utterance (0 outside speech)."""
        return self._silence_s if self.state == "speech" else 0.0

    @property
    def quiet_s(self) -> float:
        """``trailing_silence_s`` plus the quiet frames at the end of the voice that Silero still
        called speech (see "Where the voice really ended"); before Silero's silence, how long the
        level has been as quiet as the line was before the words. The speculative decode starts
        on it: ``speech_end`` does not move while the level stays quiet, so a decode started then
        stays valid until the caller is heard again."""
        if self.state != "speech":
            return 0.0
        if self._silence_s > 0:
            return self._silence_s + self._credit_s
        return self._level_quiet_s

    @property
    def speech_end(self) -> float:
        """End of the last voiced frame of the current utterance."""
        return self._speech_end

    def peek(self) -> bytes:
        """The utterance so far as ``TurnEnded.audio`` would hold it if the turn ended now.

        For a speculative decode during the hang-over: if the caller says nothing more, the
        turn's audio will be these samples (plus silence), so its text can be ready early."""
        return self._audio()

    def _audio(self) -> bytes:
        frames = self._utt
        # Cut the hang-over silence down to tail_s.
        excess = self._silence_s - self.tail_s
        while excess > 1e-9 and frames and frames[-1].duration <= excess + 1e-9:
            excess -= frames[-1].duration
            frames = frames[:-1]
        if self.max_gap_s > 0:
            frames = compact_gaps(frames, self._utt_quiet[:len(frames)], self.max_gap_s)
        return b"".join(f.pcm for f in self._utt_preroll) + b"".join(f.pcm for f in frames)

    def _end(self, frame: AudioFrame, forced: bool, paused: TurnPaused | None = None) -> TurnEnded:
        pre = self._utt_preroll
        rate = frame.sample_rate
        audio = self._audio()
        ev = TurnEnded(
            audio=audio,
            sample_rate=rate,
            speech_start=self._speech_start,
            speech_end=self._speech_end,
            end_of_turn=frame.timestamp + frame.duration,
            preroll_ms=sum(f.duration for f in pre) * 1000.0,
            forced=forced,
            paused=paused,
        )
        self.reset()
        return ev

    def reset(self) -> None:
        """Back to idle (pre-roll history is dropped too)."""
        self.state = "idle"
        self._preroll.clear()
        self._preroll_dur = 0.0
        self._cand = []
        self._cand_dur = 0.0
        self._pending = None
        self._utt = []
        self._utt_quiet = []
        self._utt_preroll = []
        self._utt_dur = 0.0
        self._silence_s = 0.0
        self._credit_s = 0.0
        self._level_quiet_s = 0.0
        self._background = None
        self._looks = 0


LEVEL_HISTORY = 150  # frames (3 s at 20 ms) of levels behind the quiet-tail estimate
QUIET_MARGIN_DB = 6.0  # a quiet frame: at most this far above the first frame the VAD called silence
GAP_DB = 20.0  # ... which must lie this far under the recent loud part (else nothing is credited)
PREROLL_LEVELS = 5  # frames before the words whose median level is the line's background
VOICE_BACK_DB = 12.0  # a pause's frame this far above the pause's quietest frame ...
VOICE_BACK_FRAMES = 2  # ... for this many frames in a row: the caller may be speaking again
DIGITAL_SILENCE_DB = -90.0  # a background below this is digital silence, not the line's noise


def level_db(pcm: bytes) -> float:
    """RMS level of a PCM16 frame in dBFS (-120 for digital silence)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if not x.size:
        return -120.0
    rms = math.sqrt(float(np.dot(x, x)) / x.size) / 32768.0
    return 20.0 * math.log10(rms) if rms > 1e-6 else -120.0


def quiet_tail_s(levels: deque[float], frame_s: float, cap_s: float) -> float:
    """How long the voice had already been quiet when the VAD's silence began.

    ``levels`` ends with the frame the VAD first called silence: the line's background right
    now (noise, or digital silence). The frames before it are the VAD's speech. Counts back
    from there the frames no more than ``QUIET_MARGIN_DB`` above that background, up to
    ``cap_s``. The background is taken from this very moment, not from the call's history:
    lines differ, and a phone that sends digital silence between words and noise under them
    would make any longer-term floor wrong. Without a clear gap between the background and the
    loud part of the recent audio (``GAP_DB``) nothing is credited."""
    if len(levels) < 10:
        return 0.0
    arr = np.fromiter(levels, dtype=np.float64, count=len(levels))
    background = arr[-1]
    if float(np.percentile(arr, 90)) - background < GAP_DB:
        return 0.0
    bar = background + QUIET_MARGIN_DB
    n = 0
    limit = int(cap_s / frame_s + 1e-9)
    for lv in arr[-2::-1]:  # from the last VAD-speech frame backwards
        if n >= limit or lv > bar:
            break
        n += 1
    return n * frame_s
