"""The built-in convener: whom to invite, hand-overs, delegations and faults (pure logic)."""

from __future__ import annotations

from convener.ofp import envelope as E
from convener.ofp.dialog import text_event
from convener.ofp.envelope import Envelope, Event, To
from convener.ofp.floor import FloorManager
from convener.ofp.identity import convener_identification, human_identification
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.policy import ConvenerPolicy
from convener.ofp.routing import explicit_request, rank
from convener.ofp.settings import OfpSettings
from convener_agents.flights import FlightsAgent
from convener_agents.hotels import HotelsAgent
from convener_agents.weather import WeatherAgent

MANIFESTS: list[Manifest] = [
    cls(f"http://127.0.0.1:{9000 + i}/ofp").manifest for i, cls in enumerate((FlightsAgent, HotelsAgent, WeatherAgent))
]
FLIGHTS, HOTELS, WEATHER = MANIFESTS


def name_of(m: Manifest | None) -> str | None:
    return m.identification.conversational_name if m else None


def test_keyphrases_pick_the_agent() -> None:
    assert name_of(rank("Book a flight to Denver", MANIFESTS)[0].manifest) == "Flights"
    assert name_of(rank("I need a hotel room in Boston", MANIFESTS)[0].manifest) == "Hotels"
    assert name_of(rank("Will it rain in Seattle?", MANIFESTS)[0].manifest) == "Weather"
    assert rank("What is the meaning of life", MANIFESTS)[0].score < 1.0


def test_explicit_requests_by_conversational_name() -> None:
    assert name_of(explicit_request("let me talk to the weather agent", MANIFESTS)) == "Weather"
    assert name_of(explicit_request("Can I speak to Hotels please", MANIFESTS)) == "Hotels"
    assert name_of(explicit_request("back to the flights agent", MANIFESTS)) == "Flights"
    assert explicit_request("what's the weather like", MANIFESTS) is None


class World:
    def __init__(self, **kw: object) -> None:
        self.settings = OfpSettings(**kw)  # type: ignore[arg-type]
        self.me = convener_identification(self.settings)
        self.floor = FloorManager("conv:p", self.me, resolve=self.resolve)
        self.policy = ConvenerPolicy(self.settings, self.me, lambda: MANIFESTS)
        self.human = human_identification(self.settings, name="Ann")
        self.floor.join(self.human)
        self.floor.join(self.me)
        self.floor.assign_convener(self.me.speaker_uri)
        self.policy.humans.add(self.human.speaker_uri)

    @staticmethod
    def resolve(to: To) -> object:
        return next((m.identification for m in MANIFESTS if m.identification.speaker_uri == to.speaker_uri), None)

    def hear(self, text: str) -> list[Event]:
        said = E.utterance(text_event(self.human.speaker_uri, text))
        env = Envelope(self.floor.conversation(), self.human.speaker_uri, [said])
        self.floor.process(env, lambda d: self.policy.on_delegation(d, self.floor))
        events = self.policy.on_envelope(env, self.floor)
        self.apply(events)
        return events

    def apply(self, events: list[Event]) -> None:
        self.floor.process(Envelope(self.floor.conversation(), self.me.speaker_uri, events))


def kinds(events: list[Event]) -> list[str]:
    return [e.event_type for e in events]


def test_first_request_invites_with_dialog_history() -> None:
    w = World()
    events = w.hear("Book a flight to Denver")
    assert kinds(events) == ["utterance", "invite"]
    assert events[0].dialog_event is not None and events[0].dialog_event.text == "Connecting you to Flights."
    inv = events[1]
    assert inv.to is not None and inv.to.speaker_uri == FLIGHTS.identification.speaker_uri
    assert [h.text for h in inv.dialog_history or []] == ["Book a flight to Denver"]
    assert w.floor.has_floor(FLIGHTS.identification.speaker_uri)


def test_no_announcement_when_disabled() -> None:
    assert kinds(World(announce_handover=False).hear("Book a flight to Denver")) == ["invite"]


def test_nothing_fits_and_nobody_has_the_floor_the_caller_is_told() -> None:
    events = World().hear("What is the meaning of life?")
    assert kinds(events) == ["utterance"]
    text = events[0].dialog_event.text if events[0].dialog_event else ""
    assert "none of our agents can help" in text and "Flights, Hotels or Weather" in text


def test_the_agent_with_the_floor_keeps_it_for_follow_ups() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    assert w.hear("From Boston") == []
    assert w.hear("What is the meaning of life?") == []  # the focal agent answers that


def test_hand_over_to_a_new_agent_revokes_the_old_floor() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    events = w.hear("let me talk to the weather agent")
    assert kinds(events) == ["revokeFloor", "utterance", "invite"]
    assert events[0].reason == "@override"
    assert not w.floor.has_floor(FLIGHTS.identification.speaker_uri)
    history = [h.text for h in events[2].dialog_history or []]
    assert history[-1] == "let me talk to the weather agent" and "Book a flight to Denver" in history


