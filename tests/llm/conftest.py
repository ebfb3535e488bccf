"""Fixtures for the LLM tests: the local OpenAI-compatible server (tests/fakes/openai_server.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ → "fakes" importable

from fakes.openai_server import FakeOpenAI  # noqa: E402

from convener.llm.settings import LlmSettings  # noqa: E402


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_settings(fake_llm: FakeOpenAI) -> LlmSettings:
    return LlmSettings(base_url=fake_llm.base_url, model="test-model", first_token_timeout=2.0,
                       idle_timeout=1.0, total_timeout=5.0, max_retry_after=0.5,
                       api_key_env="CONVENER_TEST_LLM_KEY")
