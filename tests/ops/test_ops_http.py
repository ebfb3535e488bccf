from __future__ import annotations

import aiohttp
import pytest

from convener.ari.stream import StreamState
from convener.ops import metrics
from convener.ops.http import OpsServerError, start_ops_server
from convener.ops.settings import TOKEN_ENV, OpsSettings, is_loopback_host


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)


async def _get(url: str, token: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


async def test_endpoints_follow_the_app(fake_app):
    server = await start_ops_server(fake_app, OpsSettings(http_port=0),
                                    agents_health=lambda: {"flights": {"ok": True}})
    try:
        assert server.port > 0
        status, _, _ = await _get(server.url + "/live")
        assert status == 200
        status, _, body = await _get(server.url + "/ready")
        assert status == 503 and '"disconnected"' in body
        fake_app.stream.state = StreamState.CONNECTED
        fake_app.calls = {"c1": object()}
        fake_app.calls_total = 3
        status, _, _ = await _get(server.url + "/ready")
        assert status == 200
        async with aiohttp.ClientSession() as s, s.get(server.url + "/health") as r:
            health = await r.json()
        assert health["status"] == "ok"
        assert health["ari"] == {"state": "connected", "connected": True, "reconnects": 0}
        assert health["calls"] == {"active": 1, "total": 3}
        assert health["agents"] == {"flights": {"ok": True}}
        status, ctype, text = await _get(server.url + "/metrics")
        assert status == 200 and ctype.startswith("text/plain")
        assert "convener_calls_active 1\n" in text
        assert "convener_ari_connected 1\n" in text
        assert "convener_calls_total 3\n" in text
    finally:
        await server.stop()
    # stopping unbinds the app: the registry no longer reads it
    fake_app.calls = {}
    assert "convener_calls_active 1\n" in metrics.REGISTRY.render()


async def test_async_and_failing_agents_health(fake_app):
    async def agents() -> dict:
        return {"hotels": {"ok": False, "error": "timeout"}}

    server = await start_ops_server(fake_app, OpsSettings(http_port=0), agents_health=agents)
    try:
        async with aiohttp.ClientSession() as s, s.get(server.url + "/health") as r:
            assert (await r.json())["agents"] == {"hotels": {"ok": False, "error": "timeout"}}
    finally:
        await server.stop()

    def broken() -> dict:
        raise RuntimeError("agent registry gone")

    fake_app.stream.state = StreamState.CONNECTED
    server = await start_ops_server(fake_app, OpsSettings(http_port=0), agents_health=broken)
    try:
        async with aiohttp.ClientSession() as s, s.get(server.url + "/health") as r:
            body = await r.json()
        assert r.status == 200
        assert body["status"] == "degraded"
        assert "agent registry gone" in body["agents"]["error"]
    finally:
        await server.stop()


async def test_refuses_to_bind_off_loopback_without_token(fake_app):
    with pytest.raises(OpsServerError, match=TOKEN_ENV):
        await start_ops_server(fake_app, OpsSettings(http_host="0.0.0.0", http_port=0))


async def test_token_guards_everything_but_live(fake_app, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token-value")
    fake_app.stream.state = StreamState.CONNECTED
    server = await start_ops_server(fake_app, OpsSettings(http_host="0.0.0.0", http_port=0))
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert (await _get(base + "/live"))[0] == 200
        for path in ("/ready", "/health", "/metrics"):
            assert (await _get(base + path))[0] == 401, path
            assert (await _get(base + path, token="wrong"))[0] == 401, path
            assert (await _get(base + path, token="s3cret-token-value"))[0] == 200, path
    finally:
        await server.stop()


async def test_token_from_settings_applies_on_loopback_too(fake_app):
    server = await start_ops_server(fake_app, OpsSettings(http_port=0, token="abcdef123456"))
    try:
        assert (await _get(server.url + "/metrics"))[0] == 401
        assert (await _get(server.url + "/metrics", token="abcdef123456"))[0] == 200
    finally:
        await server.stop()


async def test_port_in_use_is_a_clear_error(fake_app):
    first = await start_ops_server(fake_app, OpsSettings(http_port=0))
    try:
        with pytest.raises(OpsServerError, match="cannot listen"):
            await start_ops_server(fake_app, OpsSettings(http_port=first.port))
    finally:
        await first.stop()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("ops.example.org", False),
])
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback
