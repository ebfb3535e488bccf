"""The built-in convener policy: pure decisions, no I/O.

It is a conversant like any other (it hears what is passed through to it) and the convener of
the floor (it answers delegations). It can be replaced by an external OFP convener agent named
in ``[ofp] convener_agent``; the session then sends it the same envelopes over HTTP.

Decisions:

- Routing (``convener.ofp.routing``): a caller's utterance that names an agent ("put me
  through to the weather agent") hands the floor to that agent. Otherwise the router weighs
  meaning (sentence embeddings of the manifests, when the model is installed) and keyphrases.
  With no agent holding the floor: a clear winner is invited; two close candidates get one
  short question naming both ("Flights, or RentRight?") and the caller's next utterance
  settles it ("the first one", "car rental", "flights please"); when nothing fits, the caller
  is told so and what the agents can do. When an agent holds the floor, the floor moves only
  if another agent is named or fits clearly better.
- Two requests in one sentence ("a flight and a hotel in Denver"): the first agent is invited;
  when it yields the floor, the second is invited with a dialogHistory that ends with the
  request that named it.
- Handing over: ``revokeFloor`` (``@override``) to the agent holding the floor, an optional
  spoken "Connecting you to ..." and either ``invite`` with ``dialogHistory`` (a new agent) or
  ``grantFloor`` plus a private utterance carrying the caller's request (an agent already in
  the conversation, 1.1.0 figure 28).
- Delegated events: agents may invite known agents, give up or pass on their own floor and
  uninvite themselves; ``requestFloor`` is granted when no other agent holds the floor, refused
  with ``revokeFloor`` otherwise; utterances from agents without the floor are dropped, and an
  agent that keeps doing it is uninvited (``@brokenPolicy``).
- Faults reported by the session (timeout, error, garbage): after ``faults_before_uninvite``
  consecutive faults the agent is uninvited with ``@timedOut``, ``@error`` or ``@brokenPolicy``;
  when it held the floor, the caller is told.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence

from convener.ofp.dialog import DialogEvent, text_event
from convener.ofp.envelope import (
    Envelope,
    Event,
    To,
    grant_floor,
    invite,
    revoke_floor,
    uninvite,
    utterance,
)
from convener.ofp.floor import Delegation, FloorManager
from convener.ofp.manifest import Identification, Manifest
from convener.ofp.routing import Decision, Router
from convener.ofp.routing.llm import InvalidDecision, parse_decision
from convener.ofp.settings import OfpSettings

log = logging.getLogger(__name__)

FAULT_TOKENS = ("@timedOut", "@error", "@brokenPolicy")
MAX_FLOOR_VIOLATIONS = 3


class ConvenerPolicy:
    def __init__(
        self,
        settings: OfpSettings,
        me: Identification,
        catalog: Callable[[], Sequence[Manifest]],
        router: Router | None = None,
    ) -> None:
        self.settings = settings
        self.me = me
        self._catalog = catalog
        self.router = router or Router.keyphrases_only(settings.match_threshold)
        # The question "A, or B?" is open: (A, B, the request it is about).
        self._asking: tuple[Manifest, Manifest, DialogEvent] | None = None
        # A second request of the same sentence, for when the first agent yields: (agent, request).
        self._pending: tuple[Manifest, DialogEvent] | None = None
        self.humans: set[str] = set()
        self.history: deque[DialogEvent] = deque(maxlen=max(settings.history_events, 1) * 4)
        self._faults: dict[str, int] = {}
        self._violations: dict[str, int] = {}
        self.decisions: list[str] = []  # why each decision was taken (also logged)
        # The LLM convener's answers by utterance text, consumed by ``_route`` (checked there).
        self.advice: dict[str, str] = {}

    # --- helpers -----------------------------------------------------------------------------

    def _decide(self, text: str) -> None:
        self.decisions.append(text)
        log.info("convener: %s", text)

    def _say(self, text: str) -> Event:
        return utterance(text_event(self.me.speaker_uri, text))

    def _agents_with_floor(self, floor: FloorManager) -> list[str]:
        return [
            u for u in floor.floor_granted if u not in self.humans and u != self.me.speaker_uri
        ]

    def _name(self, floor: FloorManager, uri: str) -> str:
        ident = floor.identification(uri)
        if ident is None:
            m = self._manifest(uri)
            ident = m.identification if m else None
        return ident.conversational_name if ident and ident.conversational_name else "the agent"

    def _manifest(self, uri: str) -> Manifest | None:
        return next((m for m in self._catalog() if m.identification.speaker_uri == uri), None)

    def recent_history(self) -> list[DialogEvent]:
        n = self.settings.history_events
        return list(self.history)[-n:] if n else []

    def forget(self, event_ids: set[str]) -> None:
        """Sentences the caller never heard (queued when they barged in) leave the history."""
        kept = [de for de in self.history if de.id not in event_ids]
        if len(kept) != len(self.history):
            self.history.clear()
            self.history.extend(kept)

    def amend_last(self, speaker_uri: str | None, heard: str) -> bool:
        """Barge-in: the last utterance (of ``speaker_uri`` if given) was heard only up to ``heard``."""
        for i in range(len(self.history) - 1, -1, -1):
            de = self.history[i]
            if de.speaker_uri in self.humans:
                continue
            if speaker_uri is None or de.speaker_uri == speaker_uri:
                self.history[i] = de.with_text(heard)
                return True
        return False

    def fits_nobody(self, text: str, floor: FloorManager) -> bool:
        """Whether ``text``, said by a caller now, would be answered "none of our agents can
        help": a first request (no agent holds the floor, no "A, or B?" is open, no LLM advice
        waits for it) that the router fits to no agent. No side effect. The turn decision asks
        it before ending a turn (``TurnCompletion.asks_routing``); the router should have the
        text embedded already (``Router.ready``), or this runs the model inline."""
        if self._asking is not None or self._agents_with_floor(floor) or text in self.advice:
            return False
        return self.router.route(text, list(self._catalog())).kind == "none"

    # --- what the convener hears -------------------------------------------------------------

    def on_envelope(self, env: Envelope, floor: FloorManager) -> list[Event]:
        out: list[Event] = []
        for ev in env.events:
            if ev.event_type == "utterance" and ev.dialog_event is not None:
                if ev.private:
                    continue  # whispers to the convener never go into anybody's dialogHistory
                self.history.append(ev.dialog_event)
                if env.sender_uri in self.humans:
                    out.extend(self._route(ev.dialog_event, floor))
            elif ev.event_type == "yieldFloor" and env.sender_uri not in self.humans and self._pending:
                target, request = self._pending
                if target.identification.speaker_uri == env.sender_uri:
                    continue
                self._pending = None
                name = target.identification.conversational_name
                self._decide(f"{self._name(floor, env.sender_uri)} yielded; on to {name} for {request.text!r}")
                focal = [u for u in self._agents_with_floor(floor) if u != env.sender_uri]
                out.extend(self._hand_over(target, request, floor, focal, history=self._history_until(request)))
            elif ev.event_type == "declineInvite" and env.sender_uri not in self.humans:
                name = self._name(floor, env.sender_uri)
                self._decide(f"{name} declined the invite ({ev.reason or 'no reason'})")
                out.append(self._say(f"Sorry, {name} can't help right now."))
        return out

    def _route(self, de: DialogEvent, floor: FloorManager) -> list[Event]:
        text = de.text
        manifests = list(self._catalog())
        focal = self._agents_with_floor(floor)
        if self._asking is not None:
            a, b, _request = self._asking
            self._asking = None
            pick = self.router.choose(text, [a, b])
            if pick is not None:
                self._decide(f"caller chose {pick.identification.conversational_name} ({text!r})")
                return self._hand_over(pick, de, floor, focal)
        d = self._advised(text, manifests, focal) or self.router.route(text, manifests, focal)
        if d.kind == "stay":
            return []  # the agent holding the floor heard it and answers
        if d.kind == "none":
            if focal:
                return []
            self._decide(f"no agent fits {text!r}: {d.why}")
            return [self._say(_none_fits(manifests))]
        if d.kind == "ask":
            a, b = d.targets[0], d.targets[1]
            self._asking = (a, b, de)
            self._decide(f"asking between {_label(a)} and {_label(b)} for {text!r}: {d.why}")
            return [self._say(d.question or f"{_label(a)}, or {_label(b)}?")]
        target = d.targets[0]
        self._decide(f"{target.identification.conversational_name} for {text!r}: {d.why}")
        self._pending = (d.then, de) if d.then is not None else None
        return self._hand_over(target, de, floor, focal)

    def _advised(self, text: str, manifests: list[Manifest], focal: list[str]) -> Decision | None:
        """The LLM convener's decision for ``text`` when it answered in time and validly."""
        raw = self.advice.pop(text, None)
        if raw is None:
            return None
        try:
            return parse_decision(raw, manifests, focal)
        except InvalidDecision as e:
            self._decide(f"LLM convener answer refused ({e}); the router decides")
            return None

    def _history_until(self, de: DialogEvent) -> list[DialogEvent]:
        """The recent history as it was when ``de`` was said (``de`` last)."""
        events = list(self.history)
        idx = next((i for i in range(len(events) - 1, -1, -1) if events[i] is de or events[i].id == de.id), None)
        if idx is None:
            return [*self.recent_history(), de]
        n = self.settings.history_events
        return events[max(0, idx + 1 - n) : idx + 1] if n else []

    def _hand_over(
        self, target: Manifest, de: DialogEvent, floor: FloorManager, focal: list[str],
        history: list[DialogEvent] | None = None,
    ) -> list[Event]:
        uri = target.identification.speaker_uri
        if uri in focal:
            return []
        events: list[Event] = [revoke_floor(_to(floor, u), "@override") for u in focal]
        name = target.identification.conversational_name or "the agent"
        if self.settings.announce_handover:
            events.append(self._say(f"Connecting you to {name}."))
        if floor.is_conversant(uri):
            ident = floor.identification(uri)
            assert ident is not None
            request = DialogEvent(speaker_uri=de.speaker_uri, features=de.features, span=de.span)
            events.append(grant_floor(To.of(ident)))
            events.append(utterance(request, to=To.of(ident, private=True)))
        else:
            hist = self.recent_history() if history is None else history
            events.append(invite(To.of(target.identification), dialog_history=hist))
        return events

    # --- delegations -------------------------------------------------------------------------

    def on_delegation(self, d: Delegation, floor: FloorManager) -> list[Event]:
        ev, origin = d.event, d.origin
        et = ev.event_type
        to_self = ev.to is not None and ev.to.speaker_uri == origin
        if et == "invite":
            return [ev]
        if et in ("uninvite", "revokeFloor"):
            if to_self or origin in self.humans:
                return [ev]
            self._decide(f"{et} from {origin} refused: agents may only {et} themselves")
            return []
        if et == "grantFloor":
            return [ev] if floor.has_floor(origin) else []
        if et == "requestFloor":
            others = [u for u in self._agents_with_floor(floor) if u != origin]
            to = _to(floor, origin)
            if others:
                self._decide(f"floor request from {origin} refused: {others[0]} holds it")
                return [revoke_floor(to, "@override")]
            return [grant_floor(to)]
        if et == "utterance":
            if origin in self.humans:
                return [ev]  # callers may always speak
            n = self._violations[origin] = self._violations.get(origin, 0) + 1
            self._decide(f"utterance from {origin} without the floor dropped ({n})")
            if n >= MAX_FLOOR_VIOLATIONS:
                return [uninvite(_to(floor, origin), "@brokenPolicy: speaks without the floor")]
            return []
        return [ev]

    # --- faults ------------------------------------------------------------------------------

    def on_success(self, uri: str) -> None:
        self._faults.pop(uri, None)

    def on_fault(self, uri: str, token: str, detail: str, floor: FloorManager) -> list[Event]:
        """An agent timed out or answered garbage; ``token`` is one of FAULT_TOKENS."""
        if not floor.is_conversant(uri):
            return []
        n = self._faults[uri] = self._faults.get(uri, 0) + 1
        name = self._name(floor, uri)
        had_floor = floor.has_floor(uri)
        events: list[Event] = []
        if n >= self.settings.faults_before_uninvite:
            self._decide(f"uninviting {name}: {token} {detail}")
            events.append(uninvite(_to(floor, uri), f"{token} {detail}"))
            self._faults.pop(uri, None)
        if had_floor:
            what = "is not answering" if token == "@timedOut" else "is having a problem"
            events.append(self._say(f"Sorry, {name} {what} right now."))
        return events


def _label(m: Manifest) -> str:
    return m.identification.conversational_name or "the agent"


MAX_OFFERED = 6


def _none_fits(manifests: Sequence[Manifest]) -> str:
    """ "Sorry, none of our agents can help with that." and what they can do."""
    shown = [m for m in manifests if m.identification.conversational_name][:MAX_OFFERED]
    if not shown:
        return "Sorry, none of our agents can help with that."
    names = [_label(m) for m in shown]
    what = " ".join(
        f"{_label(m)}: {_first_sentence(m.identification.synopsis)}" for m in shown if m.identification.synopsis
    )
    return f"Sorry, none of our agents can help with that. I can connect you to {_join(names)}. {what}".strip()


def _first_sentence(text: str, limit: int = 90) -> str:
    t = text.strip().split(". ")[0].strip()
    t = t if len(t) <= limit else t[: limit].rsplit(" ", 1)[0] + "..."
    return t if t.endswith((".", "!", "?", "...")) else t + "."


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _to(floor: FloorManager, uri: str) -> To:
    ident = floor.identification(uri)
    return To(uri, ident.service_url if ident else None)
