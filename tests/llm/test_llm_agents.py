"""LLM agents from a TOML file as real OFP agents, streaming into a floor session through
convener's endpoint; the model is tests/fakes/openai_server.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from llm_helpers import Floor

from convener.ofp.dialog import text_event
from convener.settings import ConfigError
from convener_agents.llm import history_messages, load_agents_file

ANSWER = "The Blue Door is two blocks north. It opens at six. Ask for a table by the window."


async def _turn(floor: Floor, text: str) -> list:
    return await floor.session.user_turn(text)


async def test_reply_streams_first_sentence_then_follow_ups_in_order(llm_floor: Floor):
    llm_floor.fake.reply = ANSWER
    llm_floor.fake.tokens_per_second = 60
    replies = await _turn(llm_floor, "Where can I have dinner tonight?")
    texts = [r.text for r in replies]
    assert texts == ["Connecting you to Concierge.", "The Blue Door is two blocks north."]
    head = replies[-1]
    assert head.previous_id is None and head.agent_name == "Concierge"
    rest = await llm_floor.follow_ups(2)
    assert [r.text for r in rest] == ["It opens at six.", "Ask for a table by the window."]
    assert rest[0].previous_id == head.event_id and rest[1].previous_id == rest[0].event_id
    # the invite's dialogHistory and the system prompt went into the prompt
    messages = llm_floor.fake.requests[-1].body["messages"]
    system = "You are the concierge of the Grand Hotel. Answer in short sentences."
    assert messages[0] == {"role": "system", "content": system}
    assert messages[-1] == {"role": "user", "content": "Where can I have dinner tonight?"}
    assert llm_floor.fake.requests[-1].body["stream"] is True
    # the next turn carries the conversation so far
    llm_floor.fake.reply = "Yes. It is open late."
    await _turn(llm_floor, "Is it open late?")
    roles = [(m["role"], m["content"]) for m in llm_floor.fake.requests[-1].body["messages"][1:]]
    assert ("assistant", ANSWER) in roles and roles[-1] == ("user", "Is it open late?")


async def test_the_post_is_answered_at_the_first_sentence_not_at_the_end(llm_floor: Floor):
    llm_floor.fake.reply = ANSWER  # 18 tokens
    llm_floor.fake.first_token_delay = 0.1
    llm_floor.fake.tokens_per_second = 20
    t0 = time.monotonic()
    replies = await _turn(llm_floor, "A restaurant please")
    first = time.monotonic() - t0
    assert replies[-1].text == "The Blue Door is two blocks north."
    assert first < 0.1 + 8 / 20 + 0.35, first  # first token + 7 more tokens + overhead
    await llm_floor.follow_ups(2)
    assert time.monotonic() - t0 > 0.1 + 17 / 20 - 0.05


async def test_barge_in_drops_the_rest_of_the_stream(llm_floor: Floor):
    llm_floor.fake.reply = ANSWER
    llm_floor.fake.tokens_per_second = 15
    replies = await _turn(llm_floor, "A museum near here?")
    assert replies[-1].text.startswith("The Blue Door")
    llm_floor.session.stop_streams()  # the caller barged in
    await asyncio.sleep(1.2)  # the agent keeps sending what it had
    assert llm_floor.session._unsolicited.empty()
    assert llm_floor.session.streams.dropped >= 1


async def test_a_new_caller_turn_stops_the_agent_streaming(llm_floor: Floor):
    llm_floor.fake.reply = ANSWER
    llm_floor.fake.tokens_per_second = 10
    await _turn(llm_floor, "A restaurant please")
    llm_floor.fake.reply = "Sure."
    llm_floor.fake.tokens_per_second = 0
    replies = await _turn(llm_floor, "Actually, never mind.")
    assert replies[-1].text == "Sure."
    await asyncio.sleep(1.0)
    assert llm_floor.session._unsolicited.empty()  # nothing of the first answer after "Sure."
    assert not llm_floor.agent.streams


@pytest.mark.parametrize("fault", ["down", "500", "garbage", "429"])
async def test_model_faults_say_unavailable(llm_floor: Floor, fault: str):
    if fault == "down":
        await llm_floor.fake.stop()
    elif fault == "500":
        llm_floor.fake.status = 500
    elif fault == "garbage":
        llm_floor.fake.garbage = True
    else:
        llm_floor.fake.rate_limit = 10
        llm_floor.fake.retry_after = "30"
    replies = await _turn(llm_floor, "Dinner recommendations?")
    assert replies[-1].text == "Sorry, I can't answer right now. Please try again in a moment."
    assert replies[-1].agent_name == "Concierge"


async def test_slow_model_holds_on_then_answers(llm_floor: Floor):
    llm_floor.fake.reply = "Try the Blue Door. It is lovely."
    llm_floor.fake.first_token_delay = 1.5  # answer_within is 1.0 in the test file
    t0 = time.monotonic()
    replies = await _turn(llm_floor, "A restaurant please")
    assert replies[-1].text == "One moment please." and time.monotonic() - t0 < 1.4
    rest = await llm_floor.follow_ups(2)
    assert [r.text for r in rest] == ["Try the Blue Door.", "It is lovely."]
    assert rest[0].previous_id == replies[-1].event_id


async def test_slow_model_that_then_fails_says_unavailable(llm_floor: Floor):
    llm_floor.fake.first_token_delay = 3.0  # past first_token_timeout (2 s)
    replies = await _turn(llm_floor, "A restaurant please")
    assert replies[-1].text == "One moment please."
    (rest,) = await llm_floor.follow_ups(1, timeout=4)
    assert rest.text == "Sorry, I can't answer right now. Please try again in a moment."


async def test_stream_cut_mid_answer_keeps_what_was_said(llm_floor: Floor):
    llm_floor.fake.reply = ANSWER
    llm_floor.fake.tokens_per_second = 40
    llm_floor.fake.cut_after_tokens = 10  # inside the second sentence
    replies = await _turn(llm_floor, "A restaurant please")
    assert replies[-1].text == "The Blue Door is two blocks north."
    await asyncio.sleep(0.8)
    assert llm_floor.session._unsolicited.empty()  # the cut sentence is not spoken half


def test_agents_file_is_strict(tmp_path: Path):
    p = tmp_path / "a.toml"
    p.write_text('[agents.x]\nsystem_prompt = "Be nice."\nsynopsys = "typo"\n')
    with pytest.raises(ConfigError, match="synopsys: unknown key"):
        load_agents_file(p)
    p.write_text('[agents.x]\nname = "X"\n')
    with pytest.raises(ConfigError, match="system_prompt: required"):
        load_agents_file(p)
    p.write_text('[llm]\nmodel = "m"\nbase_url = "http://h:1/v1"\n[agents.bob]\nsystem_prompt = "Hi."\n')
    f = load_agents_file(p)
    assert f.llm is not None and f.llm.model == "m" and f.agents["bob"].name == "Bob"
    with pytest.raises(ConfigError, match="does not exist"):
        load_agents_file(tmp_path / "none.toml")


def test_history_becomes_chat_messages():
    me, caller, other = "tag:a,2026:me", "tag:a,2026:caller", "tag:a,2026:flights"
    history = [text_event(caller, "Book a flight"), text_event(other, "Where to?"),
               text_event(me, "Hello."), text_event(caller, "And a restaurant")]
    assert history_messages(history, me, {other: "Flights"}) == [
        {"role": "user", "content": "Book a flight"},
        {"role": "user", "content": "[Flights said] Where to?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "And a restaurant"},
    ]


async def test_without_an_endpoint_to_stream_to_the_first_sentence_still_answers(llm_floor: Floor):
    from convener.ofp.envelope import Conversation, Envelope, To, invite

    llm_floor.fake.reply = ANSWER
    agent = llm_floor.agent
    caller = "tag:t,2026:caller"
    env = Envelope(Conversation("conv:no-endpoint"), "tag:t,2026:convener",
                   [invite(To(agent.speaker_uri), dialog_history=[text_event(caller, "Dinner?")])])
    answer = await agent.answer_async(env)  # no sender serviceUrl: nowhere to POST follow-ups
    assert [e.event_type for e in answer.events] == ["acceptInvite", "utterance"]
    assert answer.events[1].dialog_event.text == "The Blue Door is two blocks north."
    await asyncio.sleep(0.3)
    assert "conv:no-endpoint" not in agent.streams  # stopped at the first undeliverable sentence
