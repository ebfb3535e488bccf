"""Routing without the embedding model: names, keyphrases, bounds, the pure decision."""

from __future__ import annotations

from dataclasses import replace

import pytest

from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.routing import Router, choose, decide, explicit_request, rank, score, split_requests
from convener.ofp.routing.decision import KEYPHRASES, MEANING, Candidate, DomainEvidence, none_bar
from convener.ofp.routing.embeddings import MAX_UNIT_CHARS, MAX_UNITS, content_key, units
from convener.ofp.routing.keyphrases import (
    MAX_DESCRIPTIONS,
    MAX_KEYPHRASES,
    MAX_TEXT_CHARS,
    descriptions,
    keyphrases,
)
from convener_agents.flights import FlightsAgent
from convener_agents.hotels import HotelsAgent
from convener_agents.weather import WeatherAgent

MANIFESTS: list[Manifest] = [
    cls(f"http://127.0.0.1:{9000 + i}/ofp").manifest for i, cls in enumerate((FlightsAgent, HotelsAgent, WeatherAgent))
]
FLIGHTS, HOTELS, WEATHER = MANIFESTS


def manifest(
    name: str, synopsis: str = "", keyphrases: list[str] | None = None, descriptions: list[str] | None = None
) -> Manifest:
    return Manifest(
        Identification(
            f"tag:test.invalid,2026:{name.lower().replace(' ', '-')}",
            f"http://{name.lower()}.invalid/",
            conversational_name=name,
            synopsis=synopsis,
        ),
        [Capability(keyphrases or [], descriptions or [])],
    )


def name_of(m: Manifest | None) -> str | None:
    return m.identification.conversational_name if m else None


RENTRIGHT = manifest("RentRight", "Your car rental agent.", ["car hire"], ["Reserve a rental vehicle."])
POLLY = manifest("Polly the Parrot", "A friendly parrot that repeats everything you say!", ["echo", "repeat"])
ALL = [*MANIFESTS, RENTRIGHT, POLLY]


def test_explicit_requests_in_common_wordings() -> None:
    cases = {
        "put me through to the weather agent": "Weather",
        "Put me through to Weather, please.": "Weather",
        "can I speak with hotels": "Hotels",
        "Can I speak with Hotels, please?": "Hotels",
        "get me the weather agent": "Weather",
        "transfer me to flights": "Flights",
        "I'd like RentRight please": "RentRight",
        "RentRight, please": "RentRight",
        "can I talk to Polly?": "Polly the Parrot",
        "connect me to polly the parrot": "Polly the Parrot",
        "i wanna talk to the hotels guy": "Hotels",
    }
    for text, want in cases.items():
        assert name_of(explicit_request(text, ALL)) == want, text
    for text in ("what's the weather like", "Book a room in Boston", "I need a car at the airport"):
        assert explicit_request(text, ALL) is None, text


def test_keyphrase_stuffing_cannot_win() -> None:
    words = [f"word{i}" for i in range(10_000)]
    stuffed = manifest("Stuffer", "x" * 1_000_000, [*FLIGHTS.keyphrases, *HOTELS.keyphrases, *words], ["y" * 1_000_000])
    ms = [stuffed, *MANIFESTS]
    assert name_of(rank("Book a flight to Denver", ms)[0].manifest) == "Flights"
    assert name_of(rank("I need a hotel room in Boston", ms)[0].manifest) == "Hotels"
    assert score("Book a flight to Denver", stuffed) < score("Book a flight to Denver", FLIGHTS) / 2


def test_hostile_manifests_are_bounded_in_what_is_read_and_embedded() -> None:
    words = [f"word{i}" for i in range(10_000)]
    stuffed = manifest("Stuffer", "s" * 1_000_000, words, ["d" * 1_000_000] * 50)
    pieces = units(stuffed)
    assert len(pieces) <= MAX_UNITS and all(len(p) <= MAX_UNIT_CHARS for p in pieces)
    # Scoring reads a bounded part of it: the work for the others does not grow with it.
    assert len(keyphrases(stuffed)) == MAX_KEYPHRASES
    assert len(descriptions(stuffed)) <= MAX_DESCRIPTIONS
    assert all(len(d) <= MAX_TEXT_CHARS for d in descriptions(stuffed))
    # Changes past what is read do not change the embedding key.
    tail = manifest("Stuffer", "s" * 1_000_000 + "tail", [*words, "more"], ["d" * 1_000_000] * 50)
    assert content_key(tail) == content_key(stuffed)


def test_split_requests() -> None:
    assert split_requests("I need a flight and a hotel in Denver") == ["I need a flight", "a hotel in Denver"]
    assert split_requests("Book a room in Chicago, then tell me the weather there") == [
        "Book a room in Chicago",
        "tell me the weather there",
    ]
    assert split_requests("Boston to Denver next Friday") == ["Boston to Denver next Friday"]


def test_decide_clear_ask_none_and_focal() -> None:
    c = MEANING
    cands = [Candidate(FLIGHTS, 1.0, 0.6), Candidate(HOTELS, 0.0, 0.2), Candidate(WEATHER, 0.0, 0.1)]
    assert decide(cands, c).kind == "invite" and decide(cands, c).target is FLIGHTS
    close = [Candidate(FLIGHTS, 0.0, 0.40), Candidate(RENTRIGHT, 0.0, 0.395), Candidate(WEATHER, 0.0, 0.1)]
    d = decide(close, c)
    assert d.kind == "ask" and {name_of(m) for m in d.targets} == {"Flights", "RentRight"}
    low = [Candidate(FLIGHTS, 0.0, 0.05), Candidate(HOTELS, 0.0, 0.04)]
    assert decide(low, c).kind == "none"
    named = [Candidate(FLIGHTS, 0.0, 0.9), Candidate(WEATHER, 0.0, 0.1, explicit=True)]
    assert decide(named, c).target is WEATHER
    # An agent holds the floor: a close call stays with it; a clearly better fit moves.
    fl = [FLIGHTS.identification.speaker_uri]
    assert decide([Candidate(FLIGHTS, 0.0, 0.23), Candidate(WEATHER, 0.0, 0.30)], c, fl).kind == "stay"
    assert decide([Candidate(FLIGHTS, 0.0, 0.07), Candidate(HOTELS, 0.0, 0.72)], c, fl).target is HOTELS


