"""Asterisk's ARI WebSocket lockout, detected: REST answers, the WebSocket upgrade never does.

A local server plays the locked Asterisk (the real one cannot be locked on purpose: it is
shared, and only a restart frees it). The stream counts the unanswered handshakes, ``/health``
and ``convener doctor`` say it is the lockout and what to do, and all clears once handshakes
are answered again."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from convener.ari.backoff import Backoff
from convener.ari.lockout import ADVICE, TIMEOUTS_FOR_LOCKOUT, judge
from convener.ari.rest import AriClient
from convener.ari.stream import EventStream
from convener.config import load_config
from convener.ops.http import build_web_app
from convener.tools.doctor import probe_websocket


def test_verdicts() -> None:
    assert not judge(0, True).locked_out
    assert not judge(TIMEOUTS_FOR_LOCKOUT - 1, True).locked_out  # stalls of ~30 s pass by themselves
    v = judge(TIMEOUTS_FOR_LOCKOUT, True)
    assert v.locked_out and v.fix == ADVICE and "restart" in v.fix
    down = judge(5, False)
    assert not down.locked_out and "down or unreachable" in down.detail
    assert not judge(5, None).locked_out  # REST not asked: no verdict


class LockedAsterisk:
    """REST answers; the event WebSocket hangs in the handshake until ``unlock()``."""

    def __init__(self) -> None:
        self.locked = True
        self._unlocked = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0

    def unlock(self) -> None:
        self.locked = False
        self._unlocked.set()

    async def start(self) -> None:
        async def info(_r: web.Request) -> web.Response:
            return web.json_response({"system": {"version": "22.10.1"}})

        async def events(request: web.Request) -> web.StreamResponse:
            if self.locked:
                await self._unlocked.wait()  # the upgrade is never answered while locked
                raise web.HTTPServiceUnavailable()
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for _ in ws:
                pass
            return ws

        app = web.Application()
        app.router.add_get("/ari/asterisk/info", info)
        app.router.add_get("/ari/events", events)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._unlocked.set()
        if self.runner is not None:
            await self.runner.cleanup()


class App:  # what /health reads of ConvenerApp
    def __init__(self, stream: EventStream, ari: AriClient) -> None:
        self.stream, self.ari = stream, ari
        self.calls: dict[str, object] = {}

    @property
    def ready(self) -> bool:
        return self.stream.connected.is_set()


async def test_lockout_is_detected_reported_and_clears() -> None:
    fake = LockedAsterisk()
    await fake.start()
    base = f"http://127.0.0.1:{fake.port}/ari"
    stream = EventStream(f"ws://127.0.0.1:{fake.port}/ari/events", "convener", "u", "p",
                         on_event=lambda e: None, backoff=Backoff(initial=0.05, cap=0.1, fast_cap=0.1))
    stream.handshake_timeout = 0.3
    ari = AriClient(base, "u", "p")
    task = asyncio.create_task(stream.run())
    health = TestClient(TestServer(build_web_app(App(stream, ari), token="")))
    await health.start_server()
    try:
        for _ in range(100):
            if stream.handshake_timeouts >= TIMEOUTS_FOR_LOCKOUT:
                break
            await asyncio.sleep(0.05)
        assert stream.handshake_timeouts >= TIMEOUTS_FOR_LOCKOUT and not stream.connected.is_set()
        body = json.loads(await (await health.get("/health")).text())
        assert body["status"] == "degraded"
        ws = body["ari"]["websocket"]
        assert ws["locked_out"] is True and ws["rest_answers"] is True and ws["fix"] == ADVICE, ws

        cfg = load_config(None, env={})
        cfg.ari.url, cfg.ari.user, cfg.ari.password = base, "u", "p"
        check = await probe_websocket(cfg, timeout=0.3)
        assert not check.ok and "while REST answers" in check.detail and "again in a minute" in check.fix
        assert "restarted" in check.fix

        fake.unlock()  # Asterisk restarted: handshakes are answered again
        await asyncio.wait_for(stream.connected.wait(), 5)
        assert stream.handshake_timeouts == 0
        body = json.loads(await (await health.get("/health")).text())
        assert body["ari"]["connected"] is True and "websocket" not in body["ari"]
        assert (await probe_websocket(cfg, timeout=2.0)).ok
    finally:
        await stream.stop()
        await asyncio.wait_for(task, 5)
        await health.close()
        await ari.close()
        await fake.stop()
