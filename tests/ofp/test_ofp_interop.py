"""Interoperability with the ``openfloor`` reference package (PyPI, 0.1.5)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import openfloor
import pytest
from aiohttp import web
from ofp_helpers import envelope_samples, settings_for

from convener.ofp.session import FloorSession
from convener.ofp.timefmt import is_rfc3339
from convener_agents.serve import RunningAgents

assert openfloor.__version__ == "0.1.5"


class EchoAgent(openfloor.BotAgent):
    """An agent written with the openfloor package: repeats what the caller says."""

    def bot_on_utterance(self, event: Any, in_envelope: Any, out_envelope: Any) -> None:
        de = event.parameters["dialogEvent"]  # a plain dict in openfloor 0.1.5
        said = " ".join(str(t.get("value", "")) for t in de["features"]["text"]["tokens"])
        if de.get("speakerUri") == self.speakerUri or "Connecting you" in said:
            return
        reply = openfloor.DialogEvent(
            speakerUri=self.speakerUri, features={"text": openfloor.TextFeature(values=[f"You said: {said}"])}
        )
        out_envelope.events.append(openfloor.UtteranceEvent(dialogEvent=reply))


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    holder: dict[str, EchoAgent] = {}

    async def handle(request: web.Request) -> web.Response:
        in_env = openfloor.Envelope.from_json(await request.text(), as_payload=True)
        out = holder["agent"].process_envelope(in_env)
        return web.Response(text=out.to_json(as_payload=True), content_type="application/json")

    app = web.Application()
    app.router.add_post("/ofp", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ofp"  # type: ignore[union-attr]
    manifest = openfloor.Manifest(
        identification=openfloor.Identification(
            speakerUri="tag:openfloor.example,2026:echo", serviceUrl=url, organization="openfloor example",
            conversationalName="Echo", synopsis="Repeats what you say.", role="Echo agent"),
        capabilities=[openfloor.Capability(keyphrases=["echo", "repeat after me"], descriptions=["Repeats words"])],
    )
    holder["agent"] = EchoAgent(manifest)
    yield url
    await runner.cleanup()


async def test_an_openfloor_agent_works_with_our_floor(
    echo_url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="convener.ofp")
    sent: list[dict[str, Any]] = []
    async with FloorSession(settings_for({"echo": echo_url}), tracer=lambda r, d: sent.append(d)) as s:
        first = await s.user_turn("Please repeat after me")
        assert [(r.agent_name, r.text) for r in first] == [
            ("Convener", "Connecting you to Echo."), ("Echo", "Hello! How can I help you today?")]
        second = await s.user_turn("banana split")
        assert [(r.agent_name, r.text) for r in second] == [("Echo", "You said: banana split")]
    # openfloor writes times without a time zone: accepted, repaired and logged.
    assert "no time zone" in caplog.text
    assert sent


async def test_our_envelopes_parse_with_openfloor(example_agents: RunningAgents) -> None:
    sent: list[dict[str, Any]] = []
    async with FloorSession(settings_for(example_agents.urls), tracer=lambda r, d: sent.append(d)) as s:
        for text in ("Book a flight to Denver", "From Boston", "let me talk to the weather agent"):
            await s.user_turn(text)
    kinds: set[str] = set()
    for doc in sent:
        env = openfloor.Envelope.from_json(json.dumps(doc), as_payload=True)
        assert env.conversation.id == doc["openFloor"]["conversation"]["id"]
        assert env.sender.speakerUri == doc["openFloor"]["sender"]["speakerUri"]
        assert [e.eventType for e in env.events] == [e["eventType"] for e in doc["openFloor"]["events"]]
        for e in env.events:
            kinds.add(e.eventType)
            if e.eventType == "utterance":
                # (openfloor 0.1.5's Span replaces startTime with a naive now(); check our text)
                assert is_rfc3339(e.parameters["dialogEvent"]["span"]["startTime"])
                de = openfloor.DialogEvent.from_dict(copy.deepcopy(dict(e.parameters["dialogEvent"])))
                assert de.features["text"].tokens[0].value
        assert [c.identification.speakerUri for c in env.conversation.conversants]
    assert {"utterance", "invite", "revokeFloor", "bye"} <= kinds


@pytest.mark.parametrize("path", envelope_samples()[:3], ids=lambda p: p.name)
def test_openfloor_reads_what_we_rewrite_from_official_samples(path: Any) -> None:
    from convener.ofp.parse import parse_envelope

    ours = parse_envelope(path.read_bytes()).to_dict()
    env = openfloor.Envelope.from_json(json.dumps(ours), as_payload=True)
    assert len(env.events) == len(ours["openFloor"]["events"])
