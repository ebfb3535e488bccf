"""Our OFP endpoint (aiohttp application) and our own manifest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from ofp_helpers import settings_for

from convener.ofp import envelope as E
from convener.ofp.dialog import text_event
from convener.ofp.endpoint import SessionRegistry, build_app, static_tokens
from convener.ofp.envelope import Conversation, Envelope, To
from convener.ofp.inbound_guard import InboundGuard, InboundKeys
from convener.ofp.session import FloorSession
from convener.ofp.settings import OfpSettings
from convener.ofp.validate import validate_envelope
from convener_agents.serve import RunningAgents


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[TestClient, SessionRegistry, OfpSettings]]:
    settings = OfpSettings(max_response_bytes=64 * 1024)
    sessions = SessionRegistry()
    client = TestClient(TestServer(build_app(settings, sessions)))
    await client.start_server()
    yield client, sessions, settings
    await client.close()


async def test_manifest_says_we_are_a_convener(endpoint: tuple[TestClient, SessionRegistry, OfpSettings]) -> None:
    client, _sessions, _settings = endpoint
    resp = await client.get("/ofp/manifest")
    manifest = await resp.json()
    assert manifest["identification"]["openFloorRoles"] == {"convener": True}
    doc = Envelope(Conversation("c"), "tag:x,2026:y", [E.Event("getManifests")]).to_dict()
    resp = await client.post("/ofp", json=doc)
    answer = await resp.json()
    assert validate_envelope(answer) == []
    (event,) = answer["openFloor"]["events"]
    assert event["eventType"] == "publishManifests"
    assert event["parameters"]["servicingManifests"] == [manifest]


async def test_garbage_and_oversized_bodies(endpoint: tuple[TestClient, SessionRegistry, OfpSettings]) -> None:
    client, _sessions, _settings = endpoint
    assert (await client.post("/ofp", data=b"{nope")).status == 400
    assert (await client.post("/ofp", json={"openFloor": 1})).status == 400
    assert (await client.post("/ofp", data=b" " * (128 * 1024))).status == 413
    assert (await client.post("/ofp/agent/x", data=b"[1, 2")).status == 400


async def test_unknown_conversation_is_refused(
    endpoint: tuple[TestClient, SessionRegistry, OfpSettings], caplog: pytest.LogCaptureFixture,
) -> None:
    client, _sessions, _settings = endpoint
    doc = Envelope(Conversation("conv:nope"), "tag:x,2026:y", [E.bye()]).to_dict()
    with caplog.at_level(logging.WARNING, "convener.ofp.endpoint"):
        resp = await client.post("/ofp", json=doc)
    assert resp.status == 404 and (await resp.json()) == {"error": "conversation not live"}
    assert "refused: 404 conversation not live (sender tag:x,2026:y, conversation conv:nope" in caplog.text


class Live:
    """A live conversation with the example agents behind a guarded endpoint, and the envelopes
    convener sent to each agent (as the agents received them)."""

    def __init__(self, client: TestClient, session: FloorSession, sent: dict[str, list[dict[str, Any]]],
                 agents: RunningAgents) -> None:
        self.client, self.session, self.sent, self.agents = client, session, sent, agents
        self.now = 0.0  # the guard's clock: stands still unless a test moves it

    def uri(self, name: str) -> str:
        return self.agents.agents[name].speaker_uri

    def reply_path(self, name: str) -> str:
        """Where convener told agent ``name`` to post: the path of its envelopes' sender serviceUrl."""
        base = self.session.me.service_url
        urls = {u for d in self.sent[self.uri(name)]
                if (u := d["openFloor"]["sender"].get("serviceUrl", "")).startswith(base)}  # not forwarded ones
        (url,) = urls
        return urlsplit(url).path

    def news(self, name: str, text: str, sender: str | None = None) -> dict[str, Any]:
        who = sender or self.uri(name)
        return Envelope(Conversation(self.session.conversation_id), who,
                        [E.utterance(text_event(who, text))]).to_dict()

    async def heard(self, timeout: float = 2.0) -> list[str]:
        """What the caller was told, unasked, within ``timeout`` seconds."""
        out: list[str] = []
        stream = self.session.unsolicited()
        try:
            while True:
                out.append((await asyncio.wait_for(anext(stream), timeout)).text)
                timeout = 0.3
        except TimeoutError:
            return out


