"""Fixtures of the OFP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convener_agents.serve import RunningAgents, start_agents


@pytest.fixture
async def example_agents() -> AsyncIterator[RunningAgents]:
    running = await start_agents(ports={"flights": 0, "hotels": 0, "weather": 0})
    try:
        yield running
    finally:
        await running.close()
