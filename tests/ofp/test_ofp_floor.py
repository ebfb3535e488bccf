"""Floor manager conformance (1.1.0 sections 1.6, 1.8, 2.2): the delegation table row by row,
ordering, private utterances and the bookkeeping of conversants and floorGranted."""

from __future__ import annotations

import pytest

from convener.ofp import envelope as E
from convener.ofp.dialog import text_event
from convener.ofp.envelope import Conversation, Envelope, Event, To
from convener.ofp.floor import Delegation, Delivery, FloorManager
from convener.ofp.manifest import Identification
from convener.ofp.validate import validate_envelope


def ident(name: str, role: str | None = None) -> Identification:
    return Identification(f"tag:t,2026:{name}", f"https://{name}.example/ofp", "org", name.title(), "s", role=role)


F, H, A, B, C, N = (ident("floor"), ident("human", "User"), ident("a"), ident("b"), ident("convener"), ident("new"))
DIRECTORY = {x.speaker_uri: x for x in (A, B, C, N)}


def resolve(to: To) -> Identification | None:
    return DIRECTORY.get(to.speaker_uri or "") or next(
        (x for x in DIRECTORY.values() if x.service_url == to.service_url), None
    )


def make_floor(with_convener: bool) -> FloorManager:
    floor = FloorManager("conv:t", F, resolve=resolve)
    for x in (H, A, B, C):
        floor.join(x)
    if with_convener:
        floor.assign_convener(C.speaker_uri)
    return floor


def env(sender: Identification, *events: Event) -> Envelope:
    # What the sender writes in its conversation section is ignored by the floor.
    return Envelope(Conversation("conv:t", floor_granted=["tag:bogus,2026:x"]), sender.speaker_uri, list(events))


def say(who: Identification, text: str = "hi") -> Event:
    return E.utterance(text_event(who.speaker_uri, text))


def recipients(deliveries: list[Delivery]) -> list[str]:
    return sorted({d.recipient for d in deliveries})


def uris(*xs: Identification) -> list[str]:
    return sorted(x.speaker_uri for x in xs)


class Recorder:
    """A convener that records delegations and answers with prepared events."""

    def __init__(self, answer: list[Event] | None = None) -> None:
        self.seen: list[Delegation] = []
        self.answer = answer or []

    def __call__(self, d: Delegation) -> list[Event]:
        self.seen.append(d)
        return list(self.answer)


# --- the table, with a convener ----------------------------------------------------------------

PASS_THROUGH_WITH_CONVENER = [
    ("acceptInvite", lambda: E.accept_invite(To(C.speaker_uri))),
    ("getManifests", lambda: E.get_manifests()),
    ("publishManifests", lambda: E.publish_manifests()),
]


@pytest.mark.parametrize("name, make", PASS_THROUGH_WITH_CONVENER, ids=[r[0] for r in PASS_THROUGH_WITH_CONVENER])
def test_with_convener_pass_through(name: str, make) -> None:  # type: ignore[no-untyped-def]
    floor, conv = make_floor(True), Recorder()
    out = floor.process(env(A, make()), conv)
    assert conv.seen == []
    assert recipients(out) == uris(H, B, C)
    assert all(d.envelope.events[0].event_type == name for d in out)


def test_with_convener_utterance_with_floor_passes_through() -> None:
    floor, conv = make_floor(True), Recorder()
    out = floor.process(env(A, say(A)), conv)
    assert conv.seen == [] and recipients(out) == uris(H, B, C)


def test_with_convener_utterance_without_floor_is_delegated() -> None:
    floor, conv = make_floor(True), Recorder()
    floor.process(env(A, E.yield_floor("@complete")), conv)
    out = floor.process(env(A, say(A, "me again")), conv)
    assert [d.event.event_type for d in conv.seen] == ["utterance"]
    assert conv.seen[0].envelope.sender_uri == A.speaker_uri and conv.seen[0].convener == C.speaker_uri
    assert out == []  # the convener returned nothing: dropped