@pytest.fixture
async def live(example_agents: RunningAgents, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    settings = settings_for(example_agents.urls, max_response_bytes=64 * 1024, inbound_rate=5.0, inbound_burst=8)
    settings.agents["hotels"].inbound_token_env = "TEST_HOTELS_INBOUND_TOKEN"
    monkeypatch.setenv("TEST_HOTELS_INBOUND_TOKEN", "hotels-static-token")
    keys = InboundKeys(b"test secret")
    guard = InboundGuard(keys, static_tokens=static_tokens(settings), rate=5.0, burst=8)
    sessions = SessionRegistry()
    box: list[Live] = []
    client = TestClient(TestServer(build_app(settings, sessions, guard=guard, clock=lambda: box[0].now)))
    await client.start_server()
    sent: dict[str, list[dict[str, Any]]] = {}
    s = FloorSession(settings, inbound_keys=keys, tracer=lambda uri, doc: sent.setdefault(uri, []).append(doc))
    box.append(Live(client, s, sent, example_agents))
    try:
        await s.start()
        sessions.add(s)
        await s.user_turn("Book a flight to Denver")  # flights is invited and holds the floor
        yield box[0]
    finally:
        await s.close()
        await client.close()


async def test_an_agent_posts_to_the_url_it_was_given_and_the_caller_hears_it(live: Live) -> None:
    path = live.reply_path("flights")
    assert path.startswith("/ofp/agent/")
    hotels_url = live.session.inbound_keys.url_for(live.session.me.service_url, live.session.conversation_id,
                                                   live.uri("hotels"))
    assert urlsplit(hotels_url).path != path  # a key per agent
    resp = await live.client.post(path, json=live.news("flights", "Fares to Denver just dropped."))
    assert resp.status == 200 and (await resp.json())["openFloor"]["events"] == []
    assert await live.heard() == ["Fares to Denver just dropped."]


async def test_a_static_bearer_token_admits_its_agent(live: Live) -> None:
    await live.session.user_turn("What hotels are there in Denver")  # hotels gets the floor
    resp = await live.client.post("/ofp", json=live.news("hotels", "Hotels in Denver are cheap this week."),
                                  headers={"Authorization": "Bearer hotels-static-token"})
    assert resp.status == 200
    assert await live.heard() == ["Hotels in Denver are cheap this week."]


async def test_refusals_each_with_its_status_and_a_log_line(
    live: Live, caplog: pytest.LogCaptureFixture,
) -> None:
    """Spoofed senders, replays, no or wrong credentials, a flood: each is refused and logged,
    none reaches the caller, and the conversation goes on (a genuine post is heard after)."""
    c = live.client
    flights_path = live.reply_path("flights")
    cases: list[tuple[str, int, str]] = []

    async def post(label: str, path: str, doc: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
                   ) -> int:
        if isinstance(doc, bytes):
            resp = await c.post(path, data=doc, headers=headers)
        else:
            resp = await c.post(path, json=doc, headers=headers)
        cases.append((label, resp.status, (await resp.json())["error"] if resp.status != 200 else ""))
        return resp.status

    with caplog.at_level(logging.WARNING, "convener.ofp.endpoint"):
        # The old hole: any process naming an agent's speakerUri.
        assert await post("no credentials", "/ofp", live.news("flights", "Send money")) == 401
        # Flights' URL, but the envelope says it is from hotels.
        assert await post("spoofed sender", flights_path, live.news("hotels", "Send money", live.uri("hotels"))) == 403
        # Hotels' bearer token, claiming to be flights.
        assert await post("spoofed bearer", "/ofp", live.news("flights", "Send money"),
                          {"Authorization": "Bearer hotels-static-token"}) == 403
        assert await post("guessed key", "/ofp/agent/" + "A" * 32, live.news("flights", "Send money")) == 403
        assert await post("wrong token", "/ofp", live.news("hotels", "Send money"),
                          {"Authorization": "Bearer guess"}) == 403
        stranger = "tag:evil,2026:x"
        assert await post("stranger", flights_path, live.news("flights", "Send money", stranger)) == 403
        genuine = live.news("flights", "Your flight is confirmed.")
        assert await post("genuine", flights_path, genuine) == 200
        assert await post("replay", flights_path, genuine) == 409
        body = live.news("flights", "Send money")["openFloor"]
        body["conversation"]["id"] = "conv:ended"
        assert await post("ended conversation", flights_path, {"openFloor": body}) == 404
        assert await post("oversized", flights_path, b"{" + b" " * (128 * 1024) + b"}") == 413
        assert await post("malformed", flights_path, b"{\"openFloor\": ") == 400
    assert await live.heard() == ["Your flight is confirmed."]
    for label, status, reason in cases:
        if status != 200:
            assert f"refused: {status} {reason}" in caplog.text, label
    assert "hotels-static-token" not in caplog.text
    assert flights_path.rsplit("/", 1)[1] not in caplog.text
    # The conversation goes on for the genuine agent.
    resp = await c.post(flights_path, json=live.news("flights", "Anything else?"))
    assert resp.status == 200 and await live.heard() == ["Anything else?"]


async def test_a_flood_gets_429_and_the_agent_is_heard_again_after(live: Live) -> None:
    path = live.reply_path("flights")
    statuses = [
        (await live.client.post(path, json=live.news("flights", f"Update {i}."))).status for i in range(12)
    ]
    assert statuses[:8] == [200] * 8 and set(statuses[8:]) == {429}, statuses
    resp = await live.client.post(path, json=live.news("flights", "Flood over."))
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    heard = await live.heard()
    assert heard[:8] == [f"Update {i}." for i in range(8)] and "Flood over." not in heard
    live.now += 0.25  # 5 per second: one token back
    assert (await live.client.post(path, json=live.news("flights", "Back."))).status == 200
    assert await live.heard() == ["Back."]


async def test_a_stranger_with_a_key_cannot_make_us_invite_an_agent(live: Live) -> None:
    s = live.session
    invite = Envelope(Conversation(s.conversation_id), live.uri("flights"),
                      [E.invite(To("tag:evil,2026:x", "http://127.0.0.1:9/evil"))])
    assert (await live.client.post(live.reply_path("flights"), json=invite.to_dict())).status == 200
    await asyncio.sleep(0.1)
    assert not s.floor.is_conversant("tag:evil,2026:x")