def test_hand_back_to_an_agent_already_present_uses_grant_floor_and_a_whisper() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    w.hear("What's the weather in Denver?")
    events = w.hear("back to the flights agent")
    assert kinds(events) == ["revokeFloor", "utterance", "grantFloor", "utterance"]
    whisper = events[3]
    assert whisper.private and whisper.to is not None and whisper.to.speaker_uri == FLIGHTS.identification.speaker_uri
    assert whisper.dialog_event is not None and whisper.dialog_event.speaker_uri == w.human.speaker_uri


def test_a_clearly_better_fit_moves_the_floor() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    assert kinds(w.hear("I also need a hotel room")) == ["revokeFloor", "utterance", "invite"]


def test_barge_in_corrects_the_history_handed_to_the_next_agent() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    agent_says = text_event(FLIGHTS.identification.speaker_uri, "A flight to Denver. Where are you flying from?")
    heard = Envelope(w.floor.conversation(), FLIGHTS.identification.speaker_uri, [E.utterance(agent_says)])
    w.policy.on_envelope(heard, w.floor)
    assert w.policy.amend_last(None, "A flight to Denver.")
    events = w.hear("let me talk to the weather agent")
    texts = [h.text for h in events[-1].dialog_history or []]
    assert "A flight to Denver." in texts and "A flight to Denver. Where are you flying from?" not in texts


def test_delegations() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    f, h = FLIGHTS.identification, HOTELS.identification
    from convener.ofp.floor import Delegation

    def delegate(ev: Event, origin: str) -> list[Event]:
        wrapped = Envelope(w.floor.conversation(), origin, [ev])
        return w.policy.on_delegation(Delegation(w.me.speaker_uri, origin, ev, wrapped), w.floor)

    assert kinds(delegate(E.invite(To.of(h)), f.speaker_uri)) == ["invite"]
    assert delegate(E.uninvite(To(w.human.speaker_uri)), f.speaker_uri) == []
    assert kinds(delegate(E.uninvite(To(f.speaker_uri)), f.speaker_uri)) == ["uninvite"]
    assert delegate(E.revoke_floor(To(w.human.speaker_uri)), f.speaker_uri) == []
    # Hotels asks for the floor while Flights holds it: refused with revokeFloor.
    w.apply([E.invite(To.of(h))])
    w.apply([E.revoke_floor(To.of(h))])
    refused = delegate(E.request_floor(), h.speaker_uri)
    assert kinds(refused) == ["revokeFloor"]
    assert refused[0].to is not None and refused[0].to.speaker_uri == h.speaker_uri
    w.apply([E.yield_floor()])  # (from the convener: no effect on Flights)
    w.floor.process(Envelope(w.floor.conversation(), f.speaker_uri, [E.yield_floor("@complete")]))
    assert kinds(delegate(E.request_floor(), h.speaker_uri)) == ["grantFloor"]
    # Speaking without the floor: dropped, and uninvited after repeated offences.
    outs = [delegate(E.utterance(text_event(f.speaker_uri, "buy now")), f.speaker_uri) for _ in range(3)]
    assert outs[0] == [] and outs[1] == [] and kinds(outs[2]) == ["uninvite"]
    assert "@brokenPolicy" in (outs[2][0].reason or "")


def test_faults_uninvite_with_the_reason_token_and_tell_the_caller() -> None:
    w = World()
    w.hear("Book a flight to Denver")
    uri = FLIGHTS.identification.speaker_uri
    events = w.policy.on_fault(uri, "@timedOut", "no answer within 4 s", w.floor)
    assert kinds(events) == ["uninvite", "utterance"]
    assert events[0].reason is not None and events[0].reason.startswith("@timedOut")
    assert "Flights is not answering" in (events[1].dialog_event.text if events[1].dialog_event else "")


def test_faults_below_the_threshold_only_apologise() -> None:
    w = World(faults_before_uninvite=2)
    w.hear("Book a flight to Denver")
    uri = FLIGHTS.identification.speaker_uri
    assert kinds(w.policy.on_fault(uri, "@error", "HTTP 500", w.floor)) == ["utterance"]
    w.policy.on_success(uri)
    assert kinds(w.policy.on_fault(uri, "@error", "HTTP 500", w.floor)) == ["utterance"]
    assert kinds(w.policy.on_fault(uri, "@error", "HTTP 500", w.floor)) == ["uninvite", "utterance"]


def test_whispers_to_the_convener_stay_out_of_the_history() -> None:
    w = World()
    f = FLIGHTS.identification.speaker_uri
    secret = E.utterance(text_event(f, "card 4111"), to=To(w.me.speaker_uri, private=True))
    assert w.policy.on_envelope(Envelope(w.floor.conversation(), f, [secret]), w.floor) == []
    events = w.hear("Book a flight to Denver")
    assert [h.text for h in events[-1].dialog_history or []] == ["Book a flight to Denver"]


# --- calibrated decisions (keyphrase router: deterministic, no model) ----------------------------

