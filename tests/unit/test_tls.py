"""TLS: ARI over https/wss and agents over https work when configured, and certificates are
verified by default (a server signed by an unknown CA is refused)."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from convener.ari.errors import AriUnreachable
from convener.ari.rest import AriClient
from convener.ari.stream import EventStream

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=convener test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "san.ext")
    return {"ca": d / "ca.pem", "cert": d / "srv.pem", "key": d / "srv.key"}


async def _https(app: web.Application, pki: dict[str, Path]) -> tuple[web.AppRunner, int]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki["cert"], pki["key"])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def _fake_ari() -> web.Application:
    async def info(request: web.Request) -> web.Response:
        return web.json_response({"system": {"version": "22-test"}})

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "StasisStart", "application": "convener",
                                      "channel": {"id": "c1"}, "args": []}))
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ari/asterisk/info", info)
    app.router.add_get("/ari/events", events)
    return app


async def test_ari_over_https_and_wss(pki):
    runner, port = await _https(_fake_ari(), pki)
    try:
        base = f"https://127.0.0.1:{port}/ari"
        async with AriClient(base, "u", "p", ca_file=str(pki["ca"])) as ari:
            assert (await ari.asterisk_info())["system"]["version"] == "22-test"
        async with AriClient(base, "u", "p") as ari:  # default: verify against system CAs
            with pytest.raises(AriUnreachable, match=r"certificate|SSL"):
                await ari.asterisk_info()
        got = []
        stream = EventStream(f"wss://127.0.0.1:{port}/ari/events", "convener", "u", "p",
                             on_event=got.append, ca_file=str(pki["ca"]))
        task = asyncio.create_task(stream.run())
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        await stream.stop()
        await asyncio.wait_for(task, 5)
        assert got and got[0].type == "StasisStart"
    finally:
        await runner.cleanup()


async def test_agents_over_https(pki):
    from convener.config import load_config
    from convener.ofp.session import FloorSession
    from convener.ofp.settings import AgentSettings
    from convener_agents.base import make_app
    from convener_agents.flights import FlightsAgent

    agent = FlightsAgent("https://127.0.0.1:0/ofp")
    runner, port = await _https(make_app(agent), pki)
    agent.service_url = f"https://127.0.0.1:{port}/ofp"
    try:
        cfg = load_config(None, env={})
        cfg.ofp.agents = {"flights": AgentSettings(url=agent.service_url)}
        cfg.ofp.ca_file = str(pki["ca"])
        async with FloorSession.from_config(cfg) as session:
            replies = await session.user_turn("Book a flight to Denver")
        assert any("Denver" in r.text and not r.from_convener for r in replies), replies

        cfg.ofp.ca_file = ""  # verified against the system CAs: the agent is refused
        async with FloorSession.from_config(cfg) as session:
            replies = await session.user_turn("Book a flight to Denver")
        assert not any(r.agent_name.lower().startswith("flight") and not r.from_convener for r in replies)
        assert replies, "the caller must not be left in silence"
    finally:
        await runner.cleanup()
