"""The built-in convener policy: pure decisions, no I/O.

It is a conversant like any other (it hears what is passed through to it) and the convener of
the floor (it answers delegations). It can be replaced by an external OFP convener agent named
in ``[ofp] convener_agent``; the session then sends it the same envelopes over HTTP.

Decisions:

- A caller's utterance that names an agent ("let me talk to the weather agent") hands the floor
  to that agent. Otherwise the utterance is scored against the manifests (keyphrases first,
  descriptions more weakly). With no agent holding the floor, the best agent above the
  threshold is brought in; when an agent holds the floor, the floor moves only if another agent
  fits clearly better. When nothing fits and no agent holds the floor, the caller is told so.
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
from convener.ofp.routing import explicit_request, rank, score
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
    ) -> None:
        self.settings = settings
        self.me = me
        self._catalog = catalog
        self.humans: set[str] = set()
        self.history: deque[DialogEvent] = deque(maxlen=max(settings.history_events, 1) * 4)
        self._faults: dict[str, int] = {}
        self._violations: dict[str, int] = {}
        self.decisions: list[str] = []  # why each decision was taken (also logged)

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
            elif ev.event_type == "declineInvite" and env.sender_uri not in self.humans:
                name = self._name(floor, env.sender_uri)
                self._decide(f"{name} declined the invite ({ev.reason or 'no reason'})")
                out.append(self._say(f"Sorry, {name} can't help right now."))
        return out

    def _route(self, de: DialogEvent, floor: FloorManager) -> list[Event]:
        text = de.text
        manifests = list(self._catalog())
        focal = self._agents_with_floor(floor)
        target = explicit_request(text, manifests)
        if target is not None:
            self._decide(f"caller asked for {target.identification.conversational_name}")
        else:
            ranked = rank(text, manifests)
            best = ranked[0] if ranked and ranked[0].score >= self.settings.match_threshold else None
            if best is None:
                if focal:
                    return []  # the agent holding the floor heard it and answers
                self._decide(f"no agent fits {text!r}")
                names = [m.identification.conversational_name for m in manifests]
                offer = f" I can connect you to {_join(names)}." if names else ""
                return [self._say(f"Sorry, none of our agents can help with that.{offer}")]
            if focal:
                focal_scores = [
                    score(text, m) for u in focal if (m := self._manifest(u)) is not None
                ]
                if best.manifest.identification.speaker_uri in focal:
                    return []
                if focal_scores and best.score <= max(focal_scores):
                    return []
            target = best.manifest
            self._decide(
                f"{target.identification.conversational_name} fits {text!r} (score {best.score:.2f})"
            )
        return self._hand_over(target, de, floor, focal)

    def _hand_over(
        self, target: Manifest, de: DialogEvent, floor: FloorManager, focal: list[str]
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
            events.append(invite(To.of(target.identification), dialog_history=self.recent_history()))
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


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _to(floor: FloorManager, uri: str) -> To:
    ident = floor.identification(uri)
    return To(uri, ident.service_url if ident else None)
