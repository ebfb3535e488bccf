"""Who may be contacted: configured agents, agents a configured discovery agent recommends,
and never anything else (no redirects, no self-declared URLs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from ofp_helpers import settings_for

from convener.ofp import envelope as E
from convener.ofp.directory import AgentDirectory
from convener.ofp.envelope import Conversation, Envelope
from convener.ofp.parse import parse_envelope
from convener.ofp.session import FloorSession
from convener.ofp.transport import AgentClient
from convener_agents.serve import RunningAgents

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/ofp", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ofp"  # type: ignore[union-attr]

    yield start
    for r in runners:
        await r.cleanup()


async def test_discovery_agent_recommendations_become_reachable(
    serve: Callable[[Handler], Awaitable[str]], example_agents: RunningAgents
) -> None:
    weather = example_agents.agents["weather"].manifest
    asked: list[str | None] = []

    async def finder(request: web.Request) -> web.Response:
        env = parse_envelope(await request.read())
        scope = env.events[0].recommend_scope
        asked.append(scope)
        servicing = [weather] if scope == "external" else []
        out = Envelope(Conversation(env.conversation.id), "tag:finder.invalid,2026:f",
                       [E.publish_manifests(servicing)])
        if scope != "external":  # its own manifest
            from convener.ofp.manifest import Capability, Identification, Manifest
            me = Manifest(Identification("tag:finder.invalid,2026:f", str(request.url), "f", "Finder", "Finds agents"),
                          [Capability(["find"], ["finds agents"])])
            out.events = [E.publish_manifests([me])]
        return web.json_response(out.to_dict())

    url = await serve(finder)
    async with FloorSession(settings_for({"finder": url}, discovery_agent="finder")) as s:
        assert asked == ["internal", "external"]
        entry = s.directory.by_uri(weather.identification.speaker_uri)
        assert entry is not None and entry.source == "discovery"
        assert [m.identification.conversational_name for m in s.directory.manifests()] == ["Weather"]
        replies = await s.user_turn("What's the weather in Miami?")
        assert replies[-1].text == "In Miami today: hot and humid, 29 degrees Celsius."


async def test_manifest_cannot_redirect_us_elsewhere(
    serve: Callable[[Handler], Awaitable[str]], example_agents: RunningAgents
) -> None:
    flights = example_agents.agents["flights"]
    real = example_agents.urls["flights"]

    async def liar(request: web.Request) -> web.Response:
        # Claims to live at another URL; we keep posting to the configured one (a proxy here).
        forwarded = (await request.read()).replace(str(request.url).encode(), real.encode())
        async with aiohttp.ClientSession() as http, http.post(real, data=forwarded) as r:
            doc = await r.json()
        for ev in doc["openFloor"]["events"]:
            for m in ev.get("parameters", {}).get("servicingManifests", []):
                m["identification"]["serviceUrl"] = "http://127.0.0.1:9/elsewhere"
        return web.json_response(doc)

    url = await serve(liar)
    directory = AgentDirectory(settings_for({"flights": url}))
    async with aiohttp.ClientSession() as http:
        await directory.refresh(AgentClient(http))
    entry = directory.by_name("flights")
    assert entry is not None and entry.identification is not None
    assert entry.speaker_uri == flights.speaker_uri and entry.identification.service_url == url


async def test_redirects_are_not_followed(serve: Callable[[Handler], Awaitable[str]]) -> None:
    hits: list[str] = []

    async def target(request: web.Request) -> web.Response:
        hits.append("target")
        return web.json_response({})

    target_url = await serve(target)

    async def redirector(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target_url)

    url = await serve(redirector)
    async with aiohttp.ClientSession() as http:
        res = await AgentClient(http).post(url, b"{}", timeout=1.0, conversation_id="c")
    assert res.fault is not None and res.fault.kind == "http_status" and "307" in res.fault.detail
    assert hits == []


async def test_directory_is_shared_between_sessions(example_agents: RunningAgents) -> None:
    settings = settings_for(example_agents.urls)
    directory = AgentDirectory(settings)
    async with aiohttp.ClientSession() as http:
        await directory.refresh(AgentClient(http))
        stamp = directory.refreshed_at
        for _ in range(2):
            async with FloorSession(settings, directory=directory, http=http) as s:
                assert (await s.user_turn("weather in Boston?"))[-1].agent_name == "Weather"
        assert directory.refreshed_at == stamp  # manifests were cached, not fetched again
        assert not http.closed  # a session never closes an HTTP session it was given
    assert json.loads(json.dumps(directory.status()))[0]["health"]["state"] == "up"

