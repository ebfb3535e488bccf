"""A floor's state stored and put back: the conversation goes on after convener died mid-call."""

from __future__ import annotations

import time

import aiohttp
import pytest
from ofp_helpers import settings_for

from convener.ofp.dialog import text_event
from convener.ofp.errors import ParseError
from convener.ofp.floor_state import LOST_YOU, SAY_AGAIN, FloorState, floor_state_from_json, resume_prompt
from convener.ofp.manifest import Identification
from convener.ofp.session import FloorSession
from convener_agents.serve import RunningAgents

CALLER = "tag:c,2026:caller/1"
FLIGHTS = "tag:a,2026:flights"


def _state(*history: tuple[str, str]) -> FloorState:
    return FloorState(
        conversation_id="conv:1", room="lobby",
        conversants=[Identification(CALLER, "http://c/ofp", conversational_name="Caller"),
                     Identification(FLIGHTS, "http://a/ofp", conversational_name="Flights")],
        floor_granted=[CALLER, FLIGHTS], convener="tag:c,2026:convener", caller_uri=CALLER,
        humans=[CALLER], history=[text_event(who, text) for who, text in history])


def test_json_round_trip() -> None:
    s = _state((CALLER, "Book a flight to Denver"), (FLIGHTS, "Where are you flying from?"))
    back = floor_state_from_json(s.to_json())
    assert back.to_dict() == s.to_dict()
    assert back.invited == [FLIGHTS] and back.floor_holder == FLIGHTS
    assert [d.text for d in back.history] == ["Book a flight to Denver", "Where are you flying from?"]


@pytest.mark.parametrize("raw", ["", "[]", '{"version": 2, "conversationId": "c"}', '{"version": 1}',
                                 '{"version": 1, "conversationId": "c", "humans": [1]}',
                                 '{"version": 1, "conversationId": "c", "conversants": [{"x": 1}]}'])
def test_what_is_not_a_state_is_refused(raw: str) -> None:
    with pytest.raises(ParseError):
        floor_state_from_json(raw)


def test_resume_prompt_asks_the_last_question_again() -> None:
    asked = _state((CALLER, "Book a flight to Denver"), (FLIGHTS, "Where are you flying from?"))
    assert resume_prompt(asked) == [(LOST_YOU, None), ("Where are you flying from?", FLIGHTS)]
    # convener died after the caller spoke, before the answer was heard: ask to say it again.
    answered = _state((FLIGHTS, "Where are you flying from?"), (CALLER, "From Boston"))
    assert resume_prompt(answered) == [(f"{LOST_YOU} {SAY_AGAIN}", None)]
    assert resume_prompt(_state()) == [(LOST_YOU, None)]


def _said(replies: list) -> str:
    return " ".join(r.text for r in replies).lower()


async def test_a_booking_goes_on_after_a_crash(example_agents: RunningAgents) -> None:
    """Session A dies without a word to the agents (no bye); session B resumes its stored
    state: same conversation id, the flights agent keeps the floor and its booking."""
    settings = settings_for(example_agents.urls)
    async with aiohttp.ClientSession() as http:
        a = FloorSession(settings, http=http)
        await a.start()
        await a.user_turn("Book a flight to Denver")
        replies = await a.user_turn("From Boston")
        assert "date" in _said(replies) or "when" in _said(replies), _said(replies)
        stored = a.floor_state("lobby").to_json()  # what the store holds when convener dies
        # (a is never closed: a crash says no bye)

    state = floor_state_from_json(stored)
    assert state.floor_holder == example_agents.agents["flights"].speaker_uri
    assert resume_prompt(state)[1][1] == state.floor_holder  # the agent asks its question again
    b = FloorSession(settings, conversation_id=state.conversation_id)
    try:
        await b.resume(state)
        assert b.conversation_id == a.conversation_id and b.caller_uri == a.caller_uri
        assert b.floor.floor_granted == a.floor.floor_granted
        assert b.floor.convener == a.floor.convener
        assert [d.id for d in b.policy.history] == [d.id for d in a.policy.history]
        replies = await b.user_turn("Next Friday")
        assert {r.agent_name for r in replies} == {"Flights"}, replies
        said = _said(replies)
        assert "boston" in said and "denver" in said, said  # the agent kept its context
    finally:
        await b.close()

    # Without the stored state the same words go nowhere: the test can tell the difference.
    async with FloorSession(settings) as fresh:
        said = _said(await fresh.user_turn("Next Friday"))
        assert "boston" not in said, said


async def test_capturing_the_state_is_cheap(example_agents: RunningAgents) -> None:
    """It runs on the event loop after every turn: with a full history it must take well
    under a millisecond."""
    settings = settings_for(example_agents.urls)
    async with FloorSession(settings) as s:
        await s.user_turn("Book a flight to Denver")
        for i in range(40):
            s.policy.history.append(text_event(CALLER, f"filler sentence number {i} of the history " * 3))
        n = 200
        t0 = time.perf_counter()
        for _ in range(n):
            s.floor_state("lobby").to_json()
        per_call_ms = (time.perf_counter() - t0) / n * 1000
    assert len(s.policy.history) == s.policy.history.maxlen
    assert per_call_ms < 2.0, per_call_ms
    print(f"floor_state().to_json() with {s.policy.history.maxlen} history events: {per_call_ms:.3f} ms")
