"""convener SIGKILLed in the middle of a spoken booking and started again, as systemd does: the
caller is adopted, hears that convener is back and the last question again, and the booking
goes on with the same agent and its context. Nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from convener.app.callcheck import CallReport, VoiceCaller, _turn
from convener.app.testcall import TestCaller
from convener.config import load_config
from convener_agents.serve import start_agents


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _words(text: str) -> str:
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


async def test_sigkill_between_two_turns_the_booking_goes_on(creds, tmp_path, ari):
    before = {c.id for c in await ari.channels()}
    agents = await start_agents(ports={"flights": 0, "hotels": 0, "weather": 0})
    ops_port, ofp_port = _free_port(), _free_port()
    tables = "\n".join(f'[ofp.agents.{n}]\nurl = "{u}"\n' for n, u in agents.urls.items())
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
service_url = "http://127.0.0.1:{ofp_port}/ofp"
inbound_secret_env = "CONVENER_TEST_INBOUND_SECRET"

{tables}
""")
    env = {"CONVENER_ARI_PASSWORD": creds.ari_password, "PATH": "/usr/bin:/bin",
           "CONVENER_TEST_INBOUND_SECRET": uuid.uuid4().hex,
           "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(tmp_path)}
    for var in ("HF_HOME", "XDG_CACHE_HOME", "CONVENER_MODELS_DIR"):  # where the models are
        if var in os.environ:
            env[var] = os.environ[var]
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    convener = Convener(cfg, env, ops_port, tmp_path / "convener.log")
    config = load_config(None, env={})
    config.ari.url, config.ari.user, config.ari.password = creds.ari_url, creds.ari_user, creds.ari_password
    voice = VoiceCaller(config)
    await voice.warm()
    lines = ["Book a flight to Denver", "From Boston", "Next Friday"]
    audio = {t: await voice.speak(t) for t in lines}
    report = CallReport()
    say = print
    outage_s = None
    back = ""
    try:
        await convener.start()
        await convener.ready()
        async with TestCaller(creds.ari_url, creds.ari_user, creds.ari_password,
                              app=f"convener-caller-{uuid.uuid4().hex[:8]}") as caller:
            leg = await caller.place(config.calls.dialplan_extension, config.calls.dialplan_context)
            try:
                await leg.wait_answered()
                media = await leg.open_media(config.media)
                await leg.wait_in_bridge(timeout=10)
                first = await media.wait_voice_after(time.monotonic(), 6.0)
                assert first is not None, "no greeting"
                await media.wait_quiet(1.2, 15.0, since=first)
                for said in lines[:2]:
                    await _turn(leg, voice, said, audio[said], report, 10.0, 1.2, say)
                asked = _words(report.turns[1].heard)
                assert "date" in asked or "when" in asked, report

                # Between two caller turns: SIGKILL, then started again at once.
                killed = time.monotonic()
                convener.kill()
                await convener.proc.wait()  # type: ignore[union-attr]
                await convener.start()
                heard_at = await media.wait_voice_after(killed, 90.0)
                assert heard_at is not None, "the caller never heard convener again:\n" + convener.tail()
                outage_s = heard_at - killed
                await media.wait_quiet(1.2, 20.0, since=heard_at)
                back = _words(await voice.hear(media.audio_between(heard_at - 0.1, time.monotonic())))
                print(f"outage heard by the caller, SIGKILL -> voice: {outage_s:.2f} s; heard {back!r}")
                assert "lost you" in back or "moment" in back, back
                assert "date" in back or "when" in back, back  # the question asked again

                await _turn(leg, voice, lines[2], audio[lines[2]], report, 10.0, 1.2, say)
                answer = _words(report.turns[2].heard)
                assert "book" in answer or "shall" in answer, answer  # the booking goes on
                assert "sorry" not in answer and "none of our agents" not in answer, answer
            finally:
                await leg.hangup()
        assert report.turns[2].latency_ms is not None
    finally:
        code = await convener.stop()
        await agents.close()
    log = convener.tail(200000)
    assert code == 0, log[-3000:]
    assert "resync: adopting caller" in log and "resumed (floor: tag:" in log, log[-3000:]
    assert creds.ari_password not in log and env["CONVENER_TEST_INBOUND_SECRET"] not in log
    # One conversation in the transcripts, across the restart; no floor state left.
    db = sqlite3.connect(tmp_path / "transcripts.sqlite3")
    try:
        convs = db.execute("SELECT conversation_id, ended_at FROM conversations").fetchall()
        assert len(convs) == 1 and convs[0][1] is not None, convs
        turns = db.execute("SELECT speaker, text FROM turns ORDER BY at, id").fetchall()
        said = [_words(t).split()[0] for s, t in turns if s == "caller"]
        assert said == ["book", "from", "next"], turns  # every recognised turn, in one conversation
        assert ("convener", "Sorry, I lost you for a moment.") in turns, turns
        assert db.execute("SELECT COUNT(*) FROM floor_states").fetchone() == (0,)
    finally:
        db.close()
    # Nothing left in Asterisk.
    deadline = time.monotonic() + 10
    while True:
        bridges = [b.id for b in await ari.bridges() if b.id.startswith("convener-")]
        channels = [c.id for c in await ari.channels() if c.id not in before]
        if not bridges and not channels:
            break
        assert time.monotonic() < deadline, (bridges, channels)
        await asyncio.sleep(0.1)
