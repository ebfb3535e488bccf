"""LLM agents defined in a TOML file: real OFP agents whose answers stream from a chat model.

The file (``convener agents serve --llm agents.toml``)::

    [llm]                                  # optional: else [llm] of --config, else the defaults
    base_url = "http://127.0.0.1:11434/v1"
    model = "llama3.2"

    [agents.concierge]
    name = "Concierge"                     # the conversational name callers say
    role = "Hotel concierge"
    synopsis = "Restaurants, sights and opening hours near the hotel."
    keyphrases = ["restaurant", "museum", "opening hours"]
    descriptions = ["Recommends places to eat and things to see in the city."]
    system_prompt = "You are the concierge of the Grand Hotel. Answer in two short sentences."
    greeting = "Hi, this is the concierge. What can I find for you?"
    port = 8711                            # 0 = 8711, 8712, ... in file order

Each agent is a ``SkillAgent`` (manifest, invite / acceptInvite, utterances, grant and revoke of
the floor, bye); the invite's ``dialogHistory`` and the conversation so far become the chat
messages. The answer streams: the POST is answered with the first sentence as soon as the model
has produced it, and each following sentence is POSTed to the convener's endpoint (the
``serviceUrl`` of the envelope's sender) as an utterance whose ``previousId`` is the id of the
sentence before (docs/agents.md). A new utterance of the caller, a revoke of the floor or a
bye stops the rest. When the model is down, slow or answers garbage, the agent says so
(``unavailable``) instead of leaving the caller in silence; when the first sentence is not
ready within ``answer_within`` seconds it says ``hold_on`` and the answer follows.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from convener.llm.client import ChatClient, LlmError
from convener.llm.sentences import Sentences
from convener.llm.settings import LlmSettings
from convener.ofp.dialog import DialogEvent, text_event
from convener.ofp.envelope import Conversation, Envelope, Event, utterance
from convener.settings import ConfigError, load_section, read_toml
from convener_agents.base import ConversationState, Reply, SkillAgent, make_app

log = logging.getLogger(__name__)

FIRST_PORT = 8711
PENDING = "\x00llm-pending\x00"  # placeholder text of a reply the model is still writing
MAX_MESSAGES = 40


@dataclass
class LlmAgentSpec:
    name: str
    system_prompt: str
    role: str = ""
    synopsis: str = ""
    keyphrases: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    greeting: str = ""  # "" = "Hi, this is <name>. How can I help?"
    port: int = 0
    model: str = ""  # "" = [llm] model
    # Seconds the convener's POST waits at most for the first sentence (below its agent timeout).
    answer_within: float = 2.5
    hold_on: str = "One moment please."
    unavailable: str = "Sorry, I can't answer right now. Please try again in a moment."

    def validate(self) -> None:
        if not self.name.strip():
            raise ConfigError("name: must not be empty")
        if not self.system_prompt.strip():
            raise ConfigError("system_prompt: must not be empty")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port: out of range: {self.port}")
        if not 0.2 <= self.answer_within <= 30:
            raise ConfigError(f"answer_within: must be in [0.2, 30] seconds, got {self.answer_within}")


@dataclass
class LlmAgentsFile:
    agents: dict[str, LlmAgentSpec] = field(default_factory=dict)
    llm: LlmSettings | None = None

    def validate(self) -> None:
        if not self.agents:
            raise ConfigError("agents: define at least one [agents.NAME] table")


def load_agents_file(path: str | Path) -> LlmAgentsFile:
    """Read and check the file; ConfigError names the file and the key."""
    p = Path(path)
    data = read_toml(p, "LLM agents file")
    for key, table in (data.get("agents") or {}).items():
        if isinstance(table, dict):
            table.setdefault("name", key.capitalize())
    try:
        return load_section(LlmAgentsFile, data)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None


def history_messages(history: list[DialogEvent], me: str, names: dict[str, str]) -> list[dict[str, str]]:
    """Chat messages from OFP dialog events: ours are the assistant's, the rest the user's
    (other agents' words carry their name, so the model knows who said what)."""
    out: list[dict[str, str]] = []
    for de in history:
        text = de.text.strip()
        if not text:
            continue
        if de.speaker_uri == me:
            out.append({"role": "assistant", "content": text})
        elif de.speaker_uri in names:
            out.append({"role": "user", "content": f"[{names[de.speaker_uri]} said] {text}"})
        else:
            out.append({"role": "user", "content": text})
    return out


class LlmAgent(SkillAgent):
    """One agent of the file. ``respond`` only notes the request; ``answer_async`` lets the model
    write the reply, answers with its first sentence and streams the rest."""

    def __init__(self, spec: LlmAgentSpec, llm: LlmSettings, service_url: str,
                 client: ChatClient | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.role = spec.role
        self.synopsis = spec.synopsis
        self.keyphrases = tuple(spec.keyphrases)
        self.descriptions = tuple(spec.descriptions)
        super().__init__(service_url)
        self.llm = llm
        self.client = client or ChatClient(llm, model=spec.model or None)
        self.messages: dict[str, list[dict[str, str]]] = {}  # conversation id -> chat so far
        self.streams: dict[str, asyncio.Task[None]] = {}  # conversation id -> follow-ups
        self.reply_to: dict[str, str] = {}  # conversation id -> convener's endpoint
        self._cid = ""
        self._asks: list[str] = []  # requests ``respond`` noted during this ``handle``
        self._http: aiohttp.ClientSession | None = None

    def greeting(self) -> str:
        return self.spec.greeting or super().greeting()

    def respond(self, state: ConversationState, text: str) -> Reply:
        self._asks.append(text)
        return Reply(PENDING)

    def handle(self, env: Envelope) -> list[Event]:
        cid = self._cid = env.conversation.id
        humans = self._humans(env)
        for ev in env.events:
            if not self._for_me(ev):
                continue
            et = ev.event_type
            if et == "invite":
                names = {c.speaker_uri: c.conversational_name for c in env.conversation.conversants
                         if c.conversational_name and c.speaker_uri != self.speaker_uri and
                         (c.role or "").lower() != "user"}
                self.messages[cid] = history_messages(ev.dialog_history or [], self.speaker_uri, names)
            spoke = et == "utterance" and ev.dialog_event is not None and (
                self._from_caller(ev.dialog_event, humans) or ev.private)
            if spoke or et in ("invite", "revokeFloor", "uninvite", "bye"):
                self.stop_stream(cid)  # the caller moved on: the rest of the last answer is stale
            if et in ("uninvite", "bye"):
                self.messages.pop(cid, None)
        if env.sender_url:
            self.reply_to[cid] = env.sender_url
        return super().handle(env)

    def stop_stream(self, cid: str) -> None:
        task = self.streams.pop(cid, None)
        if task is not None:
            task.cancel()

    def _chat(self, cid: str, request: str) -> list[dict[str, str]]:
        msgs = self.messages.setdefault(cid, [])
        if not msgs or msgs[-1] != {"role": "user", "content": request}:
            msgs.append({"role": "user", "content": request})
        del msgs[:-MAX_MESSAGES]
        return [{"role": "system", "content": self.spec.system_prompt}, *msgs]

    async def answer_async(self, env: Envelope) -> Envelope:
        self._asks = []
        events = self.handle(env)
        asks, self._asks = self._asks, []
        cid = env.conversation.id
        for ev, request in zip([e for e in events if _pending(e)], asks, strict=False):
            assert ev.dialog_event is not None
            text = await self._first_sentence(cid, request, ev.dialog_event)
            ev.dialog_event = ev.dialog_event.with_text(text)
        return Envelope(Conversation(id=cid), self.speaker_uri, events, self.service_url)

    async def _first_sentence(self, cid: str, request: str, head: DialogEvent) -> str:
        """Start the model; return what to answer the POST with and stream the rest."""
        queue: asyncio.Queue[str | LlmError | None] = asyncio.Queue()
        messages = self._chat(cid, request)
        producer = asyncio.create_task(self._produce(messages, queue))
        try:
            first = await asyncio.wait_for(queue.get(), self.spec.answer_within)
        except TimeoutError:
            first = self.spec.hold_on  # the model is slow: the answer follows as later envelopes
            held = True
        else:
            held = False
        if isinstance(first, LlmError) or first is None:
            producer.cancel()
            if first is not None:
                log.warning("%s: model failed before its first sentence: %s", self.name, first)
            return self.spec.unavailable
        said = [] if held else [first]
        self.stop_stream(cid)
        task = asyncio.create_task(self._follow_up(cid, head, queue, producer, said, held))
        self.streams[cid] = task
        task.add_done_callback(lambda t: self.streams.pop(cid, None) if self.streams.get(cid) is t else None)
        return first

    async def _produce(self, messages: list[dict[str, str]], queue: asyncio.Queue[str | LlmError | None]) -> None:
        cut = Sentences()
        try:
            async for piece in self.client.stream(messages):
                for s in cut.feed(piece):
                    queue.put_nowait(s)
            for s in cut.flush():
                queue.put_nowait(s)
            queue.put_nowait(None)
        except LlmError as e:
            queue.put_nowait(e)

    async def _follow_up(self, cid: str, head: DialogEvent, queue: asyncio.Queue[str | LlmError | None],
                         producer: asyncio.Task[None], said: list[str], held: bool) -> None:
        previous = head.id
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, LlmError):
                    log.warning("%s: model failed mid-answer: %s", self.name, item)
                    if not said:  # only "one moment" was heard: say why nothing follows
                        await self._post(cid, self.spec.unavailable, previous)
                    return
                sent = await self._post(cid, item, previous)
                if sent is None:
                    return  # convener's endpoint is not there: the rest would be lost too
                previous = sent
                said.append(item)
        finally:
            producer.cancel()
            if said:
                self.messages.setdefault(cid, []).append({"role": "assistant", "content": " ".join(said)})

    async def _post(self, cid: str, text: str, previous: str) -> str | None:
        """POST one follow-up sentence to the convener; its dialog event id, or None when it
        could not be delivered."""
        de = text_event(self.speaker_uri, text, previous_id=previous)
        url = self.reply_to.get(cid)
        if not url:
            log.info("%s: no endpoint to stream to in %s; the rest of the answer is dropped", self.name, cid)
            return None
        env = Envelope(Conversation(id=cid), self.speaker_uri, [utterance(de)], self.service_url)
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        try:
            async with self._http.post(url, data=env.to_json(), headers={"Content-Type": "application/json"},
                                       timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status >= 300:
                    log.warning("%s: convener refused a follow-up (%d)", self.name, resp.status)
                    return None
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("%s: follow-up not delivered (%s); the rest of the answer is dropped", self.name, e)
            return None
        return de.id

    async def close(self) -> None:
        for cid in list(self.streams):
            self.stop_stream(cid)
        await self.client.close()
        if self._http is not None:
            await self._http.close()


def _pending(ev: Event) -> bool:
    return ev.event_type == "utterance" and ev.dialog_event is not None and ev.dialog_event.text == PENDING


def make_llm_app(agent: LlmAgent, path: str = "/ofp") -> web.Application:
    """The agent's HTTP service, like ``make_app`` but answering while the model writes."""
    return make_app(agent, path, answer=agent.answer_async, on_cleanup=agent.close)


def agent_ports(specs: dict[str, LlmAgentSpec]) -> dict[str, int]:
    """Each agent's port: its own, or FIRST_PORT + its place in the file."""
    return {key: spec.port or FIRST_PORT + i for i, (key, spec) in enumerate(specs.items())}


def build_agents(file: LlmAgentsFile, llm: LlmSettings | None = None) -> dict[str, tuple[LlmAgent, int]]:
    settings = file.llm or llm or LlmSettings()
    ports = agent_ports(file.agents)
    return {key: (LlmAgent(spec, settings, ""), ports[key]) for key, spec in file.agents.items()}
