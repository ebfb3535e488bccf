"""Example agents keep their slots per speaker: in a room of two callers, one caller's words
never fill the other's booking (issue 17)."""

from __future__ import annotations

from convener.ofp import envelope as E
from convener.ofp.dialog import text_event
from convener.ofp.envelope import Conversation, Envelope, To
from convener.ofp.manifest import Identification
from convener_agents.flights import FlightsAgent

A = Identification("tag:t,2026:caller-a", "http://me/ofp", "", "Ann", "", role="User")
B = Identification("tag:t,2026:caller-b", "http://me/ofp", "", "Bob", "", role="User")
FLOOR = "tag:t,2026:convener"


def _texts(out: Envelope) -> list[str]:
    return [e.dialog_event.text if e.dialog_event else e.event_type for e in out.events]


def test_two_callers_fill_their_own_slots() -> None:
    agent = FlightsAgent("http://f/ofp")
    conv = Conversation("conv:room", [A, B, agent.manifest.identification], {}, [])

    def say(who: Identification, text: str) -> list[str]:
        return _texts(agent.answer(Envelope(conv, who.speaker_uri,
                                            [E.utterance(text_event(who.speaker_uri, text))])))

    invite = E.invite(To.of(agent.manifest.identification),
                      dialog_history=[text_event(A.speaker_uri, "Book a flight to Denver")])
    assert _texts(agent.answer(Envelope(conv, FLOOR, [invite])))[1] == \
        "A flight to Denver. Where are you flying from?"
    assert say(B, "Seattle to Miami, Friday")[0].startswith("A flight to Miami")
    # A's booking still has only A's words: Denver, and now Boston.
    assert say(A, "From Boston") == ["What date would you like to travel?"]
    state = agent.conversations["conv:room"]
    assert state.by_speaker[A.speaker_uri]["destination"] == "Denver"
    assert state.by_speaker[B.speaker_uri]["destination"] == "Miami"
