"""``convener agents serve --llm FILE`` as a user runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import aiohttp

from fakes.openai_server import FakeOpenAI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_llm_agents_from_a_file(tmp_path: Path, fake_llm: FakeOpenAI):
    port = _free_port()
    path = tmp_path / "agents.toml"
    path.write_text(f'[llm]\nbase_url = "{fake_llm.base_url}"\nmodel = "m"\n'
                    f'[agents.concierge]\nport = {port}\nsynopsis = "Restaurants."\n'
                    'system_prompt = "You are the concierge."\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "agents", "serve", "--llm", str(path), "--no-examples",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode().strip()
        assert line == f"concierge: http://127.0.0.1:{port}/ofp"
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/ofp/manifest") as r:
            manifest = await r.json()
        assert manifest["identification"]["conversationalName"] == "Concierge"
        assert manifest["identification"]["synopsis"] == "Restaurants."
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_bad_agents_file_names_the_key(tmp_path: Path):
    path = tmp_path / "agents.toml"
    path.write_text('[agents.x]\nsystem_prompt = "Hi."\nprot = 8711\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "convener", "agents", "serve", "--llm", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert "agents.x.prot: unknown key" in err.decode()
