"""The floor manager (Inter-Agent Message 1.1.0, sections 1.6, 1.8 and 2.2): pure logic, no I/O.

It owns the ``conversation`` section (conversants, ``assignedFloorRoles``, ``floorGranted``) and
decides who receives each event. What agents write in their own ``conversation`` section is
ignored: ours is authoritative.

Usage::

    floor = FloorManager("conv:1", floor_identification, resolve=directory.lookup)
    floor.join(caller_identification)               # humans and other local conversants
    run = floor.receive(envelope)                   # envelopes in the order received
    while (d := run.pending) is not None:           # an event delegated to the convener
        run.resume(convener_answer(d.envelope))     # its events go to the head of the queue
    deliveries = run.deliveries                     # [(recipient speakerUri, envelope), ...]

``floor.process(envelope, convener=callable)`` does the same loop for a synchronous convener.

Rules (1.1.0 section 2.2): with a convener, ``invite``, ``uninvite``, ``requestFloor``,
``grantFloor``, ``revokeFloor`` and utterances from a conversant without the floor are delegated;
the convener's returned events are inserted at the head of the remaining queue and passed
through (they are never delegated again). Without a convener, ``requestFloor`` is answered by a
``grantFloor`` from the floor and utterances from a conversant without the floor are ignored.
Everything else is passed through to every conversant but its sender; ``private`` is honoured
for utterances only. Envelopes from senders that are not conversants are ignored, and an
``invite`` can only name an agent the ``resolve`` function knows: the floor can never be made to
contact an arbitrary URL.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from convener.ofp.envelope import Conversation, Envelope, Event, To, grant_floor
from convener.ofp.manifest import Identification

log = logging.getLogger(__name__)

DELEGATED = frozenset({"invite", "uninvite", "requestFloor", "grantFloor", "revokeFloor"})


@dataclass(frozen=True)
class Delivery:
    recipient: str  # speakerUri of a conversant
    envelope: Envelope


@dataclass(frozen=True)
class Delegation:
    """An event the convener must decide on, already wrapped in its own envelope."""

    convener: str
    origin: str
    event: Event
    envelope: Envelope


@dataclass
class _Outbox:
    items: list[tuple[str, str, Event, Conversation]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class FloorRun:
    """The processing of one received envelope, paused at each delegation to the convener."""

    def __init__(self, floor: FloorManager, gen: Generator[Delegation, list[Event], None], box: _Outbox):
        self._floor = floor
        self._gen = gen
        self._box = box
        self.pending: Delegation | None = None
        self._deliveries: list[Delivery] | None = None
        self._step(None)

    def _step(self, value: list[Event] | None) -> None:
        try:
            self.pending = next(self._gen) if value is None else self._gen.send(value)
        except StopIteration:
            self.pending = None
            self._deliveries = self._floor._group(self._box.items)

    def resume(self, events: list[Event]) -> None:
        """Hand back the convener's answer to ``pending`` (possibly ``[]``)."""
        if self.pending is None:
            raise RuntimeError("nothing is waiting for the convener")
        self._step(list(events))

    @property
    def done(self) -> bool:
        return self._deliveries is not None

    @property
    def deliveries(self) -> list[Delivery]:
        if self._deliveries is None:
            raise RuntimeError("the run is waiting for the convener")
        return self._deliveries

    @property
    def notes(self) -> list[str]:
        """Why events were ignored or dropped (also logged)."""
        return self._box.notes


