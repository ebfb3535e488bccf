"""Helpers for the Asterisk tests."""

from __future__ import annotations

import asyncio

from convener.app.application import ConvenerApp
from convener.ari.rest import AriClient


async def wait_until(pred, timeout: float = 5.0, step: float = 0.02) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)


async def leftovers(ari: AriClient, app: ConvenerApp | None = None) -> dict[str, list[str]]:
    """What convener (or a test call) left in Asterisk."""
    chans = [c.id for c in await ari.channels()]
    bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
    return {"channels": chans, "bridges": bridges}


async def assert_clean(ari: AriClient, app: ConvenerApp | None = None, timeout: float = 5.0) -> None:
    """No calls tracked, and nothing left in Asterisk: no channels, none of our bridges."""
    if app is not None:
        await wait_until(lambda: not app.calls, timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = await leftovers(ari)
        if not left["channels"] and not left["bridges"]:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"leaked resources: {left}")
        await asyncio.sleep(0.05)


def room_callers(bridge) -> list[str]:
    """A room bridge's members less its one silent anchor (calls.room_anchor, docs/decisions.md "Rooms")."""
    anchors = [c for c in bridge.channels if "-anchor-" in c]
    assert len(anchors) <= 1, f"more than one anchor in room bridge {bridge.id}: {anchors}"
    return [c for c in bridge.channels if c not in anchors]
