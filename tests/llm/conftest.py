"""Fixtures for the LLM tests: the local OpenAI-compatible server (tests/fakes/openai_server.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → "fakes" importable

from llm_helpers import AGENTS_TOML, Floor

from convener.llm.settings import LlmSettings
from fakes.openai_server import FakeOpenAI


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_settings(fake_llm: FakeOpenAI) -> LlmSettings:
    return LlmSettings(base_url=fake_llm.base_url, model="test-model", first_token_timeout=2.0,
                       idle_timeout=1.0, total_timeout=5.0, max_retry_after=0.5,
                       api_key_env="CONVENER_TEST_LLM_KEY")


@pytest.fixture
async def llm_floor(fake_llm: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Floor]:
    from convener.app.ofp_endpoint import OfpEndpoint
    from convener.ofp.endpoint import SessionRegistry
    from convener.ofp.session import FloorSession
    from convener.ofp.settings import AgentSettings, OfpSettings
    from convener_agents.llm import load_agents_file
    from convener_agents.serve import start_llm_agents

    path = tmp_path / "agents.toml"
    path.write_text(AGENTS_TOML)
    llm = LlmSettings(base_url=fake_llm.base_url, model="test-model", first_token_timeout=2.0, idle_timeout=1.0)
    agents = await start_llm_agents(load_agents_file(path), llm=llm, ports={"concierge": 0})
    registry = SessionRegistry()
    settings = OfpSettings(agents={}, routing="keyphrases", listen_port=0)
    endpoint = await OfpEndpoint.start(settings, registry, port=0)
    settings.service_url = f"http://127.0.0.1:{endpoint.port}/ofp"
    settings.agents = {"concierge": AgentSettings(url=agents.urls["concierge"])}
    session = FloorSession(settings)
    await session.start()
    registry.add(session)
    try:
        yield Floor(fake_llm, session, agents, endpoint)
    finally:
        await session.close()
        await endpoint.stop()
        await agents.close()
