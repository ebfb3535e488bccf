"""Deepgram Flux drives the end of turn: eager → prepare, resumed → cancel, end → final (pure).

Flux decides the end of turn itself (``EndOfTurn``) and, with ``eager_eot_threshold``, warns
early (``EagerEndOfTurn``) and takes the warning back when the caller goes on
(``TurnResumed``). ``FluxTurnGate`` turns that event stream into actions for the shell:

- ``Prepare(text)``: the turn is probably over; work may start (the text is held ready), but
  nothing leaves convener: no OFP envelope goes out before ``Final``, agents act on what they
  receive;
- ``Cancel(text)``: the caller resumed; the prepared work is void;
- ``Final(text)``: the turn is over; the only action after which the turn may be sent.

A ``Final`` whose text equals the prepared text counts as a ``hit`` (the eager work was used).
"""

from __future__ import annotations

from dataclasses import dataclass

from convener.speech.asr import AsrEvent, EagerEndOfTurn, EndOfTurn, FinalTranscript, TurnResumed


@dataclass(frozen=True, slots=True)
class Prepare:
    text: str


@dataclass(frozen=True, slots=True)
class Cancel:
    text: str


@dataclass(frozen=True, slots=True)
class Final:
    text: str
    prepared: bool  # the eager text was the final text: prepared work can be used as is


FluxAction = Prepare | Cancel | Final


class FluxTurnGate:
    def __init__(self) -> None:
        self.prepared: str | None = None
        self._finals: list[str] = []
        self.prepares = 0
        self.cancels = 0
        self.hits = 0

    def on_event(self, event: AsrEvent) -> FluxAction | None:
        if isinstance(event, EagerEndOfTurn):
            self.prepared = event.text
            self.prepares += 1
            return Prepare(event.text)
        if isinstance(event, TurnResumed):
            was, self.prepared = self.prepared, None
            if was is None:
                return None
            self.cancels += 1
            return Cancel(was)
        if isinstance(event, FinalTranscript):
            self._finals.append(event.text)
            return None
        if isinstance(event, EndOfTurn):
            text = (event.text or " ".join(self._finals)).strip()
            hit = self.prepared is not None and self.prepared.strip() == text
            self.hits += hit
            self.prepared, self._finals = None, []
            return Final(text, hit)
        return None