@pytest.mark.parametrize(
    "make",
    [
        lambda: E.invite(To.of(N)),
        lambda: E.uninvite(To.of(B)),
        lambda: E.request_floor(To(C.speaker_uri)),
        lambda: E.grant_floor(To.of(B)),
        lambda: E.revoke_floor(To.of(B)),
    ],
    ids=["invite", "uninvite", "requestFloor", "grantFloor", "revokeFloor"],
)
def test_with_convener_delegated(make) -> None:  # type: ignore[no-untyped-def]
    floor, conv = make_floor(True), Recorder()
    before = (floor.conversants, floor.floor_granted)
    out = floor.process(env(A, make()), conv)
    assert len(conv.seen) == 1 and out == []
    assert (floor.conversants, floor.floor_granted) == before  # nothing happens unless the convener says so
    assert validate_envelope(conv.seen[0].envelope.to_dict()) == []


def test_with_convener_returned_events_pass_through_without_redelegation() -> None:
    floor = make_floor(True)
    conv = Recorder([E.invite(To.of(N))])
    out = floor.process(env(A, E.invite(To.of(N))), conv)
    assert len(conv.seen) == 1
    assert floor.is_conversant(N.speaker_uri) and floor.has_floor(N.speaker_uri)
    assert recipients(out) == uris(H, A, B, N)  # everyone but the convener who sent it
    assert all(d.envelope.sender_uri == C.speaker_uri for d in out)


@pytest.mark.parametrize("name, make", [("declineInvite", E.decline_invite), ("bye", E.bye)])
def test_decline_and_bye_pass_through_and_remove_the_sender(name: str, make) -> None:  # type: ignore[no-untyped-def]
    for with_convener in (True, False):
        floor, conv = make_floor(with_convener), Recorder()
        out = floor.process(env(A, make()), conv)
        assert conv.seen == [] and recipients(out) == uris(H, B, C)
        assert not floor.is_conversant(A.speaker_uri) and not floor.has_floor(A.speaker_uri)


def test_yield_floor_passes_through_and_clears_the_floor() -> None:
    for with_convener in (True, False):
        floor = make_floor(with_convener)
        out = floor.process(env(A, E.yield_floor("@complete")), Recorder())
        assert recipients(out) == uris(H, B, C)
        assert floor.is_conversant(A.speaker_uri) and not floor.has_floor(A.speaker_uri)


# --- the table, without a convener --------------------------------------------------------------


def test_without_convener_utterance_without_floor_is_ignored() -> None:
    floor = make_floor(False)
    floor.process(env(A, E.yield_floor()))
    run = floor.receive(env(A, say(A)))
    assert run.done and run.deliveries == [] and "does not have the floor" in run.notes[0]


def test_without_convener_request_floor_is_answered_with_grant_floor() -> None:
    floor = make_floor(False)
    floor.process(env(A, E.yield_floor()))
    out = floor.process(env(A, E.request_floor()))
    assert floor.has_floor(A.speaker_uri)
    events = {d.recipient: d.envelope.events for d in out}
    assert set(events) == {H.speaker_uri, A.speaker_uri, B.speaker_uri, C.speaker_uri}
    ev = events[A.speaker_uri][0]
    assert ev.event_type == "grantFloor" and ev.to is not None and ev.to.speaker_uri == A.speaker_uri
    assert all(d.envelope.sender_uri == F.speaker_uri for d in out)


def test_without_convener_invite_uninvite_grant_revoke_pass_through() -> None:
    floor = make_floor(False)
    out = floor.process(env(A, E.invite(To(speaker_uri=N.speaker_uri, service_url=N.service_url))))
    assert recipients(out) == uris(H, B, C, N) and floor.has_floor(N.speaker_uri)
    out = floor.process(env(A, E.revoke_floor(To(N.speaker_uri))))
    assert not floor.has_floor(N.speaker_uri) and recipients(out) == uris(H, B, C, N)
    out = floor.process(env(A, E.grant_floor(To(N.speaker_uri))))
    assert floor.has_floor(N.speaker_uri)
    out = floor.process(env(A, E.uninvite(To(N.speaker_uri), "@error")))
    assert recipients(out) == uris(H, B, C, N)  # the uninvited agent is told
    assert not floor.is_conversant(N.speaker_uri) and not floor.has_floor(N.speaker_uri)


# --- ordering, privacy, bookkeeping -------------------------------------------------------------


def test_convener_events_go_to_the_head_of_the_queue() -> None:
    floor = make_floor(True)
    conv = Recorder([say(C, "first"), say(C, "second")])
    out = floor.process(env(A, E.request_floor(), say(A, "third")), conv)
    to_h = [d.envelope for d in out if d.recipient == H.speaker_uri]
    assert [(e.sender_uri, [ev.dialog_event.text for ev in e.events if ev.dialog_event]) for e in to_h] == [
        (C.speaker_uri, ["first", "second"]),
        (A.speaker_uri, ["third"]),
    ]


