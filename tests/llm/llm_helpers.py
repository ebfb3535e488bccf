"""The LLM test harness: an LLM agent served from a TOML file, convener's endpoint, a floor."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.llm_line import AGENTS_TOML as LINE_AGENTS_TOML
from fakes.openai_server import FakeOpenAI

AGENTS_TOML = LINE_AGENTS_TOML + "answer_within = 1.0\n"  # the spoken line's agent, impatient


class Floor:
    """An LLM agent served from a TOML file, convener's endpoint and one floor session."""

    def __init__(self, fake: FakeOpenAI, session: Any, agents: Any, endpoint: Any) -> None:
        self.fake = fake
        self.session = session
        self.agents = agents
        self.endpoint = endpoint

    @property
    def agent(self) -> Any:
        return self.agents.agents["concierge"]

    async def follow_ups(self, n: int, timeout: float = 5.0) -> list[Any]:
        out = []
        it = self.session.unsolicited().__aiter__()
        for _ in range(n):
            out.append(await asyncio.wait_for(it.__anext__(), timeout))
        return out
