"""A phone line with an LLM agent, for the spoken tests and bench/llm_latency.py.

The whole product in this process (``Stack``) on the sandbox Asterisk, with one LLM agent
defined in a TOML file and served as ``convener agents serve --llm FILE`` serves it, talking to
the local chat-completions server (``FakeOpenAI``), and convener's OFP endpoint, where the agent
POSTs its follow-up sentences::

    async with LlmLine(config, tmp_dir, reply="...", first_token_delay=0.3, tokens_per_second=30) as line:
        ...  # place calls; line.fake, line.session(), line.stack
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convener.app.ofp_endpoint import OfpEndpoint
from convener.config import Config
from convener.llm.settings import LlmSettings
from convener.ofp.settings import AgentSettings
from convener.tools.stack import Stack
from convener_agents.llm import load_agents_file
from convener_agents.serve import RunningAgents, start_llm_agents
from fakes.openai_server import FakeOpenAI

AGENTS_TOML = '''
[agents.concierge]
name = "Concierge"
role = "Hotel concierge"
synopsis = "Restaurants and sights near the hotel."
keyphrases = ["restaurant", "dinner", "museum"]
descriptions = ["Recommends places to eat and things to see in the city."]
system_prompt = "You are the concierge of the Grand Hotel. Answer in short sentences."
greeting = "Hi, this is the concierge."
'''


class LlmLine:
    def __init__(self, config: Config, tmp: Path, *, reply: str, first_token_delay: float = 0.3,
                 tokens_per_second: float = 30.0, convener: str = "router") -> None:
        self.config = config
        self.tmp = tmp
        self.reply = reply
        self.convener = convener
        self.fake = FakeOpenAI(self._answer, first_token_delay=first_token_delay,
                               tokens_per_second=tokens_per_second)
        self.agents: RunningAgents | None = None
        self.endpoint: OfpEndpoint | None = None
        self.stack: Stack | None = None

    async def __aenter__(self) -> LlmLine:
        try:
            await self.fake.start()
            path = self.tmp / "agents.toml"
            path.write_text(AGENTS_TOML)
            llm = LlmSettings(base_url=self.fake.base_url, model="fake")
            self.agents = await start_llm_agents(load_agents_file(path), llm=llm, ports={"concierge": 0})
            cfg = self.config
            cfg.ofp.agents = {"concierge": AgentSettings(url=self.agents.urls["concierge"])}
            cfg.ofp.routing = "keyphrases"
            if self.convener == "llm":  # the same model decides whom to invite
                cfg.ofp.convener = "llm"
                cfg.llm = LlmSettings(base_url=self.fake.base_url, model="fake")
            self.stack = Stack(cfg, agents=False)
            await self.stack.__aenter__()
            assert self.stack.app is not None
            self.endpoint = await OfpEndpoint.start(cfg.ofp, self.stack.app.ofp_sessions, port=0)
            cfg.ofp.service_url = f"http://127.0.0.1:{self.endpoint.port}/ofp"  # before the first call
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _answer(self, body: dict[str, Any]) -> str:
        if "response_format" in body:  # the LLM convener asks for JSON
            return '{"action": "invite", "agent": "Concierge"}'
        return self.reply

    def session(self) -> Any:
        """The floor session of the (only) live conversation."""
        assert self.stack is not None and self.stack.app is not None
        sessions = list(self.stack.app.ofp_sessions._by_id.values())
        return sessions[-1] if sessions else None

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.stop()
            self.endpoint = None
        if self.stack is not None:
            await self.stack.close()
            self.stack = None
        if self.agents is not None:
            await self.agents.close()
            self.agents = None
        await self.fake.stop()
