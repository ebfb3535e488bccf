"""Real SIP phones for the Asterisk tests: Debian's baresip on the sandbox's PJSIP endpoints.

A phone's microphone is a WAV file (aufile), its loudspeaker is recorded (sndfile: one
``*-dec.wav`` per call). ``Phone`` keeps one baresip process registered and drives it over
ctrl_tcp (netstring-framed JSON: commands ``dial``/``hangup``/``quit``, and events such as
``REGISTER_OK``, ``CALL_ESTABLISHED``, ``CALL_CLOSED``), so one phone can join and leave a room
many times."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import wave
from pathlib import Path
from typing import Any

import numpy as np

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
HAVE_BARESIP = bool(BARESIP) and MODULES.exists()
WHY_NOT = "needs Debian's baresip-core (apt-get install baresip-core)"


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def write_config(d: Path, user: str, password: str, sip_port: int, mic: Path, listen: int | None = None,
                 ctrl_port: int | None = None, regint: int = 60) -> None:
    """baresip's ``config`` and ``accounts`` in folder ``d`` (its -f), recordings into ``d``.
    ``regint=0``: the phone does not register (it calls through a proxy); ``listen`` None: a
    free port."""
    if listen is None:
        listen = free_sip_port(avoid=ctrl_port or 0)
    ctrl = (f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}\nmodule_app ctrl_tcp.so\n"
            if ctrl_port is not None else "module stdio.so\n")
    (d / "config").write_text(f"""poll_method epoll
sip_listen 127.0.0.1:{listen}
sip_transports udp
audio_source aufile,{mic}
audio_player aubridge,nowhere
audio_alert aubridge,nowhere
audio_srate 8000
audio_channels 1
snd_path {d}
module_path {MODULES}
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app account.so
module_app menu.so
{ctrl}""")
    (d / "accounts").write_text(f"<sip:{user}@127.0.0.1:{sip_port}>;auth_pass={password};"
                                f"regint={regint};audio_codecs=PCMU\n")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tcp_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_sip_port(avoid: int) -> int:
    """A port free for UDP and TCP (baresip binds both for SIP) whose next port is free for TCP
    too (baresip 1.0 opens its SIP/TLS transport on ``sip_listen`` + 1 even when
    ``sip_transports`` says udp), other than ``avoid``. Only free when asked: another process
    may take it before baresip binds, which ``Phone.start`` retries."""
    while True:
        port = free_port(socket.SOCK_DGRAM)
        if avoid in (port, port + 1) or port >= 65535:
            continue
        if _tcp_free(port) and _tcp_free(port + 1):
            return port


def read_heard(path: Path) -> np.ndarray:
    """A phone's recording as int16 at 8 kHz."""
    with wave.open(str(path), "rb") as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    if rate != 8000:
        from convener.audio import resample_pcm16

        pcm = resample_pcm16(pcm, rate, 8000)
    return np.frombuffer(pcm, dtype="<i2")


class _PortTaken(Exception):
    """baresip exited because a port chosen for it was taken meanwhile."""


class Phone:
    """One baresip phone (``user`` of the sandbox's pjsip.conf) in folder ``d``."""

    def __init__(self, user: str, password: str, sip_port: int, d: Path, mic_seconds: int = 600,
                 regint: int = 60) -> None:
        self.user, self.password, self.sip_port, self.dir = user, password, sip_port, d
        self.mic_seconds, self.regint = mic_seconds, regint
        self.events: list[dict[str, Any]] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._log: Any = None

    async def start(self, timeout: float = 10.0, attempts: int = 4) -> None:
        """Start baresip; a port taken between choosing it and baresip binding it (other
        phones, Asterisk's RTP and the test's own sockets share loopback) means a new try on new
        ports, not a failed test."""
        for attempt in range(attempts):
            try:
                await self._start_once(timeout)
                return
            except _PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(f"{self.user}: baresip found its ports taken "
                                       f"{attempts} times:\n{self.log()}") from None

    async def _start_once(self, timeout: float) -> None:
        assert BARESIP is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        mic = self.dir / "mic.wav"
        write_wav(mic, bytes(8000 * 2 * self.mic_seconds))  # a silent caller
        ctrl = free_port()
        write_config(self.dir, self.user, self.password, self.sip_port, mic,
                     listen=free_sip_port(avoid=ctrl), ctrl_port=ctrl, regint=self.regint)
        self._log = (self.dir / "baresip.log").open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(self.dir), stdin=asyncio.subprocess.DEVNULL, stdout=self._log,
            stderr=asyncio.subprocess.STDOUT, cwd=self.dir)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reader, self._writer = await asyncio.open_connection("127.0.0.1", ctrl)
                break
            except OSError:
                if self._proc.returncode is not None and "Address already in use" in self.log():
                    self._log.close()
                    raise _PortTaken from None
                if loop.time() > deadline or self._proc.returncode is not None:
                    raise RuntimeError(f"{self.user}: baresip's ctrl_tcp never answered:\n{self.log()}") from None
                await asyncio.sleep(0.05)
        # Dialling needs no registration (Asterisk challenges the INVITE with the phone's
        # credentials), and REGISTER_OK may come before ctrl_tcp is connected: not waited for.
        self._reader_task = asyncio.create_task(self._read(reader))

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "baresip.log").read_text(errors="replace")[-3000:]
        return ""

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:
                size = await reader.readuntil(b":")
                data = await reader.readexactly(int(size[:-1]) + 1)  # the payload and its ","
                self.events.append(json.loads(data[:-1]))
                self._changed.set()

    async def wait_event(self, kind: str, timeout: float, since: int = 0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for e in self.events[since:]:
                if e.get("event") and e.get("type") == kind:
                    return e
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{self.user}: no {kind} within {timeout}s; events "
                                   f"{[e.get('type') for e in self.events]}\n{self.log()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    async def dial(self, uri: str) -> int:
        """Dial; returns the event index to wait from (``wait_event(..., since=)``)."""
        mark = len(self.events)
        await self.command("dial", uri)
        return mark

    async def hangup(self) -> int:
        mark = len(self.events)
        await self.command("hangup")
        return mark

    def recordings(self) -> list[Path]:
        return sorted(self.dir.glob("*-dec.wav"), key=lambda p: p.stat().st_mtime)

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.command("quit")
            try:
                await asyncio.wait_for(self._proc.wait(), 5.0)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        if self._log is not None:
            self._log.close()
