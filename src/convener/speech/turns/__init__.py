"""Turn completion: has the caller finished speaking, or only paused?

After a short VAD stop (``[media] turn_stop_ms``, 200 ms) the caller's turn is judged by
``TurnCompletion.decide``: the audio model (Smart Turn v3.2, ``smart_turn``) on the utterance
so far and/or the transcript classifier (``text_model``) on the speculative recognition,
combined by ``decision.decide``. Complete → the turn ends now; incomplete → the detector keeps
listening; at ``turn_uncertain_wait_ms`` of silence ``decision.second_look`` ends the turn
unless the words are strongly unfinished, and those wait up to ``turn_incomplete_wait_ms``.
``build_completion`` picks the models from ``[media] turn_completion``; when none can be had
the fixed hang-over is the fallback, said in one log line. See docs/decisions.md "Turn-taking"
for the measurements behind the choice.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Protocol

from convener.media.settings import MediaSettings
from convener.speech.turns.decision import TurnDecision, decide, doubt_look, second_look, wait_unrouted

log = logging.getLogger(__name__)

__all__ = ["AudioTurnModel", "TurnCompletion", "TurnDecision", "build_completion", "decide", "doubt_look",
           "second_look", "wait_unrouted"]


class AudioTurnModel(Protocol):
    name: str

    def probability(self, pcm16: bytes, sample_rate: int) -> float: ...


class TextModel(Protocol):
    name: str

    def probability(self, text: str) -> float: ...


# The confidence gate (decision.py) judges transcripts of at least this many words. Whisper's
# confidence on one or two words is low whatever was said (tiny.en through μ-law, 4 voices:
# "Yes." 0.49-0.58, "Two nights." 0.40-0.45, "From Boston." 0.40-0.78, all heard right), and
# such short turns are answers ("Next Friday.") far more often than fragments; every misheard
# fragment the gate is for had four words or more.
GATED_WORDS = 3


@dataclass
class TurnCompletion:
    audio: AudioTurnModel | None
    text: TextModel | None
    threshold: float = 0.5
    min_confidence: float = 0.0  # words heard with less do not end a turn at the first look
    min_last_word: float = 0.0  # nor words whose last word was heard with less
    unrouted_waits: bool = False  # nor words no agent fits (decision.wait_unrouted)

    @property
    def name(self) -> str:
        return "+".join(m.name for m in (self.audio, self.text) if m is not None)

    def decide(self, audio_p: float | None, transcript: str | None, look: int = 1,
               confidence: float | None = None, last_word: float | None = None) -> TurnDecision:
        """``look``: 1 after the stop; 2 after ``turn_uncertain_wait_ms`` of silence (lower bar);
        3 after ``turn_doubt_wait_ms`` (words heard badly read too).
        ``confidence``: the recogniser's confidence in ``transcript``, ``last_word`` in its
        last word (None: unknown)."""
        text_p = self.text.probability(transcript) if self.text is not None and transcript is not None else None
        if transcript is None or len(transcript.split()) < GATED_WORDS:
            confidence = last_word = None  # "Yes." "Next Friday.": answers; a confidence that says nothing
        first = decide(audio_p, text_p, self.threshold, confidence, self.min_confidence,
                       last_word, self.min_last_word)
        if look >= 3:
            return doubt_look(first, transcript)
        return second_look(first, transcript) if look == 2 else first

    def asks_routing(self, decision: TurnDecision, look: int) -> bool:
        """Whether this decision would still wait if no agent fits the words (then ask the floor
        ``fits_nobody`` and apply ``wait_unrouted``): a "complete" at the first look."""
        return self.unrouted_waits and look == 1 and decision.complete


@functools.cache
def _load_audio() -> AudioTurnModel:
    """One Smart Turn session per process (loaded and checked once, shared by all calls)."""
    from convener.speech.turns.smart_turn import SmartTurnModel

    return SmartTurnModel()


def _load_text() -> TextModel:
    from convener.speech.turns.text_model import load_text_model

    return load_text_model()


def build_completion(settings: MediaSettings, transcripts: bool = True) -> TurnCompletion | None:
    """The completion models ``settings.turn_completion`` asks for, or None (fixed hang-over).

    ``transcripts``: the recogniser can decode the utterance so far (offline ASR), so the
    transcript classifier has text to judge. ``auto`` takes the transcript classifier when
    there are transcripts (measured best on the benchmark), else Smart Turn when installed.
    A missing model is one log line and a fallback; a model file that does not match its pin
    is an error (ValueError)."""
    mode = settings.turn_completion
    hangover = f"fixed hang-over {settings.turn_hangover_ms} ms"
    if mode == "off":
        log.info("turn-taking: %s (turn_completion = off)", hangover)
        return None
    want_text = transcripts and mode in ("auto", "text", "both")
    want_audio = mode in ("smart-turn", "both") or (mode == "auto" and not transcripts)
    text: TextModel | None = None
    audio: AudioTurnModel | None = None
    missing: list[str] = []
    if want_text:
        try:
            text = _load_text()
        except FileNotFoundError as e:
            missing.append(f"transcript classifier: {e}")
    if want_audio:
        from convener.speech.turns.smart_turn import ModelMissing

        try:
            audio = _load_audio()
        except (ModelMissing, ImportError) as e:
            missing.append(f"Smart Turn: {e}; pip install 'convener[turn-audio]'")
    if audio is None and text is None:
        why = "; ".join(missing) or "the recogniser gives no transcript to judge"
        log.warning("turn-taking: no completion model (%s): %s", why, hangover)
        return None
    if missing:
        log.warning("turn-taking: %s", "; ".join(missing))
    comp = TurnCompletion(audio, text, settings.turn_complete_threshold, settings.turn_min_confidence,
                          settings.turn_min_last_word_confidence, settings.turn_unrouted_waits)
    log.info("turn-taking: end of turn by completion (%s) after %d ms of silence, at most %d ms",
             comp.name, settings.turn_stop_ms, settings.turn_incomplete_wait_ms)
    return comp