RENTRIGHT = Manifest(
    Identification("tag:rentright.invalid,2026:a", "http://127.0.0.1:9010/ofp", conversational_name="RentRight",
                   synopsis="Your car rental agent."),
    [Capability(["airport", "car rental", "rental car"], ["Reserve a rental vehicle."])],
)


class Room(World):
    """A World with a car-rental agent whose keyphrases overlap with Flights ("airport")."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)
        ms = [*MANIFESTS, RENTRIGHT]
        self.policy = ConvenerPolicy(self.settings, self.me, lambda: ms)
        self.policy.humans.add(self.human.speaker_uri)

    def resolve(self, to: To) -> object:  # type: ignore[override]
        ms = [*MANIFESTS, RENTRIGHT]
        return next((m.identification for m in ms if m.identification.speaker_uri == to.speaker_uri), None)


def said(events: list[Event]) -> list[str]:
    return [e.dialog_event.text for e in events if e.event_type == "utterance" and e.dialog_event is not None]


def test_two_close_candidates_get_one_question_and_the_answer_settles_it() -> None:
    for answer in ("car rental", "the second one", "RentRight please"):
        w = Room()
        q = w.hear("Something at the Phoenix airport tomorrow")
        assert kinds(q) == ["utterance"] and said(q) == ["Flights, or RentRight?"]
        events = w.hear(answer)
        assert kinds(events) == ["utterance", "invite"], answer
        assert events[1].to is not None and events[1].to.speaker_uri == RENTRIGHT.identification.speaker_uri
        history = [h.text for h in events[1].dialog_history or []]
        assert history[0] == "Something at the Phoenix airport tomorrow" and history[-1] == answer
    w = Room()
    w.hear("Something at the Phoenix airport tomorrow")
    events = w.hear("flights please")
    assert events[-1].to is not None and events[-1].to.speaker_uri == FLIGHTS.identification.speaker_uri
    w = Room()
    w.hear("Something at the Phoenix airport tomorrow")
    assert w.hear("the first one")[-1].to.speaker_uri == FLIGHTS.identification.speaker_uri  # type: ignore[union-attr]


def test_none_fits_names_what_the_agents_do() -> None:
    text = said(World().hear("What is the meaning of life?"))[0]
    assert text.startswith("Sorry, none of our agents can help with that.")
    assert "Flights: Books airline flights between cities." in text
    assert "Weather: Tells today's weather in a city." in text


def test_explicit_request_wordings_invite_that_agent() -> None:
    for text, agent in (("Put me through to the weather agent.", WEATHER), ("Can I speak with Hotels?", HOTELS),
                        ("get me the weather agent", WEATHER)):
        events = World().hear(text)
        assert kinds(events) == ["utterance", "invite"], text
        assert events[1].to is not None and events[1].to.speaker_uri == agent.identification.speaker_uri


def test_two_requests_the_second_agent_is_invited_when_the_first_yields() -> None:
    w = World()
    events = w.hear("I need a flight and a hotel in Denver")
    assert kinds(events) == ["utterance", "invite"]
    assert events[1].to is not None and events[1].to.speaker_uri == FLIGHTS.identification.speaker_uri
    f = FLIGHTS.identification.speaker_uri
    w.hear("From Boston next Friday")  # Flights holds the floor and answers
    agent_env = Envelope(w.floor.conversation(), f, [
        E.utterance(text_event(f, "Booked: Boston to Denver, next Friday.")), E.yield_floor("@complete")])
    w.floor.process(agent_env)
    out = w.policy.on_envelope(agent_env, w.floor)
    assert kinds(out) == ["utterance", "invite"]
    inv = out[1]
    assert inv.to is not None and inv.to.speaker_uri == HOTELS.identification.speaker_uri
    history = [h.text for h in inv.dialog_history or []]
    assert history[-1] == "I need a flight and a hotel in Denver"
    # Only once.
    assert w.policy.on_envelope(agent_env, w.floor) == []


def test_fits_nobody_is_a_first_request_no_agent_fits_and_changes_nothing() -> None:
    w = World()
    assert w.policy.fits_nobody("What is the meaning of life?", w.floor)
    assert not w.policy.fits_nobody("Book a flight to Denver", w.floor)
    assert w.policy.decisions == [] and list(w.policy.history) == []  # asking decides nothing
    w.hear("Book a flight to Denver")
    # the agent holding the floor hears follow-ups, whatever they are
    assert not w.policy.fits_nobody("What is the meaning of life?", w.floor)
    q = Room()
    q.hear("Something at the Phoenix airport tomorrow")
    assert not q.policy.fits_nobody("the second one", q.floor)  # an answer to "A, or B?"
    assert not q.policy.fits_nobody("erm", q.floor)
    r = World()
    r.policy.advice["What is the meaning of life?"] = "{}"  # the LLM convener's answer decides
    assert not r.policy.fits_nobody("What is the meaning of life?", r.floor)
