"""`convener run` as a user runs it: its own process, a config file, the ops endpoints, the OFP
endpoint, a call through it, transcripts kept, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys

import aiohttp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_run_serves_calls_health_and_stops_cleanly(creds, tmp_path, ari):
    ops_port, ofp_port = _free_port(), _free_port()
    # Judge only what this test makes: another test's test caller may still be tearing down.
    before = {c.id for c in await ari.channels()}
    cfg = tmp_path / "convener.toml"
    cfg.write_text(f"""
[ari]
url = "{creds.ari_url}"
user = "{creds.ari_user}"

[ops]
http_port = {ops_port}
state_dir = "{tmp_path}"

[ofp]
listen_port = {ofp_port}
""")
    env = {"CONVENER_ARI_PASSWORD": creds.ari_password, "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "run", "--config", str(cfg), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{ops_port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):  # models load first (a few seconds)
                try:
                    async with http.get(f"{base}/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("convener run never became ready")
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
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert creds.ari_password not in log
    assert (tmp_path / "transcripts.sqlite3").exists() or list(tmp_path.glob("*.sqlite3")), log[-2000:]
    bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
    assert not bridges and not [c for c in await ari.channels() if c.id not in before]
