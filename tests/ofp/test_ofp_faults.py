"""Misbehaving agents on real local HTTP servers: the conversation goes on, the agent is handled
per policy (uninvited with the right reason token) and the log says why."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from ofp_helpers import settings_for

from convener.ofp.envelope import Conversation, Envelope, publish_manifests
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.parse import parse_envelope
from convener.ofp.session import FloorSession
from convener_agents.serve import RunningAgents

TIMEOUT = 0.5


class FakeAgent:
    """Answers getManifests properly (so it gets invited), then misbehaves as told."""

    def __init__(self, mode: str, name: str = "Flights", keyphrases: tuple[str, ...] = ("flight",)) -> None:
        self.mode = mode
        self.name = name
        self.keyphrases = keyphrases
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self.runner: web.AppRunner | None = None
        self.stopping = asyncio.Event()

    @property
    def uri(self) -> str:
        return f"tag:fake.invalid,2026:{self.name.lower()}"

    def manifest(self) -> Manifest:
        return Manifest(Identification(self.uri, self.url, "fake", self.name, "A misbehaving agent."),
                        [Capability(list(self.keyphrases), ["books flights badly"])])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        doc = json.loads(await request.read())
        self.received.append(doc)
        env = parse_envelope(doc)
        if any(e.event_type == "getManifests" for e in env.events):
            out = Envelope(Conversation(env.conversation.id), self.uri, [publish_manifests([self.manifest()])])
            return web.json_response(out.to_dict())
        mode = self.mode
        if mode == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 30)
        if mode == "http500":
            return web.Response(status=500, text="boom")
        if mode == "invalid_json":
            return web.Response(text='{"openFloor": {', content_type="application/json")
        if mode == "not_envelope":
            return web.json_response({"hello": "world"})
        if mode == "huge":
            return web.Response(body=b" " * (10 * 1024 * 1024), content_type="application/json")
        if mode in ("huge_chunked", "drip"):
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk, pause = (b" " * 65536, 0.0) if mode == "huge_chunked" else (b" ", 0.05)
            for _ in range(10 * 1024 * 1024 // len(chunk) + 1 if mode == "huge_chunked" else 400):
                await resp.write(chunk)
                await asyncio.sleep(pause)
            return resp
        if mode == "other_conversation":
            out = Envelope(Conversation("conv:someone-else"), self.uri, [])
            return web.json_response(out.to_dict())
        if mode == "slow":
            await asyncio.sleep(0.3)
        return web.json_response(Envelope(Conversation(env.conversation.id), self.uri, []).to_dict())

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/ofp", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/ofp"

    async def stop(self) -> None:
        self.stopping.set()
        if self.runner:
            await self.runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[Any]:
    agents: list[FakeAgent] = []

    async def make(mode: str, **kw: Any) -> FakeAgent:
        a = FakeAgent(mode, **kw)
        await a.start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        await a.stop()


CASES = [
    ("timeout", "@timedOut", "timeout", "not answering"),
    ("drip", "@timedOut", "timeout", "not answering"),
    ("http500", "@error", "HTTP 500", "having a problem"),
    ("invalid_json", "@brokenPolicy", "invalid_json", "having a problem"),
    ("not_envelope", "@brokenPolicy", "not_envelope", "having a problem"),
    ("huge", "@brokenPolicy", "too_large", "having a problem"),
    ("huge_chunked", "@brokenPolicy", "too_large", "having a problem"),
    ("other_conversation", "@brokenPolicy", "wrong_conversation", "having a problem"),
]


@pytest.mark.parametrize("mode, token, logged, spoken", CASES, ids=[c[0] for c in CASES])
async def test_faulty_agent_is_uninvited_and_the_conversation_goes_on(
    mode: str, token: str, logged: str, spoken: str, fake: Any, example_agents: RunningAgents,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = await fake(mode)
    settings = settings_for({"flights": bad.url, "weather": example_agents.urls["weather"]}, timeout=TIMEOUT)
    caplog.set_level(logging.INFO, logger="convener.ofp")
    s = FloorSession(settings)
    await s.start()
    try:
        t0 = time.monotonic()
        replies = await s.user_turn("Book a flight to Denver")
        elapsed = time.monotonic() - t0
        assert elapsed < TIMEOUT + 1.0, elapsed
        assert [r.text for r in replies] == ["Connecting you to Flights.", f"Sorry, Flights is {spoken} right now."]
        assert not s.floor.is_conversant(bad.uri)
        assert logged in caplog.text and "uninviting Flights" in caplog.text
        entry = s.directory.by_name("flights")
        assert entry is not None and entry.health.state == "down" and entry.health.last_error
        # The conversation goes on with a healthy agent.
        replies = await s.user_turn("What's the weather in Denver?")
        assert replies[-1].text == "In Denver today: sunny, 12 degrees Celsius."
        # The faulty agent is not invited again right away (no second timeout for the caller).
        t0 = time.monotonic()
        replies = await s.user_turn("let me talk to the flights agent")
        assert time.monotonic() - t0 < TIMEOUT and not s.floor.is_conversant(bad.uri)
    finally:
        await s.close()
    uninvites = [e for d in bad.received for e in d["openFloor"]["events"] if e["eventType"] == "uninvite"]
    assert uninvites and uninvites[0]["reason"].startswith(token)


async def test_parallel_delivery_does_not_wait_for_each_agent_in_turn(fake: Any) -> None:
    a = await fake("slow", name="Flights", keyphrases=("flight",))
    b = await fake("slow", name="Weather", keyphrases=("weather",))
    s = FloorSession(settings_for({"flights": a.url, "weather": b.url}, timeout=2.0, announce_handover=False))
    await s.start()
    try:
        await s.user_turn("Book a flight")  # invite Flights (0.3 s)
        await s.user_turn("let me talk to the weather agent")  # Flights hears it, Weather is invited
        assert s.floor.is_conversant(a.uri) and s.floor.is_conversant(b.uri)
        t0 = time.monotonic()
        await s.user_turn("hello both")  # both are POSTed the utterance, 0.3 s each
        elapsed = time.monotonic() - t0
    finally:
        await s.close()
    assert elapsed < 0.55, elapsed


async def test_unreachable_agent_costs_no_time_and_the_caller_is_told() -> None:
    s = FloorSession(settings_for({"flights": "http://127.0.0.1:9/ofp"}, timeout=TIMEOUT))
    await s.start()
    try:
        replies = await s.user_turn("Book a flight to Denver")
    finally:
        await s.close()
    assert len(replies) == 1 and replies[0].from_convener and "none of our agents" in replies[0].text
