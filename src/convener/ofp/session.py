"""One Open Floor conversation per call or room: the API the voice path and ``convener chat`` use.

Construction and life cycle::

    from convener.ofp.session import FloorSession

    session = FloorSession.from_config(config)      # or FloorSession(config.ofp)
    await session.start(caller_name="Caller", caller_id="+15551234567")
    async for reply in session.user_turn("Book a flight to Denver"):
        speak(reply.text)                           # stream: first reply as soon as it is there
    replies = await session.user_turn("From Boston")  # or collect the whole turn
    session.barge_in("Flying from Boston to")       # what the caller actually heard (optional)
    await session.close()                           # sends bye

    async with FloorSession(settings) as session:   # start() / close() for you
        ...

``user_turn(text, *, speaker_uri=None, speaker_name=None)`` returns a ``Turn``: iterate it for
``AgentReply`` objects as they become available, or await it for the list. Turns are processed
one at a time in the order they were started (envelopes in the order received); each runs in its
own task, so a reader may stop early (barge-in) without holding up the next turn, and
``await turn.finished()`` waits until all of its agent answers have been applied.

Several humans share one room: ``add_human(name=..., caller_id=...)`` returns a speakerUri to
pass as ``speaker_uri``; a ``speaker_uri`` never seen before is added on the fly (with
``speaker_name``). Without ``speaker_uri`` the turn belongs to the caller created by ``start``.
A caller's number is used as ``tel:`` URI only when ``[ofp] caller_uri = "tel"``; otherwise each
caller is an anonymous tag URI.

``AgentReply`` carries who spoke (``agent_name``, ``speaker_uri``), what to say (``text``, and
``ssml`` / ``audio_urls`` when the agent sent them), ``private_to`` (the caller it was whispered
to, or None) and timing marks on the ``time.monotonic()`` clock: ``envelope_sent`` (the POST that
produced the reply started) and ``reply_received`` (its answer was read). Replies of the
convener itself ("Connecting you to Flights.", "Sorry, none of our agents can help with that.")
have ``from_convener=True``; they never leave the caller in silence.

Envelopes that external agents POST to our endpoint (``convener.ofp.endpoint``) go through
``receive(envelope)``; replies they cause for the callers come out of ``unsolicited()``.

How a turn runs: the caller's utterance goes to the floor (``convener.ofp.floor``), which passes
it to every conversant and delegates to the convener when the rules say so. Deliveries to humans
become replies at once; deliveries to the built-in convener (``convener.ofp.policy``) are
answered in-process and fed back; the rest are POSTed to the agents in parallel
(``convener.ofp.transport``), and their answers are applied in config order, each as soon as it
and every answer before it are in. Answers can cause more deliveries (agents hear each other);
that repeats for at most ``max_rounds`` rounds. Faults (timeouts, errors, garbage) go to the
convener, which uninvites per policy and tells the caller when the agent held the floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from convener.ari.rest import ssl_context
from convener.llm.settings import LlmSettings
from convener.ofp.dialog import Feature, text_event
from convener.ofp.directory import AgentDirectory, AgentEntry
from convener.ofp.envelope import Envelope, Event, To, bye, invite, utterance
from convener.ofp.errors import InvalidEnvelope
from convener.ofp.floor import Delivery, FloorManager
from convener.ofp.floor_state import FloorState
from convener.ofp.identity import convener_identification, human_identification
from convener.ofp.inbound_guard import InboundKeys, shared_keys
from convener.ofp.llm_convener import LlmConvener
from convener.ofp.manifest import Identification
from convener.ofp.policy import ConvenerPolicy
from convener.ofp.routing.embeddings import set_model_threads
from convener.ofp.routing.router import shared_router
from convener.ofp.settings import OfpSettings
from convener.ofp.streams import ReplyStreams
from convener.ofp.transport import AgentClient, PostResult
from convener.ofp.validate import available as validator_available
from convener.ofp.validate import validate_envelope

if TYPE_CHECKING:
    from convener.config import Config

log = logging.getLogger(__name__)

Tracer = Callable[[str, dict[str, Any]], None]
PREPARED_MAX = 4  # speculative texts embedded ahead per session (older ones are dropped)
# How long the turn decision waits for a speculative text's embedding (fits_nobody): it was
# started when the text was decoded, and takes ~10-40 ms on the shared cores.
PREPARED_WAIT_S = 0.1


def _log_prepare_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("routing ahead of the turn failed: %s (the turn embeds its text itself)", task.exception())


BYE_WAIT = 1.0  # seconds close() waits for agents to take their bye


_PLAIN_FEATURES = frozenset({"text", "ssml", "audio"})


@dataclass(frozen=True)
class AgentReply:
    agent_name: str
    speaker_uri: str
    text: str
    ssml: str | None = None
    audio_urls: tuple[str, ...] = ()
    envelope_sent: float = 0.0  # time.monotonic() when the POST that produced it started
    reply_received: float = 0.0  # time.monotonic() when its answer had been read
    private_to: str | None = None
    from_convener: bool = False
    event_id: str = ""  # the utterance's dialog event id
    previous_id: str | None = None  # set on a streamed follow-up: the id of the sentence before
    # The dialog event's features other than text/ssml/audio (extensions such as convener's
    # x-convener-action, docs/actions.md); empty for most replies.
    features: dict[str, Feature] = field(default_factory=dict)


class Turn:
    """The replies of one caller turn: ``async for reply in turn`` or ``await turn``.

    The turn runs in its own task from the moment ``user_turn`` is called (inside a running
    event loop), so it is processed in order even if nobody reads it, and a reader that stops
    early (the caller barged in) does not hold up the next turn. ``await turn.finished()``
    waits until every agent answer of the turn has been applied to the floor.
    """

    _END = object()

    def __init__(self, agen: AsyncIterator[AgentReply]) -> None:
        self._agen = agen
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for reply in self._agen:
                self._queue.put_nowait(reply)
        except Exception as e:  # handed to the reader
            self._error = e
            log.exception("turn failed")
        finally:
            self._queue.put_nowait(self._END)

    def __aiter__(self) -> Turn:
        self._start()
        return self

    async def __anext__(self) -> AgentReply:
        self._start()
        item = await self._queue.get()
        if item is self._END:
            self._queue.put_nowait(self._END)  # stay exhausted
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def finished(self) -> None:
        self._start()
        assert self._task is not None
        await asyncio.shield(self._task)

    async def _collect(self) -> list[AgentReply]:
        return [r async for r in self]

    def __await__(self) -> Generator[Any, None, list[AgentReply]]:
        return self._collect().__await__()


@dataclass
class _Timing:
    sent: float
    received: float


class FloorSession:
    def __init__(
        self,
        settings: OfpSettings,
        *,
        directory: AgentDirectory | None = None,
        http: aiohttp.ClientSession | None = None,
        conversation_id: str | None = None,
        tracer: Tracer | None = None,
        client: AgentClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        llm: LlmSettings | None = None,
        llm_convener: LlmConvener | None = None,
        inbound_keys: InboundKeys | None = None,
    ) -> None:
        self.settings = settings
        self.conversation_id = conversation_id or f"conv:{uuid.uuid4()}"
        self.me = convener_identification(settings)
        # Each agent is told to post back to a URL of its own (convener.ofp.inbound_guard).
        self.inbound_keys = inbound_keys or shared_keys(settings.inbound_secret_env)
        self.directory = directory or AgentDirectory(settings)
        self.floor = FloorManager(self.conversation_id, self.me, resolve=self.directory.resolve)
        self.policy = ConvenerPolicy(settings, self.me, self.directory.manifests)
        self.clock = clock
        self._tracer = tracer
        self._http = http
        self._own_http = http is None
        self._client: AgentClient | None = client  # injected: tests and benchmarks
        self._humans: dict[str, Identification] = {}
        self._caller: str | None = None
        self._external: AgentEntry | None = None
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        # Requests embedded ahead of their turn (speculative transcripts): text -> task.
        self._prepared: dict[str, asyncio.Task[None]] = {}
        self._unsolicited: asyncio.Queue[AgentReply] = asyncio.Queue()
        self.streams = ReplyStreams()  # agents' streamed replies (follow-ups with previousId)
        # [ofp] convener = "llm": the model's decisions, asked ahead of the turn by text.
        self.llm_convener = llm_convener
        if self.llm_convener is None and settings.convener == "llm":
            self.llm_convener = LlmConvener(llm or LlmSettings())
        self._advice: dict[str, asyncio.Task[str | None]] = {}
        self._started = False
        self._closed = False
        self._validate = settings.validate_outbound and validator_available()
        if settings.validate_outbound and not self._validate:
            log.warning("jsonschema is not installed: outgoing envelopes are not validated")

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> FloorSession:
        return cls(config.ofp, llm=config.llm, **kwargs)

    async def __aenter__(self) -> FloorSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- life cycle --------------------------------------------------------------------------

    @property
    def caller_uri(self) -> str | None:
        """The speakerUri of the caller created by ``start``."""
        return self._caller

    @property
    def external_convener(self) -> str | None:
        return self._external.speaker_uri if self._external else None

    async def start(self, *, caller_name: str | None = None, caller_id: str | None = None) -> None:
        """Fetch manifests (unless the directory has them), set up the floor and the caller."""
        if self._started:
            return
        await self._prepare_start()
        self._caller = self.add_human(name=caller_name, caller_id=caller_id)
        if self.settings.convener_agent:
            await self._invite_external_convener()
        if self._external is None:
            self.floor.join(self.me)
            self.floor.assign_convener(self.me.speaker_uri)

    async def resume(self, state: FloorState) -> None:
        """Instead of ``start``: carry on a stored conversation (``convener.ofp.floor_state``)
        after a restart. Nothing is sent to the agents: they kept their own state under the same
        conversation id, and the next utterance reaches the agent that holds the floor."""
        if self._started:
            return
        if state.conversation_id != self.conversation_id:
            raise ValueError("resume: construct the session with the stored conversation_id")
        await self._prepare_start()
        by_uri = {c.speaker_uri: c for c in state.conversants}
        for uri in state.humans:
            ident = by_uri.get(uri) or human_identification(self.settings)
            self.add_human(name=ident.conversational_name or None, speaker_uri=uri)
        self._caller = state.caller_uri if state.caller_uri in self._humans else next(iter(self._humans), None)
        if self._caller is None:
            self._caller = self.add_human()
        # Agents come back only if they are still configured (the directory knows them).
        agents = [c for c in state.conversants if c.speaker_uri not in self._humans
                  and c.speaker_uri != self.me.speaker_uri and self.directory.by_uri(c.speaker_uri) is not None]
        external = self.directory.by_name(self.settings.convener_agent) if self.settings.convener_agent else None
        if external is not None and state.convener == external.speaker_uri and external.speaker_uri in by_uri:
            self._external = external
        else:
            self.floor.join(self.me, floor=self.me.speaker_uri in state.floor_granted)
        self.floor.restore(agents, state.floor_granted, state.convener if self._external else self.me.speaker_uri)
        if self._external is None:
            self.floor.assign_convener(self.me.speaker_uri)
        self.policy.history.extend(state.history)

    def floor_state(self, room: str = "") -> FloorState:
        """What this conversation holds now, to be stored (``convener.ofp.floor_state``)."""
        return FloorState(
            conversation_id=self.conversation_id,
            room=room,
            conversants=[c for c in self.floor.conversants if c.speaker_uri != self.me.speaker_uri],
            floor_granted=self.floor.floor_granted,
            convener=self.floor.convener,
            caller_uri=self._caller,
            humans=list(self._humans),
            history=list(self.policy.history),
        )

    async def _prepare_start(self) -> None:
        self._started = True
        if self._client is None:
            if self._http is None:
                self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                    ssl=ssl_context(self.settings.verify_tls, self.settings.ca_file)))
            self._client = AgentClient(self._http, max_bytes=self.settings.max_response_bytes, clock=self.clock)
        else:
            self._own_http = False
        if not self.directory.loaded:
            await self.directory.refresh(self._client)
        set_model_threads(self.settings.routing_threads)
        self.policy.router = await shared_router(self.settings.routing, self.settings.match_threshold)
        await self.policy.router.index_manifests(self.directory.manifests())

    async def _invite_external_convener(self) -> None:
        entry = self.directory.by_name(self.settings.convener_agent)
        ident = entry.identification if entry else None
        if entry is None or ident is None:
            log.warning("convener agent %r has no manifest; using the built-in convener", self.settings.convener_agent)
            return
        deliveries = self.floor.emit([invite(To.of(ident))])
        async for _ in self._rounds(deque(deliveries), None):
            pass
        if self.floor.is_conversant(ident.speaker_uri):
            self.floor.assign_convener(ident.speaker_uri)
            self._external = entry
            log.info("convener agent %s joined as convener", entry.name)
        else:
            log.warning("convener agent %s did not join; using the built-in convener", entry.name)

    def add_human(
        self, *, name: str | None = None, caller_id: str | None = None, speaker_uri: str | None = None
    ) -> str:
        """Add a person to the room; returns the speakerUri to use for their turns."""
        ident = human_identification(self.settings, name=name, caller_id=caller_id)
        if speaker_uri:
            ident.speaker_uri = speaker_uri
        self._humans[ident.speaker_uri] = ident
        self.policy.humans.add(ident.speaker_uri)
        self.floor.join(ident)
        return ident.speaker_uri

    async def close(self) -> None:
        """Say ``bye`` to every agent, wait briefly for pending sends, release the HTTP session."""
        if self._closed:
            return
        self._closed = True
        for t in [*self._prepared.values(), *self._advice.values()]:
            t.cancel()
        self._prepared.clear()
        self._advice.clear()
        if self._started:
            async with self._lock:
                deliveries = self.floor.emit([bye(reason="the call ended")])
                byes = [
                    asyncio.create_task(self._post(d.recipient, [d.envelope]))
                    for d in deliveries
                    if self._remote(d.recipient)
                ]
                if byes:  # a hang-up does not wait for dead agents
                    _done, late = await asyncio.wait(byes, timeout=BYE_WAIT)
                    for t in late:
                        t.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=2.0)
            for t in list(self._background):
                t.cancel()
        if self._own_http and self._http is not None:
            await self._http.close()
        if self.llm_convener is not None:
            await self.llm_convener.close()

    # --- turns -------------------------------------------------------------------------------

    def user_turn(
        self, text: str, *, speaker_uri: str | None = None, speaker_name: str | None = None
    ) -> Turn:
        """Send what a caller said; iterate (or await) the replies."""
        return Turn(self._turn(text, speaker_uri, speaker_name))

    def barge_in(self, heard_text: str, *, speaker_uri: str | None = None) -> None:
        """The caller interrupted: only ``heard_text`` of the last agent reply was heard.

        Best effort: the floor's dialog history (handed to agents invited later) is corrected.
        """
        if not self.policy.amend_last(speaker_uri, heard_text):
            log.debug("barge_in: no agent utterance to amend")

    def stop_streams(self, unheard: list[str] | tuple[str, ...] = ()) -> None:
        """Barge-in: what agents still stream of their last replies is not spoken; the sentences
        with ids in ``unheard`` (queued, never played) leave the dialog history."""
        if self.streams.cut():
            log.debug("streamed replies cut")
        if unheard:
            self.policy.forget(set(unheard))

    def streaming(self, reply: AgentReply) -> bool:
        """Whether a streamed follow-up still belongs to its agent's current reply."""
        return reply.previous_id is None or self.streams.current(reply.speaker_uri, reply.event_id)

    def prepare(self, text: str) -> None:
        """Embed a likely request before its turn ends (the speculative transcript).

        Routing's model time (~40 ms on the shared cores) then overlaps the end-of-turn wait
        instead of following it: the turn with the same text finds the vectors ready. Nothing is
        sent and the floor does not change; a text the turn does not use costs CPU only."""
        if self._closed or not text.strip() or text in self._prepared:
            return
        while len(self._prepared) >= PREPARED_MAX:
            self._prepared.pop(next(iter(self._prepared))).cancel()
        task = asyncio.create_task(self.policy.router.prepare(text, self.directory.manifests()))
        task.add_done_callback(_log_prepare_failure)
        self._prepared[text] = task
        self._ask_llm(text)

    async def fits_nobody(self, text: str, wait_s: float = PREPARED_WAIT_S) -> bool:
        """Whether ``text`` as the caller's turn now would get "none of our agents can help"
        (``ConvenerPolicy.fits_nobody``), for the turn decision: such words do not end a turn at
        the first look. Waits up to ``wait_s`` for the text's embedding started by ``prepare``;
        a text not embedded by then, an external or LLM convener (they route otherwise), or a
        closed session: False, so the turn is never delayed on a guess."""
        if self._closed or self._external is not None or self.llm_convener is not None or not text.strip():
            return False
        task = self._prepared.get(text)
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(task), wait_s)
        if not self.policy.router.ready(text, self.directory.manifests()):
            return False
        return self.policy.fits_nobody(text, self.floor)

    def _ask_llm(self, text: str) -> asyncio.Task[str | None] | None:
        """Start the LLM convener's decision for ``text`` (once per text; None: not in use)."""
        if self.llm_convener is None or self._external is not None:
            return None
        task = self._advice.get(text)
        if task is None:
            while len(self._advice) >= PREPARED_MAX:
                self._advice.pop(next(iter(self._advice))).cancel()
            focal = self.policy._agents_with_floor(self.floor)
            task = asyncio.create_task(self.llm_convener.ask(
                text, self.directory.manifests(), self.policy.recent_history(), self._names(), focal))
            self._advice[text] = task
        return task

    def _names(self) -> dict[str, str]:
        """Who is who in the dialog the LLM convener reads."""
        names = {u: "Caller" for u in self._humans}
        for m in self.directory.manifests():
            ident = m.identification
            names[ident.speaker_uri] = ident.conversational_name or ident.speaker_uri
        names[self.me.speaker_uri] = self.me.conversational_name
        return names

    async def _turn(
        self, text: str, speaker_uri: str | None, speaker_name: str | None
    ) -> AsyncIterator[AgentReply]:
        if not self._started:
            raise RuntimeError("FloorSession.start() was not awaited")
        if self._closed:
            raise RuntimeError("the FloorSession is closed")
        if self.directory.stale() and self._client is not None:
            task = asyncio.create_task(self.directory.refresh(self._client))  # agents that came up late
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        async with self._lock:
            uri = speaker_uri or self._caller
            assert uri is not None
            if uri not in self._humans:
                self.add_human(name=speaker_name, speaker_uri=uri)
            self.streams.cut()  # the caller spoke again: the rest of earlier answers is stale
            ahead = self._prepared.pop(text, None)
            if ahead is not None:  # embedded while the turn was ending: wait for it, not again
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(ahead)
            for t in self._prepared.values():
                t.cancel()  # texts of this turn's earlier guesses
            self._prepared.clear()
            advice = self._ask_llm(text)  # asked while the turn ended, or now: at most the budget
            await self.policy.router.prepare(text, self.directory.manifests())  # embeddings, off the loop
            if advice is not None:
                self._advice.pop(text, None)
                for t in self._advice.values():
                    t.cancel()
                self._advice.clear()
                try:
                    raw = await advice
                except Exception:  # never the call: the router decides
                    log.exception("LLM convener failed; the router decides")
                    raw = None
                if raw is not None:
                    self.policy.advice = {text: raw}
            env = Envelope(
                self.floor.conversation(), uri, [utterance(text_event(uri, text))], self.me.service_url
            )
            pending = deque(await self._floor_receive(env))
            async for reply in self._rounds(pending, None):
                yield reply

    async def receive(self, envelope: Envelope) -> None:
        """An envelope an agent POSTed to our endpoint; caller replies go to ``unsolicited()``."""
        async with self._lock:
            envelope.events = [ev for ev in envelope.events if self._continues(envelope.sender_uri, ev)]
            if not envelope.events:
                return
            pending = deque(await self._floor_receive(envelope))
            async for reply in self._rounds(pending, None):
                await self._unsolicited.put(reply)

    def _continues(self, sender: str, ev: Event) -> bool:
        """A streamed follow-up (an utterance with previousId) is taken only while its agent's
        stream is open: after a barge-in or the caller's next turn it is dropped, unheard."""
        de = ev.dialog_event
        if ev.event_type != "utterance" or de is None or de.previous_id is None:
            return True
        if self.streams.accepts(sender, de.previous_id):
            return True
        self.streams.dropped += 1
        log.info("follow-up of %s dropped: its reply was cut or is not the current one", sender)
        return False

    def tell_agent(self, agent_uri: str, text: str, features: dict[str, Feature] | None = None) -> None:
        """A private utterance from convener to one agent (an action's result, docs/actions.md).

        Sent in the background, in order with the turns (it waits for the session's lock); what
        the agent answers is spoken like any unsolicited reply."""
        if self._closed or not self.floor.is_conversant(agent_uri):
            log.info("not telling %s %r: not in the conversation", agent_uri, text)
            return
        de = text_event(self.me.speaker_uri, text)
        de.features.update(features or {})
        event = utterance(de, to=To(agent_uri, private=True))

        async def send() -> None:
            async with self._lock:
                pending = deque(self._emit([event]))
                async for reply in self._rounds(pending, None):
                    await self._unsolicited.put(reply)

        task = asyncio.create_task(send())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def unsolicited(self) -> AsyncIterator[AgentReply]:
        """Replies for the callers caused by envelopes POSTed to our endpoint, as they come."""
        while True:
            yield await self._unsolicited.get()

    # --- the engine --------------------------------------------------------------------------

    def _remote(self, uri: str) -> bool:
        return uri not in self._humans and uri != self.me.speaker_uri

    async def _floor_receive(self, env: Envelope) -> list[Delivery]:
        run = self.floor.receive(env)
        while run.pending is not None:
            d = run.pending
            events: list[Event] | None = None
            if self._external is not None and d.convener == self._external.speaker_uri:
                results = await self._post(d.convener, [d.envelope])
                if results and results[-1].envelope is not None:
                    events = results[-1].envelope.events
                else:
                    log.warning("convener agent failed; built-in convener decides this %s", d.event.event_type)
            if events is None:
                events = self.policy.on_delegation(d, self.floor)
            run.resume(events)
        return run.deliveries

    async def _rounds(
        self, pending: deque[Delivery], timing: _Timing | None
    ) -> AsyncIterator[AgentReply]:
        remote: list[Delivery] = []
        async for r in self._drain_local(pending, remote, timing):
            yield r
        for round_no in range(self.settings.max_rounds):
            if not remote:
                return
            by_agent: dict[str, list[Envelope]] = {}
            for d in remote:
                by_agent.setdefault(d.recipient, []).append(d.envelope)
            remote = []
            tasks = {
                uri: asyncio.create_task(self._post(uri, envs)) for uri, envs in by_agent.items()
            }
            for uri in sorted(tasks, key=self.directory.order):
                for res in await tasks[uri]:
                    t = _Timing(res.sent_at, res.received_at)
                    if res.fault is not None:
                        events = self.policy.on_fault(uri, res.fault.token, str(res.fault), self.floor)
                        pending.extend(self._emit(events))
                    elif res.envelope is not None:
                        self.policy.on_success(uri)
                        pending.extend(await self._floor_receive(res.envelope))
                    async for r in self._drain_local(pending, remote, t):
                        yield r
            if round_no == self.settings.max_rounds - 1 and remote:
                log.info("max_rounds reached; %d deliveries sent without waiting", len(remote))
                self._send_in_background(remote)

    def _emit(self, events: list[Event]) -> list[Delivery]:
        if not events:
            return []
        env = Envelope(self.floor.conversation(), self.me.speaker_uri, events, self.me.service_url)
        run = self.floor.receive(env)  # events of the floor itself are never delegated
        assert run.done
        return run.deliveries

    async def _drain_local(
        self, pending: deque[Delivery], remote: list[Delivery], timing: _Timing | None
    ) -> AsyncIterator[AgentReply]:
        seen: set[int] = set()
        while pending:
            d = pending.popleft()
            if d.recipient in self._humans:
                for reply in self._replies(d, timing, seen):
                    yield reply
            elif d.recipient == self.me.speaker_uri:
                events = self.policy.on_envelope(d.envelope, self.floor)
                if events:
                    env = Envelope(self.floor.conversation(), self.me.speaker_uri, events, self.me.service_url)
                    pending.extend(await self._floor_receive(env))
            elif not self.floor.is_conversant(d.recipient):
                self._send_in_background([d])  # e.g. the uninvite of an agent that just left
            else:
                remote.append(d)

    def _replies(self, d: Delivery, timing: _Timing | None, seen: set[int]) -> list[AgentReply]:
        sender = d.envelope.sender_uri
        if sender in self._humans:
            return []  # people in the room heard each other
        out: list[AgentReply] = []
        for ev in d.envelope.events:
            de = ev.dialog_event
            if ev.event_type != "utterance" or de is None or id(ev) in seen:
                continue
            seen.add(id(ev))
            if sender != self.me.speaker_uri and self._remote(sender):
                if de.previous_id is None:
                    self.streams.head(sender, de.id)
                elif not self.streams.follow(sender, de.previous_id, de.id):
                    continue  # the stream was cut while the envelope went through the floor
            now = self.clock()
            t = timing or _Timing(now, now)
            ident = self.floor.identification(sender)
            entry = self.directory.by_uri(sender)
            name = ident.conversational_name if ident else (entry.name if entry else "")
            if sender == self.me.speaker_uri:
                name = self.me.conversational_name
            out.append(
                AgentReply(
                    agent_name=name or sender,
                    speaker_uri=sender,
                    text=de.text,
                    ssml=de.ssml,
                    audio_urls=de.audio_urls,
                    envelope_sent=t.sent,
                    reply_received=t.received,
                    private_to=d.recipient if ev.private else None,
                    from_convener=sender == self.me.speaker_uri,
                    event_id=de.id,
                    previous_id=de.previous_id,
                    features={k: f for k, f in de.features.items() if k not in _PLAIN_FEATURES},
                )
            )
        return out

    def _send_in_background(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            task = asyncio.create_task(self._post(d.recipient, [d.envelope]))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _encode(self, recipient: str, env: Envelope) -> bytes | None:
        doc = env.to_dict()
        sender = doc["openFloor"]["sender"]
        if sender.get("serviceUrl") == self.me.service_url and self._remote(recipient):
            sender["serviceUrl"] = self.inbound_keys.url_for(self.me.service_url, self.conversation_id, recipient)
        if self._tracer is not None:
            self._tracer(recipient, doc)  # before the check, so that tests see what was refused
        if self._validate:
            problems = validate_envelope(doc)
            if problems:
                log.error("not sending an invalid envelope to %s: %s", recipient, InvalidEnvelope(problems))
                return None
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    async def _post(self, uri: str, envelopes: list[Envelope]) -> list[PostResult]:
        """POST envelopes to one agent in order; stop at its first fault."""
        entry = self.directory.by_uri(uri)
        if entry is None or self._client is None:
            log.warning("no route to %s; %d envelope(s) not sent", uri, len(envelopes))
            return []
        results: list[PostResult] = []
        for env in envelopes:
            payload = self._encode(uri, env)
            if payload is None:
                continue
            res = await self._client.post(
                entry.url, payload, timeout=entry.timeout,
                conversation_id=self.conversation_id, expect_sender=uri,
            )
            entry.record(res)
            results.append(res)
            if res.fault is not None:
                break
        return results
