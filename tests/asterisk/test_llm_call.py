"""A spoken call through the sandbox Asterisk with an LLM agent served from a TOML file (the model
is tests/fakes/openai_server.py at 30 tokens/s after a 300 ms first token): the follow-up
sentences the agent streams are heard in order, and a barge-in stops them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → "fakes" importable

from convener.tools.callcheck import VoiceCaller
from convener.tools.testcall import TestCaller
from fakes.llm_line import LlmLine

ANSWER = ("The best place is the Blue Door on Main Street. It opens at six in the evening. "
          "Ask for a table by the window. The fish is very good.")
LONG = ("The best place is the Blue Door on Main Street. It opens at six in the evening. "
        "Ask for a table by the window. The fish soup is famous across the city. "
        "Parking is free behind the building. They also have live music on Fridays. "
        "Remember to bring a warm jacket.")


def _words(text: str) -> str:
    return " " + text.lower().replace(".", " ").replace(",", " ") + " "


def _prepare(config) -> None:
    config.voice.greeting = ""
    config.ofp.announce_handover = False


async def _ask(caller: TestCaller, config, request: bytes):
    """Place a call, say ``request``; returns the call, its media and when the reply began."""
    leg = await caller.place("100")
    media = await leg.open_media(config.media)
    await leg.wait_in_bridge()
    end = await media.say(request, 8000)
    first = await media.wait_voice_after(end, 10.0)
    assert first is not None, "no reply heard"
    return leg, media, first


async def test_follow_up_sentences_are_heard_in_order(config, sandbox, creds, tmp_path):
    _prepare(config)
    voice = VoiceCaller(config)
    await voice.warm()
    request = await voice.speak("I would like a restaurant for dinner tonight")
    async with LlmLine(config, tmp_path, reply=ANSWER) as line:
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password) as caller:
            leg, media, first = await _ask(caller, config, request)
            session = line.session()
            await media.wait_quiet(1.5, 30.0, since=first)
            heard = _words(await voice.hear(media.audio_between(first - 0.1, media.last_voice() or first)))
            await leg.hangup()
    print(f"heard: {heard}")
    marks = [heard.find(w) for w in (" door ", " evening ", " window ", " fish ")]
    assert all(m >= 0 for m in marks), f"not every sentence was heard: {heard!r}"
    assert marks == sorted(marks), f"sentences out of order: {heard!r}"
    # one answer, sentence by sentence: the agent was asked once, three follow-ups were POSTed
    assert len(line.fake.requests) == 1
    assert session is not None and session.streams.dropped == 0


async def test_barge_in_stops_the_follow_ups(config, sandbox, creds, tmp_path):
    _prepare(config)
    voice = VoiceCaller(config)
    await voice.warm()
    request = await voice.speak("I would like a restaurant for dinner tonight")
    stop = await voice.speak("Okay stop, thank you")
    async with LlmLine(config, tmp_path, reply=LONG, tokens_per_second=8) as line:
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password) as caller:
            leg, media, first = await _ask(caller, config, request)
            session = line.session()
            # into the second sentence: the later ones are still being generated at 8 tokens/s
            await media.wait_voice_after(first + 3.5, 10.0)
            line.reply = "Of course."
            line.fake.tokens_per_second = 0
            await media.say(stop, 8000)
            onset = media.said_at
            assert onset is not None
            await media.wait_quiet(2.0, 30.0, since=onset + len(stop) / 16000)
            after = _words(await voice.hear(media.audio_between(onset + 0.3, media.last_voice() or onset)))
            before = _words(await voice.hear(media.audio_between(first - 0.1, onset)))
            await leg.hangup()
    print(f"before the barge-in: {before}\nafter it: {after}")
    assert " door " in before, before
    for later in (" parking ", " music ", " jacket ", " fridays "):
        assert later not in after and later not in before, f"a cut sentence was spoken: {after!r}"
    assert session is not None and session.streams.dropped >= 1  # what arrived after was dropped
