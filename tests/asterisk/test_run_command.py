"""`convener run` as a user runs it: its own process, a config file, the ops endpoints, the OFP
endpoint, a call through it, transcripts kept, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from run_helpers import Convener, write_config


async def test_run_serves_calls_health_and_stops_cleanly(creds, tmp_path, ari):
    # Judge only what this test makes: another test's test caller may still be tearing down.
    before = {c.id for c in await ari.channels()}
    cfg, env, ops_port, ofp_port = write_config(tmp_path, creds)  # the built-in example agents
    convener = Convener(cfg, env, ops_port, tmp_path / "convener.log")
    await convener.start()
    base = f"http://127.0.0.1:{ops_port}"
    try:
        await convener.ready()  # models load first (a few seconds)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/health") as r:
                health = await r.json()
            assert health["ari"]["connected"] is True and health["calls"]["active"] == 0
            assert set(health["agents"]) == {"flights", "hotels", "weather"}
            async with http.get(f"http://127.0.0.1:{ofp_port}/ofp/manifest") as r:
                assert (await r.json())["identification"]["openFloorRoles"] == {"convener": True}
            call = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "convener", "call", "--config", str(cfg), "--hold", "1", "--json",
                env=env, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(call.communicate(), 60)
            assert json.loads(out)["ok"] is True
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
            assert "convener_calls_total 1" in metrics, metrics[:2000]
    finally:
        rc = await convener.stop()
    log = convener.tail(1_000_000)
    assert rc == 0, log[-3000:]
    assert creds.ari_password not in log
    assert (tmp_path / "transcripts.sqlite3").exists() or list(tmp_path.glob("*.sqlite3")), log[-2000:]
    bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
    assert not bridges and not [c for c in await ari.channels() if c.id not in before]
