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

Default hang-over 500 ms: pauses inside a telephone utterance (breath, hesitation, between
clauses) are mostly below ~400 ms, so shorter hang-overs cut callers off mid-sentence (the
premature reply then gets barged into — worse than 200 ms more wait). It is the single largest
fixed term in response latency, so it is a setting; the speech engineer may lower it when a
semantic end-of-turn model confirms the turn.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

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

    @property
    def duration_ms(self) -> float:
        return len(self.audio) * 500.0 / self.sample_rate

    def mark(self, timings: TurnTimings) -> None:
        """Record speech_start / speech_end / end_of_turn in ``timings``."""
        timings.mark("speech_start", self.speech_start)
        timings.mark("speech_end", self.speech_end)
        timings.mark("end_of_turn", self.end_of_turn)


TurnEvent = SpeechStarted | TurnEnded


class TurnDetector:
    """Feed inbound frames in order with ``process``; get ``TurnEvent``s back."""

    def __init__(self, vad: Vad | _ProbabilityVad, settings: MediaSettings | None = None) -> None:
        self.vad = as_vad(vad)
        s = settings or MediaSettings()
        self.threshold = s.vad_threshold
        self.low_threshold = s.vad_threshold - s.vad_hysteresis
        self.preroll_s = s.turn_preroll_ms / 1000.0
        self.min_speech_s = s.turn_min_speech_ms / 1000.0
        self.hangover_s = s.turn_hangover_ms / 1000.0
        self.max_utt_s = s.turn_max_utterance_ms / 1000.0
        self.tail_s = s.turn_tail_ms / 1000.0
        self.state = "idle"  # idle | candidate | speech
        self._preroll: deque[AudioFrame] = deque()
        self._preroll_dur = 0.0
        self._cand: list[AudioFrame] = []
        self._cand_dur = 0.0
        self._utt: list[AudioFrame] = []
        self._utt_preroll: list[AudioFrame] = []
        self._utt_dur = 0.0
        self._silence_s = 0.0
        self._speech_start = 0.0
        self._speech_end = 0.0
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
        self._utt_dur += dur
        if p >= self.low_threshold:
            self._silence_s = 0.0
            self._speech_end = frame.timestamp + dur
        else:
            self._silence_s += dur
        if self._silence_s >= self.hangover_s - 1e-9:
            return [self._end(frame, forced=False)]
        if self._utt_dur >= self.max_utt_s - 1e-9:
            return [self._end(frame, forced=True)]
        return []

    def _maybe_confirm(self, frame: AudioFrame) -> list[TurnEvent]:
        if self._cand_dur < self.min_speech_s - 1e-9:
            return []
        self.state = "speech"
        self._speech_start = self._cand[0].timestamp
        self._speech_end = frame.timestamp + frame.duration
        self._utt_preroll = list(self._preroll)
        self._preroll.clear()
        self._preroll_dur = 0.0
        self._utt = self._cand
        self._utt_dur = self._cand_dur
        self._cand = []
        self._silence_s = 0.0
        return [SpeechStarted(self._speech_start, frame.timestamp + frame.duration)]

    @property
    def trailing_silence_s(self) -> float:
        """Silence since the last voiced frame of the current utterance (0 outside speech)."""
        return self._silence_s if self.state == "speech" else 0.0

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
        return b"".join(f.pcm for f in self._utt_preroll) + b"".join(f.pcm for f in frames)

    def _end(self, frame: AudioFrame, forced: bool) -> TurnEnded:
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
        self._utt = []
        self._utt_preroll = []
        self._utt_dur = 0.0
        self._silence_s = 0.0