def test_the_none_bar_rises_only_when_a_domain_nobody_holds_is_clearly_closer() -> None:
    c = replace(MEANING, outside_weight=1.5, outside_margin=0.03)
    assert none_bar(0.30, c) == c.none_below  # no domains: the plain threshold
    assert none_bar(0.30, replace(c, outside_weight=0.0), DomainEvidence(0.2, 0.9)) == c.none_below  # turned off
    # Outside no better than the best agent (or the closest held domain) plus the margin: unchanged.
    assert none_bar(0.30, c, DomainEvidence(inside=0.25, outside=0.32)) == c.none_below
    assert none_bar(0.30, c, DomainEvidence(inside=0.40, outside=0.42)) == c.none_below
    # Clearly closer to a domain nobody holds: the bar rises by the weight times the excess.
    assert none_bar(0.30, c, DomainEvidence(inside=0.25, outside=0.45)) == pytest.approx(
        c.none_below + 1.5 * (0.45 - 0.30 - 0.03)
    )
    # The held side counts when it is above the best agent's own score.
    assert none_bar(0.30, c, DomainEvidence(inside=0.40, outside=0.45)) == pytest.approx(
        c.none_below + 1.5 * (0.45 - 0.40 - 0.03)
    )


def test_a_request_closer_to_a_service_nobody_offers_gets_none_unless_an_agent_is_strong() -> None:
    c = replace(MEANING, outside_weight=1.5, outside_margin=0.03)
    weak = [Candidate(WEATHER, 0.0, 0.30), Candidate(FLIGHTS, 0.0, 0.20)]
    general_knowledge = DomainEvidence(inside=0.26, outside=0.48)
    d = decide(weak, c, evidence=general_knowledge)
    assert d.kind == "none" and "nobody here offers" in d.why
    assert decide(weak, c).target is WEATHER  # the same scores without the domains' evidence
    assert decide(weak, replace(c, outside_weight=0.0), evidence=general_knowledge).target is WEATHER
    # Soft: a strong agent still wins against the same pull elsewhere.
    strong = [Candidate(WEATHER, 0.0, 0.55), Candidate(FLIGHTS, 0.0, 0.20)]
    assert decide(strong, c, evidence=general_knowledge).target is WEATHER
    # An agent holding the floor keeps follow-ups; the bar is for first requests.
    fl = [WEATHER.identification.speaker_uri]
    assert decide(weak, c, fl, evidence=general_knowledge).kind == "stay"
    # A named agent is invited whatever the domains say.
    named = [Candidate(WEATHER, 0.0, 0.1), Candidate(FLIGHTS, 0.0, 0.1, explicit=True)]
    assert decide(named, c, evidence=general_knowledge).target is FLIGHTS


def test_keyphrase_router_asks_on_ties_and_names_none() -> None:
    airport_cars = manifest("RentRight", "Cars.", ["airport"])
    r = Router.keyphrases_only()
    d = r.route("something at the airport", [FLIGHTS, airport_cars])
    assert d.kind == "ask" and {name_of(m) for m in d.targets} == {"Flights", "RentRight"}
    assert r.route("What is the meaning of life?", MANIFESTS).kind == "none"
    assert KEYPHRASES.none_below == 1.0


def test_two_requests_go_to_the_first_then_the_second() -> None:
    d = Router.keyphrases_only().route("I need a flight and a hotel in Denver", MANIFESTS)
    assert d.target is FLIGHTS and d.then is HOTELS and d.then_text == "a hotel in Denver"


def test_the_answer_to_the_question_settles_it() -> None:
    opts = [FLIGHTS, RENTRIGHT]
    assert choose("the first one", opts) is FLIGHTS
    assert choose("the second one please", opts) is RENTRIGHT
    assert choose("flights please", opts) is FLIGHTS
    assert choose("RentRight", opts) is RENTRIGHT
    r = Router.keyphrases_only()
    assert r.choose("car rental", opts) is RENTRIGHT
    assert r.choose("hmm I don't know", opts) is None


def test_keyphrases_shared_with_other_manifests_are_weak_evidence() -> None:
    from convener.ofp.routing.keyphrases import common_words

    cars = manifest("RentRight", "Car rental at airport and downtown branches.", ["car hire"])
    common = common_words([FLIGHTS, cars])
    assert "airport" in common and "flight" not in common
    text = "Can you hold a minivan for me at the Phoenix airport?"
    assert score(text, FLIGHTS, common) < score(text, FLIGHTS) / 2
    assert score("Book a flight to Denver", FLIGHTS, common) == score("Book a flight to Denver", FLIGHTS)


def test_a_journey_between_places_is_recognised() -> None:
    from convener.ofp.routing.decision import travel_pattern

    for text in (
        "I need to get from Boston to Denver next Friday",
        "Boston to Denver next Friday.",
        "hmm I need to uh get home to portland from um austin",
        "a seat to Chicago on Monday",
    ):
        assert travel_pattern(text), text
    for text in (
        "What's the weather in Denver?",
        "To be honest I just want a table for two",
        "I'd like to book a room",
        "Send a taxi to the station",
    ):
        assert not travel_pattern(text), text
