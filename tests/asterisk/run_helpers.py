"""`convener run` as its own process, as a user or systemd runs it: its config file, started,
waited for, stopped with SIGTERM or killed with SIGKILL (run, console and restart tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def words(text: str) -> str:
    """Lower case without punctuation, for comparing what was heard."""
    return text.lower().replace(".", " ").replace(",", " ").replace("?", " ")


class Convener:
    """`convener run` in its own process, started and killed like a service."""

    def __init__(self, cfg: Path, env: dict[str, str], ops_port: int, log: Path) -> None:
        self.cfg, self.env, self.ops_port, self.log = cfg, env, ops_port, log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "convener", "run", "--config", str(self.cfg), env=self.env,
            stdout=out, stderr=asyncio.subprocess.STDOUT)
        out.close()

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{self.ops_port}/ready") as r:
                        if r.status == 200:
                            return
                assert self.proc is not None and self.proc.returncode is None, self.tail()
                await asyncio.sleep(0.1)
        raise AssertionError("convener run never became ready:\n" + self.tail())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""




def write_config(tmp_path: Path, creds, agent_urls: dict[str, str] | None = None, *,
                 ops_extra: str = "") -> tuple[Path, dict[str, str], int, int]:
    """A config for `convener run` on the sandbox with these agents (None: the built-in
    examples); returns (file, env, ops port, OFP port)."""
    ops_port, ofp_port = free_port(), free_port()
    tables = "\n".join(f'[ofp.agents.{n}]\nurl = "{u}"\n' for n, u in (agent_urls or {}).items())
    cfg = tmp_path / "convener.toml"
    cfg.write_text(f"""
[ari]
url = "{creds.ari_url}"
user = "{creds.ari_user}"

[ops]
http_port = {ops_port}
state_dir = "{tmp_path}"
{ops_extra}

[ofp]
listen_port = {ofp_port}
service_url = "http://127.0.0.1:{ofp_port}/ofp"
inbound_secret_env = "CONVENER_TEST_INBOUND_SECRET"

{tables}
""")
    env = {"CONVENER_ARI_PASSWORD": creds.ari_password, "PATH": "/usr/bin:/bin",
           "CONVENER_TEST_INBOUND_SECRET": uuid.uuid4().hex,
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": os.environ.get("HOME", str(tmp_path))}
    for var in ("HF_HOME", "XDG_CACHE_HOME", "CONVENER_MODELS_DIR"):  # where the models are
        if var in os.environ:
            env[var] = os.environ[var]
    return cfg, env, ops_port, ofp_port


@dataclass
class SpokenRig:
    """What a spoken test against `convener run` needs: example agents, the convener process
    (not started), the test caller's config and voice, and the caller's lines already spoken."""

    agents: Any
    convener: Convener
    config: Any
    voice: Any
    audio: dict[str, Any]


async def spoken_rig(tmp_path: Path, creds, lines: list[str]) -> SpokenRig:
    from convener.config import load_config
    from convener.tools.callcheck import VoiceCaller
    from convener_agents.serve import start_agents

    agents = await start_agents(ports={"flights": 0, "hotels": 0, "weather": 0})
    cfg, env, ops_port, _ = write_config(tmp_path, creds, agents.urls)
    convener = Convener(cfg, env, ops_port, tmp_path / "convener.log")
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    voice = VoiceCaller(config)
    await voice.warm()
    return SpokenRig(agents, convener, config, voice, {t: await voice.speak(t) for t in lines})


def pid_sockets(pid: int, table: str) -> list[str]:
    """Open sockets of process ``pid`` in ``/proc/<pid>/net/<table>`` (and the IPv6 table)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = []
    for name in (table, table + "6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{name}") as f:
            found += [r[1] for r in (line.split() for line in f.readlines()[1:]) if r[9] in inodes]
    return found
