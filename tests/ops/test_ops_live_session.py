"""Against the real sandbox Asterisk: readiness, metrics and logs follow a real ARI session.

Uses an application name of its own, so it never takes calls from other tests. Skipped when the
sandbox is not running (CI starts it with `convener sandbox up` before the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import uuid

import aiohttp
import pytest

from convener.app.application import ConvenerApp
from convener.config import load_config
from convener.ops.http import start_ops_server
from convener.ops.logs import secrets_of, setup_logging
from convener.ops.settings import OpsSettings

pytestmark = pytest.mark.asterisk


@pytest.fixture
def sandbox_config(monkeypatch):
    monkeypatch.delenv("CONVENER_OPS_TOKEN", raising=False)
    from convener.sandbox.runtime import Sandbox

    sb = Sandbox()
    status = sb.status()
    if not status.get("ari_ready"):
        pytest.skip("sandbox Asterisk is not running: convener sandbox up")
    cfg = load_config(None, env={})
    cfg.ari.url, cfg.ari.user, cfg.ari.password = status["ari_url"], status["ari_user"], status["ari_password"]
    cfg.ari.app = f"convener-ops-{uuid.uuid4().hex[:8]}"
    return cfg


@pytest.fixture
def captured_logs():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    yield out
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the app
            await asyncio.sleep(0.02)


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as r:
        return r.status, await r.text()


async def test_ready_metrics_and_logs_follow_a_real_session(sandbox_config, captured_logs):
    cfg = sandbox_config
    setup_logging(OpsSettings(log_format="json", log_level="DEBUG"), secrets=secrets_of(cfg),
                  stream=captured_logs)
    app = ConvenerApp(cfg)
    server = await start_ops_server(app, OpsSettings(http_port=0))
    task: asyncio.Task | None = None
    try:
        async with aiohttp.ClientSession() as s:
            assert (await _get(s, server.url + "/ready"))[0] == 503
            task = asyncio.create_task(app.run())
            await asyncio.wait_for(app.stream.connected.wait(), 10)
            assert (await _get(s, server.url + "/ready"))[0] == 200
            _, text = await _get(s, server.url + "/metrics")
            assert "convener_ari_connected 1\n" in text

            # A channel entering our application becomes a call (ExternalMedia enters Stasis directly).
            chan = f"ops-test-{uuid.uuid4().hex[:8]}"
            await app.ari.external_media(app=cfg.ari.app, channel_id=chan, external_host="127.0.0.1:9")
            await _until(lambda: chan in app.calls)
            _, text = await _get(s, server.url + "/metrics")
            assert "convener_calls_active 1\n" in text and "convener_calls_total 1\n" in text
            await app.ari.hangup(chan)
            await _until(lambda: not app.calls)
            _, text = await _get(s, server.url + "/metrics")
            assert "convener_calls_active 0\n" in text

            # The network drops: not ready until the stream is back, and the reconnect is counted.
            await app.stream.drop()
            await _until(lambda: app.stream.reconnects >= 1 and app.ready)
            status, body = await _get(s, server.url + "/health")
            assert status == 200 and json.loads(body)["ari"]["reconnects"] >= 1
            _, text = await _get(s, server.url + "/metrics")
            assert "convener_ari_reconnects_total 0\n" not in text
    finally:
        await app.stop()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        await server.stop()
    logs = captured_logs.getvalue()
    records = [json.loads(line) for line in logs.splitlines()]
    assert records, "nothing was logged"
    assert any(r.get("call_id") == chan for r in records), "no log line carried the call id"
    assert cfg.ari.password not in logs
