"""The event stream supervisor against a local WebSocket server: malformed events are skipped,
a clean close is a disconnect like any other, ApplicationReplaced stops it."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from convener.ari import events as ev
from convener.ari.backoff import Backoff
from convener.ari.stream import EventStream, StreamState

CH = {"id": "c1", "name": "PJSIP/x", "state": "Up"}


async def _server(script):
    connections = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connections.append(request.query.get("app"))
        await script(ws, len(connections))
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"ws://127.0.0.1:{port}/ari/events", connections


async def test_malformed_skipped_clean_close_reconnects():
    async def script(ws, n):
        if n == 1:
            await ws.send_str("garbage{")
            await ws.send_str(json.dumps({"type": "StasisStart"}))  # no channel
            await ws.send_str(json.dumps({"type": "Unknown"}))
            await ws.send_str(json.dumps({"type": "StasisStart", "channel": CH, "application": "a"}))
            await ws.close()  # a clean close by the server
        else:
            await ws.send_str(json.dumps({"type": "StasisEnd", "channel": CH, "application": "a"}))
            async for _ in ws:
                pass

    runner, url, conns = await _server(script)
    got: list[ev.Event] = []
    connects: list[bool] = []

    async def on_connect(first: bool) -> None:
        connects.append(first)

    stream = EventStream(url, "a", "u", "p", on_event=got.append, on_connect=on_connect,
                         backoff=Backoff(initial=0.1))
    task = asyncio.create_task(stream.run())
    try:
        for _ in range(100):
            if len(got) >= 2:
                break
            await asyncio.sleep(0.05)
        assert [type(e) for e in got] == [ev.StasisStart, ev.StasisEnd]
        assert stream.malformed == 2
        assert connects == [True, False] and stream.reconnects == 1
        assert conns == ["a", "a"]
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 5)
        await runner.cleanup()


async def test_application_replaced_stops_competing():
    async def script(ws, n):
        await ws.send_str(json.dumps({"type": "ApplicationReplaced", "application": "a"}))
        async for _ in ws:
            pass

    runner, url, conns = await _server(script)
    stream = EventStream(url, "a", "u", "p", on_event=lambda e: None, backoff=Backoff(initial=0.05))
    try:
        state = await asyncio.wait_for(stream.run(), 5)
        assert state is StreamState.REPLACED
        assert conns == ["a"]  # no reconnect
    finally:
        await runner.cleanup()


async def test_unreachable_keeps_retrying_without_crashing():
    stream = EventStream("ws://127.0.0.1:9/ari/events", "a", "u", "p", on_event=lambda e: None,
                         backoff=Backoff(initial=0.05, fast_cap=0.1))
    task = asyncio.create_task(stream.run())
    await asyncio.sleep(0.6)
    assert not task.done() and stream.backoff.attempt >= 3
    await stream.stop()
    assert await asyncio.wait_for(task, 2) is StreamState.STOPPED
