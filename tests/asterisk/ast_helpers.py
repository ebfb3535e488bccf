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
    bridges = [b.id for b in await ari.bridges() if b.id.startswith(("convener-", "testcall-"))]
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


# -- a convener app for room tests, and what it leaves behind --------------------------------------


async def start_app(config, feature_factories=None) -> ConvenerApp:
    """convener's Stasis application in this event loop; by default each call only listens (no
    speech models): the room tests speak into the room's voice leg themselves."""
    from convener.app.listener import CallerListener

    app = ConvenerApp(config, feature_factories=feature_factories or [lambda call: CallerListener()])
    app._task = asyncio.create_task(app.run())  # type: ignore[attr-defined]
    await asyncio.wait_for(app.stream.connected.wait(), 10)
    return app


async def stop_app(app: ConvenerApp) -> None:
    await app.stop()
    await asyncio.wait_for(app._task, 15)  # type: ignore[attr-defined]


async def snapshot(ari: AriClient) -> set[str]:
    left = await leftovers(ari)
    return set(left["channels"]) | set(left["bridges"])


async def assert_clean_since(ari: AriClient, app: ConvenerApp, before: set[str],
                             timeout: float = 5.0) -> None:
    """Nothing a test made is left: no call tracked, no room state, no channel or bridge that
    was not in Asterisk before (another suite's leftovers are not ours to judge)."""
    try:
        await wait_until(lambda: not app.calls and not app.rooms.rooms and not app.rooms.channel_ids,
                         timeout)
    except AssertionError:
        raise AssertionError(f"convener still holds calls {sorted(app.calls)}, rooms "
                             f"{ {n: sorted(r.members) for n, r in app.rooms.rooms.items()} }, "
                             f"channels {sorted(app.rooms.channel_ids)}; in Asterisk "
                             f"{sorted(await snapshot(ari) - before)}") from None
    deadline = asyncio.get_running_loop().time() + timeout
    while (new := await snapshot(ari) - before):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"leaked resources: {sorted(new)}")
        await asyncio.sleep(0.05)


def process_sockets(table: str) -> list[str]:
    """This process's open sockets of ``/proc/self/net/<table>`` (``udp``, ``tcp``; IPv4 and
    IPv6), as their local addresses."""
    import os

    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for name in (table, table + "6"):
        try:
            with open(f"/proc/self/net/{name}") as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        found += [r[1] for r in rows if r[9] in inodes]
    return found


def process_resources() -> dict[str, int]:
    """This process's asyncio tasks and open sockets (UDP, TCP): what a call or a room may
    leave behind inside convener."""
    return {"tasks": len(asyncio.all_tasks()), "udp": len(process_sockets("udp")),
            "tcp": len(process_sockets("tcp"))}
