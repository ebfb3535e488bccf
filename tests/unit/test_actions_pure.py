"""Telephony actions, pure parts: the person detector, the transfer machine, the summary, the
OFP action extension and the ``[transfer]`` settings."""

from __future__ import annotations

import pytest

from convener.app.actions.agent_actions import (
    ACTION_FEATURE,
    ACTION_MIME,
    Action,
    DigitCollector,
    Refusal,
    parse_action,
    result_feature,
)
from convener.app.actions.person import wants_person
from convener.app.actions.settings import TransferSettings
from convener.app.actions.transfer import TransferError, TransferMachine, summary_sentence
from convener.config import ConfigError, load_config
from convener.ofp.dialog import Feature, Token
from convener.settings import load_section

PERSON = [
    "I'd like to speak to a real person",
    "I would like to talk to a human",
    "Can I speak to someone?",
    "can i talk to somebody please",
    "Operator",
    "operator please",
    "A human, please.",
    "real person",
    "Get me a human",
    "I want a real person",
    "I need to speak with a representative",
    "Transfer me to an operator",
    "put me through to a person please",
    "Connect me with a live agent",
    "live agent please",
    "Let me talk to a real human being",
    "Is there a person I can talk to?",
    "can I have a human",
    "Put me through to customer service",
    "I want to talk to someone, not a robot",
    "Could you transfer me to a human please",
    "I'd rather speak with the receptionist",
    "pass me to a real person who can help",
    "Hello, can I speak to an actual person",
    "Talk to someone",
    "I need a human",
    "Can you connect me to a representative?",
    "Operator please. Operator please.",
    "Hmm. A real person!",
]

NOT_PERSON = [
    "Book a flight to Denver",
    "a person who can book flights",
    "Is there a person who can book flights?",
    "I need someone to book a hotel for me",
    "Let me talk to the weather agent",
    "Talk to the hotels agent please",
    "A table for two people",
    "One person, economy class",
    "I don't want to talk to a person",
    "No need to talk to anyone",
    "I'm a real person",
    "What is the weather in Seattle",
    "The personal trainer at the hotel",
    "Human resources building address",
    "",
    "yes",
    "Who is the operator of this flight",
    "a room for four persons",
    "Book a hotel. In Chicago.",
]


@pytest.mark.parametrize("text", PERSON)
def test_requests_for_a_person(text):
    assert wants_person(text), text


@pytest.mark.parametrize("text", NOT_PERSON)
def test_not_requests_for_a_person(text):
    assert not wants_person(text), text


def test_detector_is_fast():
    import time

    t0 = time.perf_counter()
    for _ in range(200):
        for t in PERSON + NOT_PERSON:
            wants_person(t)
    per_call_us = (time.perf_counter() - t0) / (200 * len(PERSON + NOT_PERSON)) * 1e6
    assert per_call_us < 500, per_call_us


def test_warm_transfer_answered():
    m = TransferMachine("operator")
    assert m.start().action == "dial"
    assert m.dial_status("RINGING").action == "none"
    assert m.dial_status("ANSWER").action == "play_summary"
    assert m.state == "answered"
    assert m.summary_played().action == "connect"
    assert m.state == "connected" and m.done
    assert m.peer_gone(16).action == "clean_up"
    assert m.history == ["idle", "dialling", "answered", "connected"]


def test_transfer_without_summary_connects_at_answer():
    m = TransferMachine("operator", summary=False)
    m.start()
    assert m.dial_status("ANSWER").action == "connect"


@pytest.mark.parametrize("status,why", [("BUSY", "busy"), ("NOANSWER", "no_answer"),
                                        ("CONGESTION", "failed"), ("CHANUNAVAIL", "failed"),
                                        ("SOMETHINGNEW", "failed")])
def test_dial_failures_return_the_caller(status, why):
    m = TransferMachine("operator")
    m.start()
    step = m.dial_status(status)
    assert step.action == "tell_caller" and step.failure == why
    assert m.state == "returned"
    assert m.dial_status("ANSWER").action == "none"  # late events change nothing


@pytest.mark.parametrize("cause,why", [(17, "busy"), (19, "no_answer"), (34, "failed")])
def test_peer_gone_before_answer(cause, why):
    m = TransferMachine("operator")
    m.start()
    assert m.peer_gone(cause).failure == why


def test_unanswered_ring_ends_with_a_bare_hangup():
    m = TransferMachine("operator")
    m.start()
    assert m.peer_gone(16, rang_out=True).failure == "no_answer"


