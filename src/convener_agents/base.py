"""A minimal Open Floor servicing agent (1.1.0 section 2.1) and its aiohttp HTTP service.

``SkillAgent.handle(envelope)`` applies the minimal behaviours: answer ``getManifests`` with its
manifest, accept an ``invite`` (``acceptInvite`` plus an answer to what the caller asked in
``dialogHistory``, or a greeting: the caller's utterances since another agent last spoke
fill the agent's slots first, so "from Boston to Denver next Friday" is not asked again),
take and give back the floor on ``grantFloor`` / ``revokeFloor``, leave on ``uninvite``, and
answer callers' utterances while it holds the floor.
Events addressed to someone else are ignored. Subclasses implement ``respond``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from convener.ofp.dialog import DialogEvent, text_event
from convener.ofp.envelope import (
    Conversation,
    Envelope,
    Event,
    To,
    accept_invite,
    publish_manifests,
    utterance,
    yield_floor,
)
from convener.ofp.errors import ParseError
from convener.ofp.manifest import Capability, Identification, Manifest, SupportedLayers
from convener.ofp.parse import parse_envelope

log = logging.getLogger(__name__)

AUTHORITY = "convener-agents.invalid,2026"
MAX_BODY = 1024 * 1024


@dataclass
class Reply:
    text: str
    done: bool = False  # the task is complete: yield the floor (@complete)


@dataclass
class ConversationState:
    joined: bool = False
    has_floor: bool = False
    inviter: str | None = None
    # The slots of the caller being answered now: ``respond`` reads and may replace them.
    slots: dict[str, Any] = field(default_factory=dict)
    # Every caller's own slots, by speakerUri: in a room of several callers one caller's words
    # never fill another's booking.
    by_speaker: dict[str, dict[str, Any]] = field(default_factory=dict)


class SkillAgent(ABC):
    name = "agent"
    synopsis = ""
    role = ""
    keyphrases: tuple[str, ...] = ()
    descriptions: tuple[str, ...] = ()

    def __init__(self, service_url: str) -> None:
        self.service_url = service_url
        self.speaker_uri = f"tag:{AUTHORITY}:{self.name.lower()}"
        self.conversations: dict[str, ConversationState] = {}

    @property
    def manifest(self) -> Manifest:
        return Manifest(
            Identification(
                speaker_uri=self.speaker_uri,
                service_url=self.service_url,
                organization="convener examples",
                conversational_name=self.name,
                synopsis=self.synopsis,
                role=self.role,
                open_floor_roles={"convener": False},
            ),
            [
                Capability(
                    keyphrases=list(self.keyphrases),
                    descriptions=list(self.descriptions),
                    languages=["en"],
                    supported_layers=SupportedLayers(["text"], ["text"]),
                )
            ],
        )

    @abstractmethod
    def respond(self, state: ConversationState, text: str) -> Reply:
        """Answer what the caller said (short, speakable)."""

    def greeting(self) -> str:
        return f"Hi, this is {self.name}. How can I help?"

    def prefill(self, state: ConversationState, text: str) -> None:
        """Take what the caller already said before the invite into the slots (no reply)."""
        return None

    # --- envelope handling -------------------------------------------------------------------

    def _for_me(self, ev: Event) -> bool:
        return ev.to is None or ev.to.speaker_uri == self.speaker_uri or (
            ev.to.speaker_uri is None and ev.to.service_url == self.service_url
        )

    @staticmethod
    def _humans(env: Envelope) -> set[str] | None:
        if not env.conversation.conversants:
            return None  # this floor does not tell; treat every other speaker as a caller
        return {c.speaker_uri for c in env.conversation.conversants if (c.role or "").lower() == "user"}

    def _from_caller(self, de: DialogEvent, humans: set[str] | None) -> bool:
        if de.speaker_uri == self.speaker_uri:
            return False
        return humans is None or de.speaker_uri in humans

    def handle(self, env: Envelope) -> list[Event]:
        cid = env.conversation.id
        state = self.conversations.get(cid) or ConversationState()
        humans = self._humans(env)
        out: list[Event] = []
        for ev in env.events:
            et = ev.event_type
            if et == "getManifests":
                if self._for_me(ev) and ev.recommend_scope in (None, "internal", "all"):
                    out.append(publish_manifests([self.manifest], [], to=To(env.sender_uri)))
                continue
            if not self._for_me(ev):
                continue
            if et == "invite":
                state.joined = state.has_floor = True
                state.inviter = env.sender_uri
                self.conversations[cid] = state
                out.append(accept_invite(To(env.sender_uri)))
                request = self._request(ev.dialog_history or [], humans, set(self._conveners(env)))
                for earlier in request[:-1]:
                    self._use_slots_of(state, earlier.speaker_uri)
                    self.prefill(state, earlier.text)
                    state.by_speaker[earlier.speaker_uri or ""] = state.slots
                last = request[-1] if request else None
                reply = self._respond_to(state, last.speaker_uri, last.text) if last else Reply(self.greeting())
                out.extend(self._say(reply))
            elif et == "grantFloor":
                state.joined = state.has_floor = True
                self.conversations[cid] = state
            elif et == "revokeFloor":
                state.has_floor = False
            elif et == "uninvite" or (et == "bye" and env.sender_uri in (state.inviter, *self._conveners(env))):
                self.conversations.pop(cid, None)
                return out
            elif et == "utterance" and ev.dialog_event is not None:
                de = ev.dialog_event
                if not (state.joined and state.has_floor):
                    continue
                if self._from_caller(de, humans) or (ev.private and de.speaker_uri != self.speaker_uri):
                    out.extend(self._say(self._respond_to(state, de.speaker_uri, de.text)))
        return out

    def _request(self, history: list[DialogEvent], humans: set[str] | None, conveners: set[str]) -> list[DialogEvent]:
        """The caller's utterances at the end of ``history`` since an agent other than the
        convener last spoke (the request, and e.g. the answer to "Flights, or RentRight?")."""
        out: list[DialogEvent] = []
        for d in reversed(history):
            if self._from_caller(d, humans) and d.speaker_uri not in conveners:
                out.append(d)
            elif d.speaker_uri not in conveners:
                break
        return out[::-1]

    @staticmethod
    def _use_slots_of(state: ConversationState, speaker_uri: str | None) -> None:
        """Point ``state.slots`` at the slots of the caller ``speaker_uri`` (kept per caller)."""
        state.slots = state.by_speaker.setdefault(speaker_uri or "", {})

    def _respond_to(self, state: ConversationState, speaker_uri: str | None, text: str) -> Reply:
        """``respond`` with the slots of the caller who said ``text``."""
        self._use_slots_of(state, speaker_uri)
        reply = self.respond(state, text)
        state.by_speaker[speaker_uri or ""] = state.slots  # respond may have replaced them
        return reply

    @staticmethod
    def _conveners(env: Envelope) -> list[str]:
        """A ``bye`` from the convener (or whoever invited us) ends the conversation for us."""
        return env.conversation.assigned_floor_roles.get("convener", [])

    def _say(self, reply: Reply) -> list[Event]:
        events = [utterance(text_event(self.speaker_uri, reply.text))]
        if reply.done:
            events.append(yield_floor("@complete"))
        return events

    def answer(self, env: Envelope) -> Envelope:
        return Envelope(
            conversation=Conversation(id=env.conversation.id),
            sender_uri=self.speaker_uri,
            sender_url=self.service_url,
            events=self.handle(env),
        )


def make_app(agent: SkillAgent, path: str = "/ofp",
             answer: Callable[[Envelope], Awaitable[Envelope]] | None = None,
             on_cleanup: Callable[[], Awaitable[None]] | None = None) -> web.Application:
    """The agent's HTTP service: POST envelopes to ``path``; GET ``path``/manifest.

    ``answer``: an async answer instead of ``agent.answer`` (an agent that waits for a model);
    ``on_cleanup``: run when the service stops."""

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            env = parse_envelope(body)
        except ParseError as e:
            return web.json_response({"error": str(e)}, status=400)
        out = await answer(env) if answer is not None else agent.answer(env)
        return web.json_response(out.to_dict())

    async def manifest(_request: web.Request) -> web.Response:
        return web.json_response(agent.manifest.to_dict())

    async def cleanup(_app: web.Application) -> None:
        if on_cleanup is not None:
            try:
                await on_cleanup()
            except Exception:
                log.exception("agent %s: cleanup failed", agent.name)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(path, post)
    app.router.add_get(f"{path}/manifest", manifest)
    app.on_cleanup.append(cleanup)
    return app
