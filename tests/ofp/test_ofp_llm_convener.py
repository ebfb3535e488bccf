"""The LLM convener in a floor session, against tests/fakes/openai_server.py: it decides when it
answers in time and validly; otherwise the embedded router does, within the budget."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ofp_helpers import settings_for

from convener.llm.settings import LlmSettings
from convener.ofp.session import FloorSession
from convener_agents.serve import RunningAgents

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → "fakes" importable
from fakes.openai_server import FakeOpenAI

BUDGET_MS = 300


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI('{"action": "invite", "agent": "Weather"}') as server:
        yield server


@pytest.fixture
async def session(example_agents: RunningAgents, fake: FakeOpenAI) -> AsyncIterator[FloorSession]:
    settings = settings_for(example_agents.urls, routing="keyphrases", convener="llm")
    llm = LlmSettings(base_url=fake.base_url, model="decider", convener_budget_ms=BUDGET_MS)
    s = FloorSession(settings, llm=llm)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def _texts(session: FloorSession, text: str) -> list[str]:
    return [r.text for r in await session.user_turn(text)]


async def test_the_llm_decides(session: FloorSession, fake: FakeOpenAI):
    # the router would send this to Flights; the model says Weather, and Weather is invited
    texts = await _texts(session, "Book a flight to Denver")
    assert texts[0] == "Connecting you to Weather."
    body = fake.requests[-1].body
    assert body["model"] == "decider" and body["response_format"] == {"type": "json_object"}
    assert "Book a flight to Denver" in body["messages"][-1]["content"]
    assert any("llm: invite Weather" in d for d in session.policy.decisions)


async def test_the_llm_asks_a_clarifying_question(session: FloorSession, fake: FakeOpenAI):
    fake.reply = json.dumps({"action": "ask", "agents": ["Flights", "Hotels"],
                             "question": "Do you need a flight, or a room?"})
    assert await _texts(session, "I am going to Denver") == ["Do you need a flight, or a room?"]
    fake.reply = '{"action": "none"}'
    texts = await _texts(session, "the second one")  # settled by the question, as with the router
    assert texts[0] == "Connecting you to Hotels."


def _router_fallback(session: FloorSession, texts: list[str]) -> None:
    assert texts[0] == "Connecting you to Flights.", texts  # the embedded router's choice


@pytest.mark.parametrize("fault", ["slow", "garbage", "invalid", "unknown agent", "500", "429"])
async def test_the_router_decides_when_the_llm_fails(session: FloorSession, fake: FakeOpenAI, fault: str):
    fake.first_token_delay = 2.0 if fault == "slow" else 0.0
    fake.garbage = fault == "garbage"
    fake.status = 500 if fault == "500" else 0
    if fault == "429":
        fake.rate_limit, fake.retry_after = 5, "10"
    fake.reply = {"invalid": "I think Weather", "unknown agent": '{"action": "invite", "agent": "Trains"}'
                  }.get(fault, fake.reply)
    t0 = time.monotonic()
    texts = await _texts(session, "Book a flight to Denver")
    waited = time.monotonic() - t0
    _router_fallback(session, texts)
    assert waited < BUDGET_MS / 1000 + 1.0, waited  # never more than the budget on top
    if fault in ("invalid", "unknown agent"):
        assert any("LLM convener answer refused" in d for d in session.policy.decisions)


async def test_slow_llm_costs_the_budget_not_more(session: FloorSession, fake: FakeOpenAI):
    fake.first_token_delay = 5.0
    t0 = time.monotonic()
    await session.user_turn("What is the weather in Boston")
    slow = time.monotonic() - t0
    assert BUDGET_MS / 1000 - 0.05 <= slow < BUDGET_MS / 1000 + 0.5, slow


async def test_dead_llm_is_paused_after_three_failures(session: FloorSession, fake: FakeOpenAI):
    await fake.stop()
    for text in ("Book a flight to Denver", "From Boston", "Next Friday", "In the morning"):
        await session.user_turn(text)
    conv: Any = session.llm_convener
    assert conv.failed == 3 and conv.skipped == 1


async def test_asked_ahead_of_the_turn_once(session: FloorSession, fake: FakeOpenAI):
    fake.first_token_delay = 0.25
    session.prepare("What is the weather in Boston")  # the speculative transcript
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    texts = await _texts(session, "What is the weather in Boston")
    assert texts[0] == "Connecting you to Weather."
    assert len(fake.requests) == 1
    assert time.monotonic() - t0 < 0.2  # the answer was there when the turn began (0.25 s to make)


async def test_the_router_stays_the_default(example_agents: RunningAgents, fake: FakeOpenAI):
    s = FloorSession(settings_for(example_agents.urls, routing="keyphrases"))
    await s.start()
    try:
        assert s.llm_convener is None
        texts = [r.text for r in await s.user_turn("Book a flight to Denver")]
    finally:
        await s.close()
    assert texts[0] == "Connecting you to Flights." and not fake.requests


async def test_the_llm_hands_over_and_lets_the_holder_answer(session: FloorSession, fake: FakeOpenAI):
    fake.reply = '{"action": "invite", "agent": "Flights"}'
    assert (await _texts(session, "Book a flight to Denver"))[0] == "Connecting you to Flights."
    fake.reply = '{"action": "stay"}'
    texts = await _texts(session, "From Boston")  # Flights holds the floor and answers
    assert texts and not texts[0].startswith("Connecting")
    fake.reply = '{"action": "handover", "agent": "Hotels"}'
    assert (await _texts(session, "I also want somewhere to sleep"))[0] == "Connecting you to Hotels."
    assert "I also want somewhere to sleep" in fake.requests[-1].body["messages"][-1]["content"]
    assert "Agent holding the floor: Flights" in fake.requests[-1].body["messages"][-1]["content"]
