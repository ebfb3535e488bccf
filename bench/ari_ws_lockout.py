#!/usr/bin/env python3
"""Try to reproduce Asterisk's ARI WebSocket lockout on a private, throwaway Asterisk.

The lockout (README, "Known issues"): after a client closed its event WebSocket during a burst
of events, Asterisk 22.10.1 completed no ARI WebSocket handshake any more, while REST answered.
This never touches the shared sandbox: it starts a second Asterisk from the sandbox's root file
system on ports of its own (as tests/ops/test_ops_asterisk_samples.py does), then, per round:

1. a client connects to ``/ari/events?app=burst``;
2. ``--channels`` Local channels are originated into Stasis(burst), then all hung up at once
   (a burst of ChannelHangupRequest / StasisEnd / ChannelDestroyed ... events);
3. while the events arrive, the client leaves: ``--mode close`` sends a WebSocket close,
   ``--mode drop`` aborts the TCP connection (a network drop, no close frame), ``--mode stall``
   stops reading (a client too slow for ``websocket_write_timeout``);
4. a new client tries a handshake; no answer within 5 s while REST answers = locked out.

    sudo .venv/bin/python bench/ari_ws_lockout.py --rounds 20 --mode drop

Prints one line per round and a summary; exits 1 when the lockout was reproduced.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SANDBOX_CONF = ROOT / "src" / "convener" / "sandbox" / "conf"
PASSWORD = "lockout-repro-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Private:
    """A throwaway Asterisk in the sandbox root, on its own HTTP port and directories."""

    def __init__(self, write_timeout_ms: int | None) -> None:
        from convener.sandbox.runtime import Sandbox

        self.root = Sandbox().paths.root
        if not (self.root / "usr" / "sbin" / "asterisk").exists():
            raise SystemExit("the sandbox Asterisk is not built: convener sandbox up")
        self.rel = f"/tmp/convener-lockout-{uuid.uuid4().hex[:8]}"
        self.dir = self.root / self.rel.lstrip("/")
        self.port = _free_port()
        self.write_timeout_ms = write_timeout_ms
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        for d in ("etc", "run", "log", "spool", "lib"):
            (self.dir / d).mkdir(parents=True)
        etc = self.dir / "etc"
        conf = (SANDBOX_CONF / "asterisk.conf").read_text()
        for key, sub in (("astetcdir", "etc"), ("astrundir", "run"), ("astlogdir", "log"),
                         ("astspooldir", "spool"), ("astdbdir", "lib")):
            conf = "\n".join(f"{key} => {self.rel}/{sub}" if line.startswith(f"{key} =>") else line
                             for line in conf.splitlines())
        (etc / "asterisk.conf").write_text(conf + "\n")
        shutil.copy(SANDBOX_CONF / "modules.conf", etc / "modules.conf")
        (etc / "logger.conf").write_text("[general]\n[logfiles]\nfull => notice,warning,error\n")
        (etc / "http.conf").write_text(f"[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = {self.port}\n")
        timeout = f"websocket_write_timeout = {self.write_timeout_ms}\n" if self.write_timeout_ms else ""
        (etc / "ari.conf").write_text(f"[general]\nenabled = yes\n{timeout}\n[convener]\ntype = user\n"
                                      f"read_only = no\npassword = {PASSWORD}\n")
        (etc / "extensions.conf").write_text("[repro]\nexten => s,1,Answer()\n same => n,Wait(60)\n")
        (etc / "pjsip.conf").write_text("")
        self.proc = subprocess.Popen(
            ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{self.rel}/etc/asterisk.conf", "-f", "-n"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", "-C", f"{self.rel}/etc/asterisk.conf",
                            "-rx", "core stop now"], capture_output=True, timeout=15)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


async def rest_ok(http: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with http.get(f"{base}/asterisk/info?only=system", timeout=aiohttp.ClientTimeout(total=3)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def handshake(http: aiohttp.ClientSession, ws_url: str, app: str, timeout: float = 5.0) -> bool:
    try:
        ws = await asyncio.wait_for(http.ws_connect(ws_url, params={"app": app}), timeout)
    except TimeoutError:
        return False
    await ws.close()
    return True


async def one_round(http: aiohttp.ClientSession, base: str, ws_url: str, channels: int, mode: str,
                    subscribe_all: bool = False) -> str:
    params = {"app": "burst", "subscribeAll": "true" if subscribe_all else "false"}
    try:
        ws = await asyncio.wait_for(http.ws_connect(ws_url, params=params), 5)
    except TimeoutError:
        return "LOCKED at the round's first handshake" if await rest_ok(http, base) else "down"
    ids = [f"repro-{uuid.uuid4().hex[:10]}" for _ in range(channels)]

    async def post(cid: str) -> int:
        async with http.post(f"{base}/channels", params={"endpoint": "Local/s@repro", "app": "burst",
                                                        "channelId": cid}) as r:
            await r.read()
            return r.status

    statuses = await asyncio.gather(*(post(c) for c in ids))
    if any(s != 200 for s in statuses):
        raise RuntimeError(f"originate answered {sorted(set(statuses))}")
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            while seen < channels:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                seen += '"StasisStart"' in msg.data

    async def hangup(cid: str) -> None:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.delete(f"{base}/channels/{cid}") as r:
                await r.read()

    hangups = asyncio.gather(*(hangup(c) for c in ids))
    await asyncio.sleep(0.005)  # the burst has begun
    if mode == "close":
        await ws.close()
    elif mode == "drop":
        transport = ws._response.connection.transport if ws._response.connection else None  # type: ignore[union-attr]
        if transport is not None:
            transport.abort()
    await hangups
    if mode == "stall":
        await asyncio.sleep(2.0)  # events pile up unread
        await ws.close()
    ok = await handshake(http, ws_url, f"probe-{uuid.uuid4().hex[:6]}")
    verdict = "ok" if ok else ("LOCKED" if await rest_ok(http, base) else "down")
    return f"{verdict} ({seen}/{channels} StasisStart seen)"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--channels", type=int, default=40)
    ap.add_argument("--mode", choices=("close", "drop", "stall"), default="close")
    ap.add_argument("--recheck", type=float, default=30.0, help="seconds before checking a lockout again")
    ap.add_argument("--subscribe-all", action="store_true", help="the client subscribes to all events")
    ap.add_argument("--write-timeout-ms", type=int, default=None,
                    help="websocket_write_timeout in the private ari.conf (default: Asterisk's)")
    args = ap.parse_args()
    inst = Private(args.write_timeout_ms)
    inst.start()
    base, ws_url = f"http://127.0.0.1:{inst.port}/ari", f"ws://127.0.0.1:{inst.port}/ari/events"
    auth = {"Authorization": "Basic " + base64.b64encode(f"convener:{PASSWORD}".encode()).decode()}
    results: list[str] = []
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            deadline = time.monotonic() + 30
            while not await rest_ok(http, base):
                if time.monotonic() > deadline:
                    raise SystemExit("the private Asterisk did not start")
                await asyncio.sleep(0.2)
            for i in range(args.rounds):
                t0 = time.monotonic()
                try:
                    r = await one_round(http, base, ws_url, args.channels, args.mode, args.subscribe_all)
                except Exception as e:
                    r = f"error {type(e).__name__}: {e}"
                results.append(r)
                print(f"round {i + 1}: {r} ({time.monotonic() - t0:.1f} s)", flush=True)
                if r.startswith("LOCKED"):
                    # A real lockout lasts until a restart: how long until a handshake is answered?
                    since = time.monotonic()
                    still = True
                    while time.monotonic() - since < args.recheck:
                        if await handshake(http, ws_url, "recheck", timeout=2.0):
                            still = False
                            break
                        await asyncio.sleep(0.5)
                    gone = time.monotonic() - since + 5.0  # + the first handshake's wait
                    print("still locked out after the recheck" if still else
                          f"handshakes answered again {gone:.1f} s after the first unanswered one")
                    results[-1] += " (lasting)" if still else f" (passed after {gone:.1f} s)"
                    break
    finally:
        inst.stop()
    locked = sum(r.startswith("LOCKED") and "lasting" in r for r in results)
    sub = " subscribeAll" if args.subscribe_all else ""
    print(f"mode {args.mode}{sub}, {args.channels} channels, write timeout {args.write_timeout_ms or 'default'}: "
          f"{len(results)} round(s), locked out {locked} time(s)")
    return 1 if locked else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