def test_envelopes_are_processed_in_order_and_events_in_listed_order() -> None:
    floor = make_floor(False)
    out1 = floor.process(env(A, say(A, "1"), E.yield_floor(), say(A, "2")))
    assert [ev.event_type for d in out1 if d.recipient == H.speaker_uri for ev in d.envelope.events] == [
        "utterance", "yieldFloor"]  # "2" came after the floor was yielded: ignored


def test_private_is_honoured_only_for_utterances() -> None:
    floor = make_floor(False)
    out = floor.process(env(A, E.utterance(text_event(A.speaker_uri, "psst"), to=To(B.speaker_uri, private=True))))
    assert recipients(out) == [B.speaker_uri]
    out = floor.process(env(A, E.utterance(text_event(A.speaker_uri, "hey B"), to=To(B.speaker_uri))))
    assert recipients(out) == uris(H, B, C)  # addressed but public: everyone hears it
    out = floor.process(env(A, Event("getManifests", to=To(B.speaker_uri, private=True))))
    assert recipients(out) == uris(H, B, C)
    out = floor.process(env(A, E.utterance(text_event(A.speaker_uri, "x"), to=To("tag:nobody,2026:x", private=True))))
    assert out == []


def test_private_utterance_by_service_url() -> None:
    floor = make_floor(False)
    whisper = E.utterance(text_event(H.speaker_uri, "x"), to=To(service_url=B.service_url, private=True))
    out = floor.process(env(H, whisper))
    assert recipients(out) == [B.speaker_uri]


def test_conversation_section_is_ours() -> None:
    floor = make_floor(True)
    out = floor.process(env(A, say(A)))
    for d in out:
        conv = d.envelope.conversation
        assert conv.floor_granted == floor.floor_granted
        assert conv.assigned_floor_roles == {"convener": [C.speaker_uri]}
        assert [c.speaker_uri for c in conv.conversants] == [x.speaker_uri for x in (H, A, B, C)]
        assert validate_envelope(d.envelope.to_dict()) == []


def test_request_floor_alone_changes_nothing() -> None:
    floor = make_floor(True)
    floor.process(env(A, E.yield_floor()))
    floor.process(env(A, E.request_floor()), Recorder([]))
    assert not floor.has_floor(A.speaker_uri)


def test_convener_must_be_a_conversant_and_loses_the_role_when_it_leaves() -> None:
    floor = make_floor(False)
    with pytest.raises(ValueError):
        floor.assign_convener(N.speaker_uri)
    floor.assign_convener(C.speaker_uri)
    floor.process(env(C, E.bye()))
    assert floor.convener is None and floor.conversation().assigned_floor_roles == {}


def test_strangers_and_unknown_agents_are_ignored() -> None:
    floor = make_floor(False)
    run = floor.receive(env(N, say(N)))
    assert run.deliveries == [] and "not a conversant" in run.notes[0]
    stranger = To("tag:evil,2026:x", "https://evil.example/ofp")
    run = floor.receive(env(A, E.invite(stranger)))
    assert run.deliveries == [] and not floor.is_conversant("tag:evil,2026:x")
    assert "unknown agent" in run.notes[0]


def test_run_api_pauses_at_each_delegation() -> None:
    floor = make_floor(True)
    run = floor.receive(env(A, E.request_floor(), E.grant_floor(To.of(B))))
    assert run.pending is not None and run.pending.event.event_type == "requestFloor" and not run.done
    with pytest.raises(RuntimeError):
        _ = run.deliveries
    run.resume([])
    assert run.pending is not None and run.pending.event.event_type == "grantFloor"
    run.resume([E.grant_floor(To.of(B))])
    assert run.done and recipients(run.deliveries) == uris(H, A, B)
    with pytest.raises(RuntimeError):
        run.resume([])


def test_the_floor_managers_own_events_are_never_delegated() -> None:
    floor = make_floor(True)
    out = floor.emit([E.uninvite(To.of(A), "@timedOut"), E.bye()])
    assert not floor.is_conversant(A.speaker_uri)
    assert {d.recipient for d in out} == {H.speaker_uri, A.speaker_uri, B.speaker_uri, C.speaker_uri}