class FloorManager:
    def __init__(
        self,
        conversation_id: str,
        floor: Identification,
        *,
        resolve: Callable[[To], Identification | None] | None = None,
    ) -> None:
        self.conversation_id = conversation_id
        self.floor = floor
        self._resolve = resolve or (lambda _to: None)
        self._conversants: dict[str, Identification] = {}
        self._granted: list[str] = []
        self._convener: str | None = None

    # --- state -------------------------------------------------------------------------------

    @property
    def conversants(self) -> list[Identification]:
        return list(self._conversants.values())

    @property
    def convener(self) -> str | None:
        return self._convener

    @property
    def floor_granted(self) -> list[str]:
        return list(self._granted)

    def is_conversant(self, uri: str) -> bool:
        return uri in self._conversants

    def has_floor(self, uri: str) -> bool:
        return uri in self._granted

    def identification(self, uri: str) -> Identification | None:
        return self._conversants.get(uri)

    def conversation(self) -> Conversation:
        return Conversation(
            id=self.conversation_id,
            conversants=list(self._conversants.values()),
            assigned_floor_roles={"convener": [self._convener]} if self._convener else {},
            floor_granted=list(self._granted),
        )

    def join(self, ident: Identification, *, floor: bool = True) -> None:
        """Add a local conversant (a human, or the floor itself) without an invite."""
        self._add(ident, floor=floor)

    def restore(self, conversants: list[Identification], granted: list[str], convener: str | None) -> None:
        """Put back a stored floor (``convener.ofp.floor_state``) on top of the local conversants
        already joined: the others rejoin, and the floor and the convener role are as stored."""
        for ident in conversants:
            self._conversants.setdefault(ident.speaker_uri, ident)
        self._granted = [u for u in granted if u in self._conversants]
        if convener is None or convener in self._conversants:
            self._convener = convener

    def assign_convener(self, uri: str | None) -> None:
        """Give the convener role to a conversant (at most one), or take it away (None)."""
        if uri is not None and uri not in self._conversants:
            raise ValueError(f"the convener must be a conversant: {uri}")
        self._convener = uri

    def _add(self, ident: Identification, *, floor: bool = True) -> None:
        self._conversants[ident.speaker_uri] = ident
        if floor and ident.speaker_uri not in self._granted:
            self._granted.append(ident.speaker_uri)

    def _remove(self, uri: str) -> None:
        self._conversants.pop(uri, None)
        if uri in self._granted:
            self._granted.remove(uri)
        if self._convener == uri:
            self._convener = None

    def _find(self, to: To | None) -> Identification | None:
        if to is None:
            return None
        if to.speaker_uri and to.speaker_uri in self._conversants:
            return self._conversants[to.speaker_uri]
        if to.service_url and not to.speaker_uri:
            for c in self._conversants.values():
                if c.service_url == to.service_url:
                    return c
        return None

    # --- processing --------------------------------------------------------------------------

    def receive(self, envelope: Envelope) -> FloorRun:
        """Start processing ``envelope``; the sender is ``envelope.sender_uri``."""
        box = _Outbox()
        return FloorRun(self, self._process(envelope, box), box)

    def process(
        self, envelope: Envelope, convener: Callable[[Delegation], list[Event]] | None = None
    ) -> list[Delivery]:
        """Process ``envelope`` completely; ``convener`` answers delegations synchronously."""
        run = self.receive(envelope)
        while run.pending is not None:
            run.resume(convener(run.pending) if convener else [])
        return run.deliveries

    def emit(self, events: list[Event]) -> list[Delivery]:
        """Events the floor itself sends (e.g. an uninvite after a fault); never delegated."""
        env = Envelope(self.conversation(), self.floor.speaker_uri, list(events), self.floor.service_url)
        return self.process(env)

    def _note(self, box: _Outbox, text: str) -> None:
        box.notes.append(text)
        log.info("floor %s: %s", self.conversation_id, text)

    def _process(self, env: Envelope, box: _Outbox) -> Generator[Delegation, list[Event], None]:
        floor_uri = self.floor.speaker_uri
        queue: deque[tuple[Event, str, bool]] = deque((e, env.sender_uri, False) for e in env.events)
        while queue:
            ev, origin, trusted = queue.popleft()
            et = ev.event_type
            if origin != floor_uri and origin not in self._conversants:
                self._note(box, f"{et} from {origin} ignored: not a conversant")
                continue
            conv = self._convener
            # The convener's events and the floor manager's own (an uninvite after a fault, the
            # bye at the end) are authoritative: never delegated.
            by_convener = trusted or origin == conv or origin == floor_uri
            no_floor_utterance = et == "utterance" and not self.has_floor(origin) and origin != floor_uri
            if conv is not None and not by_convener and (et in DELEGATED or no_floor_utterance):
                returned = yield Delegation(
                    convener=conv,
                    origin=origin,
                    event=ev,
                    envelope=Envelope(self.conversation(), origin, [ev], self._url(origin)),
                )
                for r in reversed(returned):
                    queue.appendleft((r, conv, True))
                continue
            if conv is None and not trusted:
                if no_floor_utterance:
                    self._note(box, f"utterance from {origin} ignored: it does not have the floor")
                    continue
                if et == "requestFloor":
                    queue.appendleft((grant_floor(To(origin, self._url(origin))), floor_uri, True))
                    continue
            self._pass_through(ev, origin, box)

    def _url(self, uri: str) -> str | None:
        ident = self._conversants.get(uri)
        if ident is not None:
            return ident.service_url
        return self.floor.service_url if uri == self.floor.speaker_uri else None

    def _everyone_but(self, origin: str) -> list[str]:
        return [u for u in self._conversants if u != origin]

    def _pass_through(self, ev: Event, origin: str, box: _Outbox) -> None:
        et = ev.event_type
        recipients: list[str]
        if et == "invite":
            target = self._find(ev.to) or (self._resolve(ev.to) if ev.to else None)
            if target is None:
                self._note(box, f"invite from {origin} to an unknown agent {ev.to} dropped")
                return
            ev.to = To(target.speaker_uri, target.service_url)
            self._add(target)
            recipients = self._everyone_but(origin)
        elif et == "uninvite":
            target = self._find(ev.to)
            recipients = self._everyone_but(origin)
            if target is None:
                self._note(box, f"uninvite from {origin} names no conversant; passed through")
            else:
                self._remove(target.speaker_uri)
        elif et in ("declineInvite", "bye"):
            recipients = self._everyone_but(origin)
            self._remove(origin)
        else:
            if et == "yieldFloor" and origin in self._granted:
                self._granted.remove(origin)
            elif et == "revokeFloor":
                target = self._find(ev.to)
                if target is not None and target.speaker_uri in self._granted:
                    self._granted.remove(target.speaker_uri)
            elif et == "grantFloor":
                target = self._find(ev.to)
                if target is not None and target.speaker_uri not in self._granted:
                    self._granted.append(target.speaker_uri)
            if et == "utterance" and ev.private:
                target = self._find(ev.to)
                if target is None:
                    self._note(box, f"private utterance from {origin} to {ev.to} dropped: no such conversant")
                    return
                recipients = [target.speaker_uri] if target.speaker_uri != origin else []
            else:
                recipients = self._everyone_but(origin)
        snapshot = self.conversation()
        for r in recipients:
            box.items.append((r, origin, ev, snapshot))

    def _group(self, items: list[tuple[str, str, Event, Conversation]]) -> list[Delivery]:
        """One envelope per run of consecutive events from the same origin to the same recipient."""
        open_env: dict[str, tuple[str, Envelope]] = {}
        out: list[Delivery] = []
        for recipient, origin, ev, snapshot in items:
            cur = open_env.get(recipient)
            if cur is not None and cur[0] == origin:
                cur[1].events.append(ev)
                cur[1].conversation = snapshot
                continue
            env = Envelope(snapshot, origin, [ev], self._url(origin))
            open_env[recipient] = (origin, env)
            out.append(Delivery(recipient, env))
        return out
