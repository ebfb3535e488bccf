"""The LLM test harness: an LLM agent served from a TOML file, convener's endpoint, a floor."""

from __future__ import annotations

import asyncio
from typing import Any

from fakes.openai_server import FakeOpenAI

AGENTS_TOML = '''
[agents.concierge]
name = "Concierge"
role = "Hotel concierge"
synopsis = "Restaurants and sights near the hotel."
keyphrases = ["restaurant", "museum", "dinner"]
descriptions = ["Recommends places to eat and things to see in the city."]
system_prompt = "You are the concierge of the Grand Hotel. Answer briefly."
greeting = "Hi, this is the concierge."
answer_within = 1.0
'''


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
