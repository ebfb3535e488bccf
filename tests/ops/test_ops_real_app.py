"""The ops server and metrics read the real ConvenerApp (not connected: no Asterisk needed)."""

from __future__ import annotations

import aiohttp

from convener.app.application import ConvenerApp
from convener.config import Config
from convener.ops import metrics
from convener.ops.http import start_ops_server
from convener.ops.settings import OpsSettings


async def test_real_app_before_connecting(monkeypatch):
    monkeypatch.delenv("CONVENER_OPS_TOKEN", raising=False)
    app = ConvenerApp(Config())
    app.calls_total = 2
    app.errors = 1
    server = await start_ops_server(app, OpsSettings(http_port=0))
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(server.url + "/ready") as r:
                assert r.status == 503
            async with s.get(server.url + "/health") as r:
                health = await r.json()
            async with s.get(server.url + "/metrics") as r:
                text = await r.text()
        assert health["status"] == "degraded" and health["ari"]["connected"] is False
        assert health["ari"]["state"] == str(app.stream.state.value)
        assert health["calls"] == {"active": 0, "total": 2} and health["errors"] == 1
        assert "convener_ari_connected 0\n" in text and "convener_calls_total 2\n" in text
        assert metrics.UNHANDLED_ERRORS_TOTAL.value() == 1
    finally:
        await server.stop()
        await app.ari.close()
