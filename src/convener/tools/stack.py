"""The whole product in one process: example agents, speech, and convener on an Asterisk.

Used by ``convener demo``, the end-to-end tests and the benchmarks, so all of them run exactly
what ``convener run`` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from convener.app.application import ConvenerApp
from convener.app.startup import prepare
from convener.config import Config
from convener.ofp.settings import AgentSettings

log = logging.getLogger(__name__)


class Stack:
    def __init__(self, config: Config, *, agents: bool = True, agent_ports: dict[str, int] | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.with_agents = agents
        self.agent_ports = agent_ports
        self.say = progress or (lambda msg: log.info("%s", msg))
        self.app: ConvenerApp | None = None
        self.agents: Any = None
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Stack:
        try:
            if self.with_agents:
                from convener_agents.serve import start_agents

                ports = self.agent_ports if self.agent_ports is not None else {
                    n: 0 for n in ("flights", "hotels", "weather")}
                self.agents = await start_agents("127.0.0.1", ports)
                self.config.ofp.agents = {n: AgentSettings(url=u) for n, u in self.agents.urls.items()}
                self.say(f"example agents: {', '.join(f'{n} {u}' for n, u in self.agents.urls.items())}")
            app = ConvenerApp(self.config)
            await prepare(app, voice=True, say=self.say)
            self.app = app
            self._task = asyncio.create_task(app.run())
            await asyncio.wait_for(app.stream.connected.wait(), 15)
            self.say(f"convener connected to ARI at {self.config.ari.url} (app {self.config.ari.app})")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.app is not None:
            await self.app.stop()
            if self._task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._task, 20)
        if self.agents is not None:
            await self.agents.close()
