"""Tolerant reading: official samples, repairs, 1.0.0 envelopes, and a fuzzed parser."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ofp_helpers import DIALOG_SAMPLES, envelope_samples, load_json

from convener.ofp.errors import ParseError
from convener.ofp.parse import parse_envelope
from convener.ofp.validate import validate_envelope

CONSISTENT_CONVERSATION = {"example-grantFloor.json", "example-requestFloor.json", "example-revokeFloor.json"}


@pytest.mark.parametrize("path", envelope_samples(), ids=lambda p: p.name)
def test_every_official_sample_parses_and_comes_out_strict(path: Any) -> None:
    notes: list[str] = []
    env = parse_envelope(path.read_bytes(), notes=notes)
    assert env.events or path.name == "example-envelope.json"
    problems = validate_envelope(env.to_dict())
    if path.name in CONSISTENT_CONVERSATION:
        # Their conversation section names a convener but no conversants; the floor rewrites it.
        assert all("conversants missing" in p for p in problems), problems
    else:
        assert problems == []


def test_repairs_are_noted() -> None:
    notes: list[str] = []
    env = parse_envelope(load_json(envelope_samples()[0].parent / "example-utterance.json"), notes=notes)
    de = env.events[0].dialog_event
    assert de is not None and de.span.start_time is not None
    assert de.span.start_time.tzinfo is not None
    assert any("no time zone" in n for n in notes)

    notes = []
    sample = envelope_samples()[0].parent / "example-invite-with-dialogHistory.json"
    env = parse_envelope(load_json(sample), notes=notes)
    history = env.events[1].dialog_history or []
    assert len(history) == 3 and all(h.id.startswith("de:") for h in history)
    assert sum("without id" in n for n in notes) == 4


def test_current_roles_sample_key_is_ignored_with_a_note() -> None:
    notes: list[str] = []
    env = parse_envelope(load_json(envelope_samples()[0].parent / "example-acceptInvite.json"), notes=notes)
    assert env.conversation.assigned_floor_roles == {}
    assert any("currentRoles" in n for n in notes)


def test_text_feature_under_another_name_is_used() -> None:
    de = load_json(DIALOG_SAMPLES / "utterance0.json")
    doc = {"openFloor": {"schema": {"version": "1.1.0"}, "conversation": {"id": "c"},
                         "sender": {"speakerUri": "tag:u,2026:1"},
                         "events": [{"eventType": "utterance", "parameters": {"dialogEvent": de}}]}}
    notes: list[str] = []
    env = parse_envelope(doc, notes=notes)
    assert env.events[0].dialog_event is not None
    assert env.events[0].dialog_event.text.startswith("what is the weather forecast for tomorrow?")
    assert any("user-request-text" in n for n in notes)


def v100(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"openFloor": {
        "schema": {"version": "1.0.0"},
        "conversation": {"id": "conv-100", "conversants": [
            {"identification": {"speakerUri": "tag:bot,2025:1", "serviceUrl": "https://bot",
                                "organization": "o", "conversationalName": "Bot", "synopsis": "s"},
             "persistentState": {"counter": 3}}]},
        "sender": {"speakerUri": "tag:bot,2025:1", "serviceUrl": "https://bot"},
        "events": events}}


HIST = [{"id": "e1", "speakerUri": "tag:u,2025:1", "span": {"startTime": "2025-05-09T16:38:30.576182"},
         "features": {"text": {"mimeType": "text/plain", "tokens": [{"value": "hello"}]}}}]


def test_100_context_event_history_moves_into_the_invite() -> None:
    notes: list[str] = []
    env = parse_envelope(v100([
        {"eventType": "invite", "to": {"serviceUrl": "https://other"}},
        {"eventType": "context", "parameters": {"dialogHistory": HIST, "other": {"x": 1}}},
    ]), notes=notes)
    assert env.schema_version == "1.0.0"
    assert [e.event_type for e in env.events] == ["invite"]
    assert [h.text for h in env.events[0].dialog_history or []] == ["hello"]
    assert any("persistentState ignored" in n for n in notes)
    assert env.conversation.conversants[0].conversational_name == "Bot"
    assert validate_envelope(_as_110(env)) == []


def _as_110(env: Any) -> dict[str, Any]:
    env.schema_version = "1.1.0"
    return env.to_dict()


def test_100_context_without_invite_is_kept_aside() -> None:
    env = parse_envelope(v100([{"eventType": "context", "parameters": {"dialogHistory": HIST}},
                               {"eventType": "utterance", "parameters": {"dialogEvent": HIST[0]}}]))
    assert [e.event_type for e in env.events] == ["utterance"]
    assert [h.text for h in env.context_history] == ["hello"]


def test_bad_events_are_dropped_not_fatal() -> None:
    notes: list[str] = []
    env = parse_envelope({"openFloor": {"conversation": {"id": "c"}, "sender": {"speakerUri": "s"}, "events": [
        {"eventType": "dance"}, 7, {"eventType": "utterance"}, {"eventType": "bye", "parameters": {"x": 1}},
        {"eventType": "yieldFloor", "to": {}, "reason": 5},
    ]}}, notes=notes)
    assert [e.event_type for e in env.events] == ["bye", "yieldFloor"]
    assert env.events[1].to is None and env.events[1].reason is None
    assert len(notes) >= 5


def test_defaults_for_conversation_and_sender() -> None:
    env = parse_envelope({"openFloor": {"events": []}}, default_conversation_id="c1", default_sender="tag:a,2026:b")
    assert (env.conversation.id, env.sender_uri) == ("c1", "tag:a,2026:b")


@pytest.mark.parametrize("data", [b"", b"nope", b"[]", b'{"x": 1}', b'{"openFloor": []}',
                                  b'{"openFloor": {"conversation": {"id": "c"}}}',
                                  b'{"openFloor": {"conversation": {"id": "c"}, "sender": {"speakerUri": "s"},'
                                  b' "events": {}}}',
                                  b"\xff\xfe", b"[" * 100000])
def test_what_is_not_an_envelope_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_envelope(data)


# --- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = ["openFloor", "schema", "version", "conversation", "id", "conversants", "identification", "speakerUri",
        "serviceUrl", "sender", "events", "eventType", "to", "private", "reason", "parameters", "dialogEvent",
        "dialogHistory", "features", "text", "mimeType", "tokens", "value", "span", "startTime",
        "servicingManifests", "capabilities", "keyphrases", "assignedFloorRoles", "floorGranted", "utterance",
        "invite", "publishManifests", "context", "recommendScope", "supportedLayers", "score"]
SAMPLES = [load_json(p) for p in envelope_samples()]


def _mutate(doc: Any, path_choices: list[int], replacement: Any, key: str) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for choice in path_choices:
        if isinstance(node, dict) and node:
            k = list(node)[choice % len(node)]
            if not isinstance(node[k], dict | list) or not node[k]:
                node[k] = replacement
                return doc
            node = node[k]
        elif isinstance(node, list) and node:
            i = choice % len(node)
            if not isinstance(node[i], dict | list) or not node[i]:
                node[i] = replacement
                return doc
            node = node[i]
    if isinstance(node, dict):
        node[key] = replacement
    elif isinstance(node, list):
        node.append(replacement)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sample=st.sampled_from(SAMPLES),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=8),
    replacement=json_values,
    key=st.sampled_from(KEYS),
)
def test_fuzz_mutated_samples_only_parse_error_escapes(
    sample: Any, path: list[int], replacement: Any, key: str
) -> None:
    doc = _mutate(sample, path, replacement, key)
    for data in (doc, json.dumps(doc)):
        try:
            env = parse_envelope(data, notes=[])
        except ParseError:
            continue
        # Whatever was accepted can be written back out (strictly) or is refused with ValueError.
        try:
            env.schema_version = "1.1.0"
            env.to_dict()
        except ValueError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, st.binary(max_size=64), st.text(max_size=64)))
def test_fuzz_arbitrary_input_only_parse_error_escapes(data: Any) -> None:
    try:
        parse_envelope(data, notes=[]) if isinstance(data, bytes | str | dict) else parse_envelope(json.dumps(data))
    except ParseError:
        pass


def test_unwrapped_envelope_is_accepted_with_a_note() -> None:
    doc = load_json(envelope_samples()[0].parent / "example-bye.json")["openFloor"]
    notes: list[str] = []
    env = parse_envelope(doc, notes=notes)
    assert [e.event_type for e in env.events] == ["bye"] and "not wrapped" in notes[0]
