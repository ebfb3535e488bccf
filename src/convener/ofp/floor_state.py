"""What a live floor holds, as plain data to store and to restore after a restart: no I/O.

``FloorState`` is taken from a ``FloorSession`` (``FloorSession.floor_state()``) after every
change that matters (each caller turn, each envelope an agent posted) and written to the
transcript store. When convener comes back (a restart, a reconnect) and adopts a caller of that
room, ``FloorSession.resume(state)`` puts it back: the same OFP conversation id (so the agents
keep their own state of the conversation), the same conversants and floor holder, the dialog
history that invited agents get.

``resume_prompt(state)`` is what the caller hears on resume: one short sentence, then the last
question again, read back from the history (the agent's last utterance). Not re-sent to the
agent: an agent that answered "Shall I book it?" with a booking would book twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from convener.ofp.dialog import DialogEvent, dialog_event_from_dict
from convener.ofp.errors import ParseError
from convener.ofp.manifest import Identification, identification_from_dict

VERSION = 1
LOST_YOU = "Sorry, I lost you for a moment."
SAY_AGAIN = "Could you say that again?"


@dataclass
class FloorState:
    conversation_id: str
    room: str = ""
    conversants: list[Identification] = field(default_factory=list)  # agents and humans, not us
    floor_granted: list[str] = field(default_factory=list)
    convener: str | None = None
    caller_uri: str | None = None  # the human the session started with
    humans: list[str] = field(default_factory=list)
    history: list[DialogEvent] = field(default_factory=list)

    @property
    def invited(self) -> list[str]:
        """The agents in the conversation (conversants that are not people)."""
        return [c.speaker_uri for c in self.conversants if c.speaker_uri not in self.humans]

    @property
    def floor_holder(self) -> str | None:
        """The agent holding the floor, if one does."""
        return next((u for u in self.floor_granted if u in self.invited), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "conversationId": self.conversation_id,
            "room": self.room,
            "conversants": [c.to_dict() for c in self.conversants],
            "floorGranted": list(self.floor_granted),
            "convener": self.convener,
            "callerUri": self.caller_uri,
            "humans": list(self.humans),
            "history": [d.to_dict() for d in self.history],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def floor_state_from_json(data: str | bytes | dict[str, Any]) -> FloorState:
    """Read a stored state; ``ParseError`` when it is not one (the caller then starts afresh)."""
    try:
        d = json.loads(data) if isinstance(data, str | bytes) else data
    except ValueError as e:
        raise ParseError(f"floor state is not JSON: {e}") from None
    if not isinstance(d, dict) or d.get("version") != VERSION or not isinstance(d.get("conversationId"), str):
        raise ParseError("not a floor state of version 1")
    notes: list[str] = []
    try:
        conversants = [identification_from_dict(c, where="conversants", notes=notes)
                       for c in d.get("conversants") or []]
        history = [dialog_event_from_dict(h, where="history", notes=notes, default_speaker="")
                   for h in d.get("history") or []]
    except (TypeError, AttributeError) as e:
        raise ParseError(f"floor state: {e}") from None

    def strs(key: str) -> list[str]:
        v = d.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ParseError(f"floor state: {key} is not a list of strings")
        return v

    convener, caller = d.get("convener"), d.get("callerUri")
    return FloorState(
        conversation_id=d["conversationId"],
        room=d.get("room") if isinstance(d.get("room"), str) else "",
        conversants=conversants,
        floor_granted=strs("floorGranted"),
        convener=convener if isinstance(convener, str) else None,
        caller_uri=caller if isinstance(caller, str) else None,
        humans=strs("humans"),
        history=history,
    )


def last_question(state: FloorState) -> DialogEvent | None:
    """The agent's last utterance, when nobody has spoken since (what the caller is to answer)."""
    if not state.history:
        return None
    last = state.history[-1]
    if last.speaker_uri in state.humans or not last.text.strip():
        return None
    return last


def resume_prompt(state: FloorState) -> list[tuple[str, str | None]]:
    """What the caller hears on resume, as (text, speakerUri of who says it; None = convener).

    After an agent's question: the apology, then the question again in its voice. After the
    caller's own words (convener died before the answer was spoken) or with no history: the
    apology and a request to say it again."""
    q = last_question(state)
    if q is not None:
        return [(LOST_YOU, None), (q.text, q.speaker_uri)]
    if state.history:
        return [(f"{LOST_YOU} {SAY_AGAIN}", None)]
    return [(LOST_YOU, None)]
