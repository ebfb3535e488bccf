"""The built-in convener can be replaced by an external OFP convener agent named in config."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from ofp_helpers import settings_for

from convener.ofp import envelope as E
from convener.ofp.envelope import Conversation, Envelope, Event, To
from convener.ofp.manifest import Capability, Identification, Manifest
from convener.ofp.parse import parse_envelope
from convener.ofp.session import FloorSession
from convener_agents.serve import RunningAgents

BOSS = "tag:boss.invalid,2026:convener"


class Boss:
    """A tiny external convener: invites Weather when a caller mentions the weather."""

    def __init__(self, weather: Identification) -> None:
        self.weather = weather
        self.url = ""
        self.seen: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        self.seen.append(doc)
        env = parse_envelope(doc)
        humans = {c.speaker_uri for c in env.conversation.conversants if c.role == "User"}
        out: list[Event] = []
        for ev in env.events:
            if ev.event_type == "getManifests":
                ident = Identification(BOSS, self.url, "boss", "Boss", "Chairs the meeting.",
                                       open_floor_roles={"convener": True})
                out.append(E.publish_manifests([Manifest(ident, [Capability(["chair"], ["convenes"])])]))
            elif ev.event_type == "invite":
                out.append(E.accept_invite())
            elif ev.event_type == "utterance" and env.sender_uri in humans:
                de = ev.dialog_event
                if de is not None and "weather" in de.text.lower():
                    out.append(E.invite(To.of(self.weather)))
            elif ev.event_type == "requestFloor":
                out.append(E.grant_floor(To(env.sender_uri)))  # granted
            elif ev.event_type in ("grantFloor", "revokeFloor", "uninvite"):
                out.append(ev)  # approved as asked
        reply = Envelope(Conversation(env.conversation.id), BOSS, out)
        return web.json_response(reply.to_dict())


@pytest.fixture
async def boss(example_agents: RunningAgents) -> AsyncIterator[Boss]:
    b = Boss(example_agents.agents["weather"].manifest.identification)
    app = web.Application()
    app.router.add_post("/ofp", b.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    b.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ofp"  # type: ignore[union-attr]
    yield b
    await runner.cleanup()


async def test_external_convener_decides(boss: Boss, example_agents: RunningAgents) -> None:
    urls = {"boss": boss.url, **example_agents.urls}
    async with FloorSession(settings_for(urls, convener_agent="boss")) as s:
        assert s.external_convener == BOSS and s.floor.convener == BOSS
        assert not s.floor.is_conversant(s.me.speaker_uri)
        replies = await s.user_turn("How is the weather in Denver?")
        # Boss sends a bare invite (no dialogHistory): Weather greets.
        assert [(r.agent_name, r.text) for r in replies] == [("Weather", "Hi, this is Weather. Which city?")]
        replies = await s.user_turn("Denver")
        assert [(r.agent_name, r.text) for r in replies] == [("Weather", "In Denver today: sunny, 12 degrees Celsius.")]
        # Delegation: a requestFloor from Weather goes to Boss, whose answer is applied.
        weather = example_agents.agents["weather"].speaker_uri
        s.floor.process(Envelope(s.floor.conversation(), weather, [E.yield_floor()]))
        await s.receive(Envelope(s.floor.conversation(), weather, [E.request_floor()]))
        assert s.floor.has_floor(weather)
    delegated = [d for d in boss.seen if d["openFloor"]["sender"]["speakerUri"] == weather]
    assert any(e["eventType"] == "requestFloor" for d in delegated for e in d["openFloor"]["events"])
    assert all(d["openFloor"]["conversation"]["assignedFloorRoles"] == {"convener": [BOSS]}
               for d in boss.seen if "assignedFloorRoles" in d["openFloor"]["conversation"])


async def test_unreachable_convener_agent_falls_back_to_the_built_in(example_agents: RunningAgents) -> None:
    urls = {"boss": "http://127.0.0.1:9/ofp", **example_agents.urls}
    async with FloorSession(settings_for(urls, convener_agent="boss")) as s:
        assert s.external_convener is None and s.floor.convener == s.me.speaker_uri
        replies = await s.user_turn("Book a flight to Denver")
        assert replies[-1].agent_name == "Flights"


class Chatty:
    """Joins when invited and answers every caller utterance with its name, after ``delay``."""

    def __init__(self, name: str, delay: float) -> None:
        self.name, self.delay, self.url = name, delay, ""

    @property
    def uri(self) -> str:
        return f"tag:chatty.invalid,2026:{self.name}"

    async def handle(self, request: web.Request) -> web.Response:
        import asyncio

        env = parse_envelope(await request.read())
        humans = {c.speaker_uri for c in env.conversation.conversants if c.role == "User"}
        out: list[Event] = []
        for ev in env.events:
            if ev.event_type == "getManifests":
                ident = Identification(self.uri, self.url, "chatty", self.name, "Talks.")
                out.append(E.publish_manifests([Manifest(ident, [Capability(["chat"], ["talks"])])]))
            elif ev.event_type == "invite":
                out.append(E.accept_invite())
            elif ev.event_type == "utterance" and env.sender_uri in humans:
                await asyncio.sleep(self.delay)
                from convener.ofp.dialog import text_event

                out.append(E.utterance(text_event(self.uri, f"{self.name} here")))
        return web.json_response(Envelope(Conversation(env.conversation.id), self.uri, out).to_dict())


class Chair(Boss):
    """Invites every chatty agent at once."""

    def __init__(self, agents: list[Chatty]) -> None:
        self.agents, self.url, self.seen = agents, "", []

    async def handle(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        env = parse_envelope(doc)
        if any(e.event_type == "utterance" for e in env.events) and len(env.conversation.conversants) == 2:
            out = [E.invite(To(a.uri, a.url)) for a in self.agents]
            return web.json_response(Envelope(Conversation(env.conversation.id), BOSS, out).to_dict())
        return await super().handle(request)


async def _serve(handler: Any) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/ofp", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ofp"  # type: ignore[union-attr]


async def test_replies_are_applied_in_config_order_not_arrival_order() -> None:
    slow, fast = Chatty("slow", 0.3), Chatty("fast", 0.0)
    chair = Chair([slow, fast])
    runners = []
    for a in (slow, fast, chair):
        runner, a.url = await _serve(a.handle)
        runners.append(runner)
    try:
        for order in (["slow", "fast"], ["fast", "slow"]):
            urls = {"chair": chair.url, **{n: {"slow": slow, "fast": fast}[n].url for n in order}}
            async with FloorSession(settings_for(urls, convener_agent="chair")) as s:
                await s.user_turn("hello everyone")  # the chair invites both
                replies = await s.user_turn("how are you?")
                assert [r.text for r in replies] == [f"{n} here" for n in order]
    finally:
        for r in runners:
            await r.cleanup()


async def test_with_an_external_convener_the_floor_still_uninvites_faulty_agents() -> None:
    from test_ofp_faults import FakeAgent

    bad = FakeAgent("http500", name="Weather", keyphrases=("weather",))
    await bad.start()
    boss = Boss(Identification(bad.uri, bad.url, "fake", "Weather", "Fails."))
    runner, boss.url = await _serve(boss.handle)
    try:
        async with FloorSession(settings_for({"boss": boss.url, "weather": bad.url}, convener_agent="boss")) as s:
            replies = await s.user_turn("How is the weather?")
            assert [r.text for r in replies] == ["Sorry, Weather is having a problem right now."]
            assert replies[0].from_convener and not s.floor.is_conversant(bad.uri)
            assert s.floor.convener == BOSS
    finally:
        await runner.cleanup()
        await bad.stop()
    uninvites = [e for d in bad.received for e in d["openFloor"]["events"] if e["eventType"] == "uninvite"]
    assert uninvites and uninvites[0]["reason"].startswith("@error")
