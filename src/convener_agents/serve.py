"""Run the example agents as HTTP services (``convener agents serve``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from convener.llm.settings import LlmSettings
from convener_agents.base import SkillAgent, make_app
from convener_agents.flights import FlightsAgent
from convener_agents.hotels import HotelsAgent
from convener_agents.llm import LlmAgent, LlmAgentsFile, build_agents, make_llm_app
from convener_agents.weather import WeatherAgent

AGENTS: dict[str, type[SkillAgent]] = {"flights": FlightsAgent, "hotels": HotelsAgent, "weather": WeatherAgent}
DEFAULT_PORTS = {"flights": 8701, "hotels": 8702, "weather": 8703}


@dataclass
class RunningAgents:
    runners: list[web.AppRunner] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    agents: dict[str, SkillAgent] = field(default_factory=dict)

    async def close(self) -> None:
        for r in self.runners:
            await r.cleanup()


async def start_agents(host: str = "127.0.0.1", ports: dict[str, int] | None = None) -> RunningAgents:
    """Start the example agents; port 0 picks a free port. Returns their URLs by name."""
    ports = DEFAULT_PORTS if ports is None else ports
    return await _start_all([(name, AGENTS[name](""), port) for name, port in ports.items()], host, RunningAgents())


async def start_llm_agents(file: LlmAgentsFile, host: str = "127.0.0.1", llm: LlmSettings | None = None,
                           ports: dict[str, int] | None = None, running: RunningAgents | None = None,
                           ) -> RunningAgents:
    """Start the LLM agents of a TOML file (``ports`` overrides theirs; 0 picks a free port)."""
    items = [(key, agent, port if ports is None else ports.get(key, port))
             for key, (agent, port) in build_agents(file, llm).items()]
    return await _start_all(items, host, running or RunningAgents())


async def _start_all(items: list[tuple[str, SkillAgent, int]], host: str, running: RunningAgents) -> RunningAgents:
    try:
        for name, agent, port in items:
            runner, url = await _start_one(agent, host, port)
            running.runners.append(runner)
            running.urls[name] = url
            running.agents[name] = agent
    except BaseException:
        await running.close()
        raise
    return running


async def _start_one(agent: SkillAgent, host: str, port: int) -> tuple[web.AppRunner, str]:
    # The agent publishes its own URL, known only after binding when port is 0.
    agent.service_url = f"http://{host}:{port}/ofp"
    app = make_llm_app(agent) if isinstance(agent, LlmAgent) else make_app(agent)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    if port == 0:
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        agent.service_url = f"http://{host}:{sock.getsockname()[1]}/ofp"
    return runner, agent.service_url


async def serve_forever(host: str = "127.0.0.1", ports: dict[str, int] | None = None,
                        llm_file: LlmAgentsFile | None = None, llm: LlmSettings | None = None) -> None:
    running = await start_agents(host, ports)
    if llm_file is not None:
        await start_llm_agents(llm_file, host, llm, running=running)
    try:
        for name, url in running.urls.items():
            print(f"{name}: {url}", flush=True)
        await asyncio.Event().wait()
    finally:
        await running.close()
