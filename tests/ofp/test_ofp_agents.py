"""The example agents, envelope in, envelope out (no HTTP)."""

from __future__ import annotations

from convener.ofp import envelope as E
from convener.ofp.dialog import text_event
from convener.ofp.envelope import Conversation, Envelope, Event, To
from convener.ofp.manifest import Identification
from convener.ofp.validate import validate_envelope
from convener_agents.base import ConversationState
from convener_agents.flights import FlightsAgent
from convener_agents.hotels import HotelsAgent
from convener_agents.lexicon import find_date
from convener_agents.weather import WeatherAgent

CALLER = Identification("tag:t,2026:caller", "http://me/ofp", "", "Caller", "", role="User")
FLOOR = "tag:t,2026:convener"


def conv(*extra: Identification) -> Conversation:
    return Conversation("conv:a", [CALLER, *extra], {}, [])


def said(text: str) -> Event:
    return E.utterance(text_event(CALLER.speaker_uri, text))


def talk(agent: FlightsAgent | HotelsAgent | WeatherAgent, text: str) -> list[str]:
    out = agent.answer(Envelope(conv(agent.manifest.identification), CALLER.speaker_uri, [said(text)]))
    assert validate_envelope(out.to_dict()) == []
    return [e.dialog_event.text if e.dialog_event else e.event_type for e in out.events]


def invite(agent: FlightsAgent | HotelsAgent | WeatherAgent, *history: str) -> list[str]:
    ev = E.invite(To.of(agent.manifest.identification),
                  dialog_history=[text_event(CALLER.speaker_uri, h) for h in history])
    out = agent.answer(Envelope(conv(), FLOOR, [ev]))
    assert validate_envelope(out.to_dict()) == []
    return [e.dialog_event.text if e.dialog_event else e.event_type for e in out.events]


def test_flights_fills_slots_confirms_and_yields() -> None:
    a = FlightsAgent("http://f/ofp")
    assert invite(a, "Book flight to Denver") == ["acceptInvite", "A flight to Denver. Where are you flying from?"]
    assert talk(a, "Boston") == ["What date would you like to travel?"]
    assert talk(a, "December 5th") == ["Boston to Denver, December 5. Shall I book it?"]
    assert talk(a, "no") == ["Okay, not booked. What should I change?"]
    assert talk(a, "make it the 6th of December") == ["Boston to Denver, December 6. Shall I book it?"]
    booked = talk(a, "yes")
    assert booked[0].startswith("Booked: Boston to Denver, December 6. Confirmation FL") and booked[1] == "yieldFloor"


def test_flights_everything_at_once_and_bare_invite() -> None:
    a = FlightsAgent("http://f/ofp")
    assert invite(a) == ["acceptInvite", "Hi, this is Flights. Where would you like to fly?"]
    assert talk(a, "from Chicago to Seattle tomorrow") == ["Chicago to Seattle, tomorrow. Shall I book it?"]


def test_agents_keep_quiet_without_the_floor_and_ignore_events_for_others() -> None:
    a = WeatherAgent("http://w/ofp")
    assert talk(a, "weather in Paris") == []  # not invited
    invite(a, "weather in Paris")
    a.answer(Envelope(conv(), FLOOR, [E.revoke_floor(To(a.speaker_uri), "@override")]))
    assert talk(a, "and London?") == []
    other = Envelope(conv(), FLOOR, [E.grant_floor(To("tag:t,2026:someone-else"))])
    a.answer(other)
    assert talk(a, "and London?") == []
    a.answer(Envelope(conv(), FLOOR, [E.grant_floor(To(a.speaker_uri))]))
    assert talk(a, "and London?") == ["In London today: overcast, 11 degrees Celsius."]
    a.answer(Envelope(conv(), FLOOR, [E.uninvite(To(a.speaker_uri), "@error")]))
    assert "conv:a" not in a.conversations


def test_get_manifests_answers_with_a_valid_manifest() -> None:
    for cls in (FlightsAgent, HotelsAgent, WeatherAgent):
        a = cls("http://x/ofp")
        out = a.answer(Envelope(Conversation("c"), FLOOR, [E.get_manifests(To(service_url="http://x/ofp"))]))
        doc = out.to_dict()
        assert validate_envelope(doc) == []
        (m,) = doc["openFloor"]["events"][0]["parameters"]["servicingManifests"]
        assert m["identification"]["conversationalName"] == a.name
        external = a.answer(Envelope(Conversation("c"), FLOOR, [E.get_manifests(scope="external")]))
        assert external.events == []


def test_hotels_and_weather() -> None:
    h = HotelsAgent("http://h/ofp")
    assert invite(h, "I need a hotel in Denver")[1] == (
        "The Crawford in Denver has a room for 189 dollars a night. Shall I book it?")
    assert talk(h, "yes")[0].startswith("Booked at The Crawford in Denver. Confirmation HT")
    w = WeatherAgent("http://w/ofp")
    assert invite(w, "let me talk to the weather agent")[1] == "Which city would you like the weather for?"
    assert talk(w, "Atlantis") == ["Which city would you like the weather for?"]
    assert talk(w, "Seattle") == ["In Seattle today: rainy, 9 degrees Celsius."]


def test_spoken_dates() -> None:
    assert [find_date(t) for t in ("today", "next friday", "Dec 24", "on the 3rd of March", "2026-12-05", "soon")] == [
        "today", "next Friday", "December 24", "March 3", "December 5, 2026", None]


def test_replies_are_short_enough_to_speak() -> None:
    a = FlightsAgent("http://f/ofp")
    texts = invite(a, "Book a flight from New York to San Francisco next Monday") + talk(a, "yes")
    assert all(len(t.split()) <= 16 for t in texts), texts


def test_state_is_per_conversation() -> None:
    a = FlightsAgent("http://f/ofp")
    invite(a, "Book a flight to Denver")
    assert isinstance(a.conversations["conv:a"], ConversationState)
    assert a.conversations["conv:a"].slots["destination"] == "Denver"
