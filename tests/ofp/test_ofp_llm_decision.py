"""The LLM convener's prompt and the strict check of its answer (pure)."""

from __future__ import annotations

import json

import pytest

from convener.ofp.dialog import text_event
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.routing.llm import InvalidDecision, parse_decision, prompt


def _m(name: str, synopsis: str, keyphrases: list[str]) -> Manifest:
    return Manifest(Identification(speaker_uri=f"tag:t,2026:{name.lower()}", service_url=f"http://x/{name}",
                                   conversational_name=name, synopsis=synopsis),
                    [Capability(keyphrases=keyphrases, descriptions=[f"{name} things."])])


FLIGHTS = _m("Flights", "Books flights.", ["flight", "fly"])
HOTELS = _m("Hotels", "Books hotel rooms.", ["hotel", "room"])
AGENTS = [FLIGHTS, HOTELS]


def test_prompt_shows_agents_floor_and_dialog():
    caller = "tag:t,2026:caller"
    history = [text_event(caller, "Book a flight"), text_event(FLIGHTS.identification.speaker_uri, "Where to?")]
    names = {caller: "Caller", FLIGHTS.identification.speaker_uri: "Flights"}
    system, user = prompt("To Denver, and a hotel", AGENTS, history, names, [FLIGHTS.identification.speaker_uri])
    assert "- Flights: Books flights. Flights things. keyphrases: flight, fly" in system["content"]
    assert '"action": "ask"' in system["content"] and '"action": "stay"' in system["content"]
    assert "Agent holding the floor: Flights" in user["content"]
    assert "Caller: Book a flight\nFlights: Where to?" in user["content"]
    assert user["content"].endswith('The caller just said: "To Denver, and a hotel"')


@pytest.mark.parametrize(("raw", "kind", "targets"), [
    ('{"action": "invite", "agent": "Flights"}', "invite", ["Flights"]),
    ('{"action": "invite", "agent": "hotels"}', "invite", ["Hotels"]),  # case does not matter
    ('```json\n{"action": "handover", "agent": "Hotels"}\n```', "invite", ["Hotels"]),
    ('{"action": "ask", "agents": ["Flights", "Hotels"]}', "ask", ["Flights", "Hotels"]),
    ('{"action": "none"}', "none", []),
    ('{"action": "stay"}', "none", []),  # nobody holds the floor: nothing to stay with
])
def test_valid_answers(raw: str, kind: str, targets: list[str]):
    d = parse_decision(raw, AGENTS)
    assert d.kind == kind
    assert [t.identification.conversational_name for t in d.targets] == targets
    assert d.why.startswith("llm:")


def test_answers_with_an_agent_on_the_floor():
    focal = [FLIGHTS.identification.speaker_uri]
    assert parse_decision('{"action": "stay"}', AGENTS, focal).kind == "stay"
    assert parse_decision('{"action": "none"}', AGENTS, focal).kind == "stay"
    assert parse_decision('{"action": "invite", "agent": "Flights"}', AGENTS, focal).kind == "stay"
    d = parse_decision('{"action": "handover", "agent": "Hotels"}', AGENTS, focal)
    assert d.kind == "invite" and d.target is HOTELS


def test_second_request_and_question():
    d = parse_decision('{"action": "invite", "agent": "Flights", "then": "Hotels"}', AGENTS)
    assert d.target is FLIGHTS and d.then is HOTELS
    d = parse_decision(json.dumps({"action": "ask", "agents": ["Hotels", "Flights"],
                                   "question": "A room, or a flight?"}), AGENTS)
    assert d.targets == (HOTELS, FLIGHTS) and d.question == "A room, or a flight?"


@pytest.mark.parametrize("raw", [
    "Flights",                                                     # prose
    "Sure! {\"action\": \"none\"}",                                # prose around JSON
    "[]", "null", '"invite"',                                     # not an object
    '{"action": "transfer", "agent": "Flights"}',                 # unknown action
    '{"action": "invite"}',                                       # no agent
    '{"action": "invite", "agent": "Trains"}',                    # not an agent of ours
    '{"action": "invite", "agent": 3}',
    '{"action": "invite", "agent": "Flights", "reason": "x"}',    # extra key
    '{"action": "invite", "agent": "Flights", "then": "Cars"}',
    '{"action": "ask", "agents": ["Flights"]}',                   # one agent
    '{"action": "ask", "agents": ["Flights", "flights"]}',        # the same twice
    '{"action": "ask", "agents": "Flights, Hotels"}',
    '{"action": "ask", "agents": ["Flights", "Hotels"], "question": "' + "word " * 30 + '"}',
    '{"action": "none", "agent": "Flights"}',
    "x" * 5000,
])
def test_invalid_answers_are_refused(raw: str):
    with pytest.raises(InvalidDecision):
        parse_decision(raw, AGENTS)
