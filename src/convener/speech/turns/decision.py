"""The turn-completion decision (pure): has the caller finished, given what the models say?

Two opinions may be available after the short VAD stop: the audio model's probability that the
turn is complete (Smart Turn, prosody and wording from the sound) and the transcript model's
(the words of the speculative recognition). ``decide`` combines those present:

- none: no decision possible here; the detector's silence limit ends the turn;
- one: that probability against the threshold;
- both: complete only when BOTH say so (the lower of the two against the threshold). A
  false "finished" cuts the caller off; a false "unfinished" costs waiting. On the project's
  benchmark speech the audio model calls most unfinished phrases finished (synthetic voices
  end every phrase with falling prosody), so an average would let it outvote the words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnDecision:
    complete: bool
    probability: float | None  # the combined probability; None when no model gave one
    audio: float | None = None
    text: float | None = None

    def describe(self) -> str:
        parts = [f"{k} {v:.2f}" for k, v in (("audio", self.audio), ("text", self.text)) if v is not None]
        return ("complete" if self.complete else "incomplete") + (f" ({', '.join(parts)})" if parts else "")


def decide(audio: float | None, text: float | None, threshold: float = 0.5) -> TurnDecision:
    present = [p for p in (audio, text) if p is not None]
    if not present:
        return TurnDecision(False, None, audio, text)
    p = min(present)
    return TurnDecision(p >= threshold, p, audio, text)
