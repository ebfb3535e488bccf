"""The validator: official schemas applied everywhere they belong, plus the hand checks."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from typing import Any

import pytest
from ofp_helpers import ENVELOPE_SAMPLES, MANIFEST_SAMPLES, SHARED, envelope_samples, load_json

from convener.ofp.errors import InvalidEnvelope
from convener.ofp.validate import check_envelope, validate_envelope

# What the README of the reference data says fails in the samples (and what else we find).
EXPECTED_FAILURES = {
    "example-utterance.json": ["not RFC 3339"],
    "example-grantFloor.json": ["'id' is a required property", "conversants missing"],
    "example-getManifests2.json": ["'id' is a required property"],
    "example-getManifests3.json": ["'id' is a required property"],
    "example-invite-with-dialogHistory.json": ["dialogHistory[0]: 'id' is a required property"],
    "example-publishManifests.json": ["'organization' is a required property"],
    "example-requestFloor.json": ["conversants missing"],
    "example-revokeFloor.json": ["conversants missing"],
}


@pytest.mark.parametrize("name", ["conversation-envelope-schema.json", "dialog-event-schema.json",
                                  "assistant-manifest-schema.json"])
def test_packaged_schemas_are_the_reference_copies(name: str) -> None:
    packaged = json.loads(files("convener.ofp").joinpath("schemas", name).read_text())
    reference = next(SHARED.rglob(name))
    assert packaged == load_json(reference)


@pytest.mark.parametrize("path", envelope_samples(), ids=lambda p: p.name)
def test_official_samples(path: Any) -> None:
    problems = validate_envelope(load_json(path))
    expected = EXPECTED_FAILURES.get(path.name, [])
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    if not expected:
        assert problems == []


def test_manifest_samples_pass_the_manifest_check_inside_publish() -> None:
    manifests = [load_json(p) for p in sorted(MANIFEST_SAMPLES.glob("*.json"))]
    doc = {"openFloor": {"schema": {"version": "1.1.0"}, "conversation": {"id": "c"},
                         "sender": {"speakerUri": "tag:x,2026:y"},
                         "events": [{"eventType": "publishManifests",
                                     "parameters": {"servicingManifests": manifests}}]}}
    assert validate_envelope(doc) == []


def base() -> dict[str, Any]:
    return copy.deepcopy(load_json(ENVELOPE_SAMPLES / "example-multiparty-conversation.json"))


def first_event(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["openFloor"]["events"][0]


def test_base_is_valid() -> None:
    assert validate_envelope(base()) == []


def mutate_no_event_type(d: dict[str, Any]) -> None:
    first_event(d).pop("eventType")


def mutate_empty_to(d: dict[str, Any]) -> None:
    first_event(d)["to"] = {"private": True}


def mutate_no_text(d: dict[str, Any]) -> None:
    feats = first_event(d)["parameters"]["dialogEvent"]["features"]
    feats["speech"] = feats.pop("text")


def mutate_naive_time(d: dict[str, Any]) -> None:
    first_event(d)["parameters"]["dialogEvent"]["span"]["startTime"] = "2025-06-14T10:30:00"


def mutate_bad_token(d: dict[str, Any]) -> None:
    first_event(d)["parameters"]["dialogEvent"]["features"]["text"]["tokens"] = [{"confidence": 1}]


def mutate_invite_without_url(d: dict[str, Any]) -> None:
    d["openFloor"]["events"] = [{"eventType": "invite", "to": {"speakerUri": "tag:x,2026:y"}}]


def mutate_bad_history_item(d: dict[str, Any]) -> None:
    de = copy.deepcopy(first_event(d)["parameters"]["dialogEvent"])
    de.pop("speakerUri")
    d["openFloor"]["events"] = [{"eventType": "invite", "to": {"serviceUrl": "https://x"},
                                 "parameters": {"dialogHistory": [de]}}]


def mutate_manifest_without_identification(d: dict[str, Any]) -> None:
    d["openFloor"]["events"] = [{"eventType": "publishManifests",
                                 "parameters": {"servicingManifests": [{"capabilities": []}]}}]


def mutate_two_conveners(d: dict[str, Any]) -> None:
    d["openFloor"]["conversation"]["assignedFloorRoles"]["convener"].append("tag:user1.example.com,2025:1234")


def mutate_granted_stranger(d: dict[str, Any]) -> None:
    d["openFloor"]["conversation"]["floorGranted"].append("tag:stranger,2026:1")


def mutate_version(d: dict[str, Any]) -> None:
    d["openFloor"]["schema"]["version"] = "1.0.0"


def mutate_params_on_bare(d: dict[str, Any]) -> None:
    d["openFloor"]["events"] = [{"eventType": "bye", "parameters": {"why": "x"}}]


def mutate_unknown_event(d: dict[str, Any]) -> None:
    first_event(d)["eventType"] = "context"


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (mutate_no_event_type, "no eventType"),
        (mutate_empty_to, "names neither"),
        (mutate_no_text, "no 'text' feature"),
        (mutate_naive_time, "not RFC 3339"),
        (mutate_bad_token, "is not valid under any of the given schemas"),
        (mutate_invite_without_url, "invite without to.serviceUrl"),
        (mutate_bad_history_item, "dialogHistory[0]: 'speakerUri' is a required property"),
        (mutate_manifest_without_identification, "'identification' is a required property"),
        (mutate_two_conveners, "more than one convener"),
        (mutate_granted_stranger, "is not a conversant"),
        (mutate_version, "is not 1.1.0"),
        (mutate_params_on_bare, "parameters"),
        (mutate_unknown_event, "is not one of"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[7:] if callable(v) else "",
)
def test_each_check_catches_its_problem(mutate: Any, fragment: str) -> None:
    doc = base()
    mutate(doc)
    problems = validate_envelope(doc)
    assert any(fragment in p for p in problems), problems
    with pytest.raises(InvalidEnvelope):
        check_envelope(doc)


def test_not_an_envelope() -> None:
    assert validate_envelope([]) != []
    assert validate_envelope({"openFloor": 3}) != []