def test_timeout_and_hangup_during_summary():
    m = TransferMachine("operator")
    m.start()
    assert m.timed_out().failure == "no_answer"
    m = TransferMachine("operator")
    m.start()
    m.dial_status("ANSWER")
    assert m.peer_gone().failure == "failed"


def test_dialplan_target_is_blind():
    m = TransferMachine("desk", kind="dialplan")
    assert m.start().action == "continue"
    assert m.state == "continued"
    with pytest.raises(TransferError):
        m.start()


def test_summary_sentence():
    tr = [(1.0, "convener", "Hello, how can I help?"), (2.0, "caller", "Book a flight to Denver"),
          (3.0, "Flights", "From where?"), (4.0, "caller", "From Boston"),
          (5.0, "caller", "I'd like to speak to a real person")]
    s = summary_sentence(tr)
    assert s.count(".") == 1 and s.endswith(".")
    assert '"Book a flight to Denver"' in s and '"From Boston"' in s and "Flights" in s
    assert "real person" not in s
    assert "not said anything" in summary_sentence([(1.0, "caller", "operator please")])
    long = summary_sentence([(1.0, "caller", " ".join(["word"] * 50))], max_words=5)
    assert long.count("word") == 5


def _feature(value):
    return {ACTION_FEATURE: Feature(ACTION_MIME, [Token(value=value)])}


def test_parse_actions():
    targets = {"operator", "sales"}
    assert parse_action({}, targets) is None
    assert parse_action(_feature({"action": "transfer", "target": "sales"}), targets) == \
        Action("transfer", target="sales")
    r = parse_action(_feature({"action": "transfer", "target": "PJSIP/999"}), targets)
    assert isinstance(r, Refusal) and r.reason == "@unknownTarget"
    assert parse_action(_feature({"action": "hangup"}), targets) == Action("hangup")
    assert parse_action(_feature({"action": "dtmf", "digits": "12#"}), targets) == Action("dtmf", digits="12#")
    assert isinstance(parse_action(_feature({"action": "dtmf", "digits": "12;x"}), targets), Refusal)
    c = parse_action(_feature({"action": "collect", "max_digits": 6, "timeout": 5}), targets)
    assert c == Action("collect", max_digits=6, terminator="#", timeout=5.0)
    for bad in ({"action": "collect", "max_digits": 0}, {"action": "collect", "terminator": "x"},
                {"action": "collect", "timeout": 600}, "hangup", {"action": "fly"}, {}):
        assert isinstance(parse_action(_feature(bad), targets), Refusal), bad
    assert parse_action(_feature({"action": "fly"}), targets).reason == "@unknownAction"
    assert result_feature("transfer", "refused", "@unknownTarget").to_dict()["tokens"][0]["value"] == \
        {"action": "transfer", "status": "refused", "reason": "@unknownTarget"}


def test_digit_collector():
    c = DigitCollector(max_digits=4, terminator="#")
    assert [c.press(k) for k in "12#"] == [None, None, "12"]
    assert c.ended_by == "terminator" and c.press("3") is None
    c = DigitCollector(max_digits=3, terminator="")
    assert [c.press(k) for k in "123"] == [None, None, "123"] and c.ended_by == "max_digits"
    c = DigitCollector()
    c.press("9")
    assert c.time_out() == "9" and c.ended_by == "timeout"


def test_transfer_settings():
    cfg = load_config(None, env={})
    assert cfg.transfer.targets == {} and cfg.transfer.person_target == ""
    s = load_section(TransferSettings, {
        "person_target": "operator", "ring_timeout": 15,
        "targets": {"operator": {"kind": "dial", "endpoint": "Local/600@from-internal", "label": "an operator"},
                    "sales": {"kind": "dialplan", "context": "from-internal", "extension": "7000"}}})
    assert s.ring_seconds("operator") == 15 and s.label("operator") == "an operator" and s.label("sales") == "sales"
    with pytest.raises(ConfigError, match="person_target"):
        load_section(TransferSettings, {"person_target": "nobody"})
    with pytest.raises(ConfigError, match="endpoint"):
        load_section(TransferSettings, {"targets": {"x": {"kind": "dial", "endpoint": "SIP/1;rm -rf"}}})
    with pytest.raises(ConfigError, match="context"):
        load_section(TransferSettings, {"targets": {"x": {"kind": "dialplan"}}})
    with pytest.raises(ConfigError, match=r"targets\.x y"):
        load_section(TransferSettings, {"targets": {"x y": {"endpoint": "PJSIP/op"}}})
