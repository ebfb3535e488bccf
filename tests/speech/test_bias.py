"""The recogniser's bias context: what goes in, in which order, and its bounds (pure logic)."""

from __future__ import annotations

from dataclasses import dataclass

from convener.ofp.dialog import text_event
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.speech import bias as b
from convener.speech.bias import AgentTerms, build_bias, conversation_bias, last_question

FLIGHTS = AgentTerms("Flights", ["book a flight", "airline tickets"])
WEATHER = AgentTerms("Weather", ["forecast", "temperature"])


def test_priorities_vocabulary_then_names_then_keyphrases_round_robin() -> None:
    ctx = build_bias([FLIGHTS, WEATHER], question="Where are you flying from?", vocabulary=["Denver", "Seattle"])
    assert ctx.terms == ("Denver", "Seattle", "Flights", "Weather", "book a flight", "forecast",
                         "airline tickets", "temperature")
    assert ctx.vocabulary_count == 2
    assert ctx.question == "Where are you flying from?"


def test_prompt_lists_terms_then_the_question() -> None:
    ctx = build_bias([FLIGHTS], question="Where are you flying from?", vocabulary=["Denver"])
    assert ctx.prompt() == "Denver, Flights, book a flight, airline tickets. Where are you flying from?"
    assert build_bias([]).prompt() == ""
    assert not build_bias([]) and build_bias([], question="Which city?")


def test_duplicates_and_junk_are_dropped() -> None:
    ctx = build_bias([AgentTerms("Flights", ["flights", "  ", "x" * 200, "a\nb"])], vocabulary=["FLIGHTS"])
    assert ctx.terms == ("FLIGHTS", "a b")


def test_hostile_manifest_is_bounded_and_cannot_crowd_out_others() -> None:
    hostile = AgentTerms("Spam", [f"buy cheap thing number {i}" for i in range(10_000)])
    huge_name = AgentTerms("N" * 100_000, ["q" * 1_000_000])
    ctx = build_bias([hostile, huge_name, FLIGHTS, WEATHER], question="Q" * 10_000 + " Where to?",
                     vocabulary=["Denver"])
    assert len(ctx.terms) <= b.MAX_TERMS
    assert sum(len(t) for t in ctx.terms) <= b.MAX_TERMS_CHARS
    assert len(ctx.prompt()) <= b.MAX_PROMPT_CHARS
    assert len(ctx.question) <= b.MAX_QUESTION_CHARS and ctx.question.endswith("Where to?")
    assert ctx.terms[0] == "Denver"
    for other in ("Flights", "Weather", "book a flight", "forecast"):
        assert other in ctx.terms  # round-robin: the spammer gets no more slots than anyone else
    assert sum(t.startswith("buy cheap") for t in ctx.terms) <= b.MAX_KEYPHRASES_PER_AGENT


def test_vocabulary_has_priority_over_a_full_budget() -> None:
    vocab = [f"City{i}" for i in range(100)]
    ctx = build_bias([FLIGHTS], vocabulary=vocab)
    assert ctx.terms == tuple(vocab[: b.MAX_TERMS])
    assert "Flights" not in ctx.terms


def test_last_question_is_the_last_agent_utterance_if_it_asks() -> None:
    assert last_question([(True, "Hello."), (False, "A flight"), (True, "Sure. Where are you flying from?")]) \
        == "Where are you flying from?"
    assert last_question([(True, "Where from?"), (True, "Booked, thanks.")]) == ""  # stale question
    assert last_question([(True, "Where from?"), (False, "Boston")]) == "Where from?"
    assert last_question([]) == ""


def test_deepgram_forms() -> None:
    ctx = build_bias([AgentTerms("Car Rental", ["rent a car"])], vocabulary=["Denver", "Oak Street"])
    assert ctx.keyterms() == ["Denver", "Oak Street", "Car Rental", "rent a car"]
    assert ctx.keywords() == ["Denver:2", "Oak:2", "Street:2", "Car:1", "Rental:1", "rent:1", "a:1"]


def test_conversation_bias_from_manifests_and_history() -> None:
    ident = Identification("tag:flights", "http://x/flights", conversational_name="Flights")
    manifest = Manifest(ident, [Capability(keyphrases=["flight"], descriptions=["Books flights"])])
    history = [text_event("tag:caller", "A flight please"), text_event("tag:flights", "Where are you flying from?")]
    ctx = conversation_bias([manifest], history, {"tag:caller"}, ["Denver"])
    assert ctx.terms == ("Denver", "Flights", "flight")
    assert ctx.question == "Where are you flying from?"
    assert "Where are you flying from?" in ctx.prompt()


@dataclass
class _Said:
    speaker_uri: str
    text: str


def test_conversation_bias_caller_question_is_not_an_agent_question() -> None:
    ctx = conversation_bias([], [_Said("tag:caller", "Can you help me?")], {"tag:caller"})
    assert ctx.question == "" and not ctx
