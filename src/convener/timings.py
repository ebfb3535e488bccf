"""Per-turn timing marks, recorded inside the program so every user can see where time goes.

A ``TurnTimings`` collects ``time.monotonic()`` marks for the stages of one caller turn. The
stage names are fixed so benchmarks, logs and metrics agree.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

# The stages of one turn, in pipeline order.
STAGES = (
    "speech_start",  # VAD saw the caller start speaking
    "speech_end",  # last voiced frame of the caller's turn
    "turn_paused",  # short VAD stop: the turn-completion model is asked (not without one)
    "end_of_turn",  # endpointing decided the turn is over (completion decision, or hang-over)
    "asr_final",  # final text available
    "envelope_sent",  # utterance envelope posted to the agent(s)
    "reply_received",  # first agent reply envelope received
    "tts_first_chunk",  # first synthesised audio chunk ready
    "first_audio_out",  # first reply frame sent to Asterisk
)


@dataclass
class TurnTimings:
    turn_id: str = ""
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, at: float | None = None) -> float:
        if stage not in STAGES:
            raise ValueError(f"unknown turn stage {stage!r}")
        t = time.monotonic() if at is None else at
        self.marks.setdefault(stage, t)
        return t

    def between(self, a: str, b: str) -> float | None:
        """Seconds from stage ``a`` to stage ``b``, or None when either is missing."""
        if a in self.marks and b in self.marks:
            return self.marks[b] - self.marks[a]
        return None

    def breakdown_ms(self) -> dict[str, float]:
        """Milliseconds spent in each consecutive pair of the stages that were recorded."""
        present = [s for s in STAGES if s in self.marks]
        return {
            f"{a}->{b}": round((self.marks[b] - self.marks[a]) * 1000, 1)
            for a, b in itertools.pairwise(present)
        }
