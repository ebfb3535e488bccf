"""Our envelopes as written: every event type, times, wrapper, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from convener.ofp import envelope as E
from convener.ofp.dialog import Span, text_event
from convener.ofp.envelope import Conversation, Envelope, Event, To
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.timefmt import format_time, is_rfc3339
from convener.ofp.validate import validate_envelope

AGENT = Identification("tag:a.example,2026:agent", "https://a.example/ofp", "A Inc", "Agent", "Does things.")
ME = "tag:convener.invalid,2026:convener"


def every_event() -> list[Event]:
    de = text_event(ME, "Hello there", ssml="<speak>Hello there</speak>", audio_urls=["https://x/a.wav"])
    to = To.of(AGENT)
    manifest = Manifest(AGENT, [Capability(["thing"], ["does things"])], score=0.5)
    return [
        E.utterance(de),
        E.utterance(de, to=To.of(AGENT, private=True)),
        E.invite(to, dialog_history=[text_event("tag:x,2026:caller", "hi"), de]),
        E.invite(to),
        E.uninvite(to, "@timedOut"),
        E.accept_invite(To(ME)),
        E.decline_invite(To(ME), "@outOfDomain"),
        E.bye(),
        E.get_manifests(to, "internal"),
        E.get_manifests(),
        E.publish_manifests([manifest], [manifest]),
        E.publish_manifests(),
        E.request_floor(To(ME), "more to say"),
        E.grant_floor(to),
        E.revoke_floor(to, "@override"),
        E.yield_floor("@complete"),
    ]


def test_every_event_type_we_emit_passes_the_validator() -> None:
    events = every_event()
    assert {e.event_type for e in events} == set(E.EVENT_TYPES)
    conv = Conversation("conv:1", [AGENT], {"convener": [AGENT.speaker_uri]}, [AGENT.speaker_uri])
    for ev in events:
        doc = Envelope(conv, ME, [ev], "https://me.example/ofp").to_dict()
        assert validate_envelope(doc) == [], ev.event_type
    doc = Envelope(conv, ME, events).to_dict()
    assert validate_envelope(doc) == []


def test_wrapper_version_and_bare_events() -> None:
    doc = Envelope(Conversation("c"), ME, [E.yield_floor("@complete"), E.bye()]).to_dict()
    of = doc["openFloor"]
    assert of["schema"]["version"] == "1.1.0"
    assert set(of) == {"schema", "conversation", "sender", "events"}
    assert all("parameters" not in e for e in of["events"])
    assert of["events"][0]["reason"] == "@complete"


def test_times_are_rfc3339_with_zone() -> None:
    de = text_event(ME, "x", at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    assert de.to_dict()["span"]["startTime"] == "2026-01-02T03:04:05.678Z"
    plus2 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus2) == "2026-01-02T03:04:05.000+02:00"
    assert is_rfc3339(format_time(plus2))
    with pytest.raises(ValueError, match="time zone"):
        format_time(datetime(2026, 1, 2))
    naive = text_event(ME, "x")
    naive.span = Span(start_time=datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        naive.to_dict()


@pytest.mark.parametrize(
    "event, message",
    [
        (Event("invite", to=To(speaker_uri="tag:x,2026:y")), "serviceUrl"),
        (Event("utterance"), "dialogEvent"),
        (Event("grantFloor", to=To()), "speakerUri or a serviceUrl"),
        (Event("context"), "unknown event type"),  # type: ignore[arg-type]
    ],
)
def test_strict_out_refuses_what_the_spec_forbids(event: Event, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event.to_dict()


def test_dialog_event_without_text_is_refused() -> None:
    de = text_event(ME, "x")
    de.features.pop("text")
    with pytest.raises(ValueError, match="text"):
        de.to_dict()


def test_reason_tokens() -> None:
    assert E.reason_tokens("@brokenPolicy: no @timedOut, e-mail a@b") == ["@brokenPolicy", "@timedOut", "@b"]
    assert E.reason_tokens(None) == []


def test_features_text_ssml_audio_read_back() -> None:
    de = text_event(ME, "Hi", ssml="<speak>Hi</speak>", audio_urls=["https://x/1.wav", "https://x/2.wav"])
    assert (de.text, de.ssml, de.audio_urls) == ("Hi", "<speak>Hi</speak>", ("https://x/1.wav", "https://x/2.wav"))
