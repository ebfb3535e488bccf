"""AudioSocket: the third media transport (ARI ``externalMedia`` with ``encapsulation=audiosocket``,
``transport=tcp``; Asterisk's chan_audiosocket connects to us).

The protocol (Asterisk's res_audiosocket): messages of one kind byte, a 2-byte big-endian
length and the payload. ``0x01`` the call's UUID (16 bytes, first), ``0x10`` audio (signed
linear 16-bit little-endian mono, 8 kHz; ``slin16`` 16 kHz where Asterisk accepts it),
``0x03`` a DTMF digit, ``0x00`` hang-up, ``0xff`` an error. Audio goes both ways in 20 ms
frames; we send ours as the pacer gives it.

We listen on our own port for each leg (like RTP's one socket per call) and accept one
connection: the one whose UUID is the leg's. Anything else is closed and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Self

from convener.audio import AudioFrame
from convener.media.formats import LegFormat, leg_format
from convener.media.settings import MediaSettings
from convener.media.transport import FrameQueue, TransportStats

log = logging.getLogger(__name__)

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
MAX_PAYLOAD = 4096


def message(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


class AudioSocketTransport:
    def __init__(self, settings: MediaSettings | None = None, format: str | None = None) -> None:
        self.settings = settings or MediaSettings()
        name = format or self.settings.format
        self.format: LegFormat = leg_format("slin" if name == "ulaw" else name, "audiosocket")
        self.stats = TransportStats()
        self.uuid = str(uuid.uuid4())
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._queue = FrameQueue(self.settings.inbound_queue_frames, self.stats)
        self._closed = False
        self._next_ts: float | None = None
        self.hung_up = asyncio.Event()

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def asterisk_format(self) -> str:
        """What to ask ``externalMedia`` for."""
        return self.format.name

    @property
    def external_host(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.settings.rtp_host, 0)

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind, payload = await asyncio.wait_for(self._read(reader), 5.0)
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, OSError):
            kind, payload = -1, b""
        if self._writer is not None or self._closed or kind != KIND_UUID or len(payload) != 16 \
                or str(uuid.UUID(bytes=payload)) != self.uuid:
            self.stats.dropped_foreign += 1
            writer.close()
            return
        self._writer = writer
        self._connected.set()
        self._reader_task = asyncio.current_task()  # type: ignore[assignment]
        try:
            await self._read_loop(reader)
        finally:
            self._queue.close()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readexactly(3)
        n = struct.unpack(">H", head[1:])[0]
        if n > MAX_PAYLOAD:
            raise ValueError(f"AudioSocket message of {n} bytes")
        return head[0], await reader.readexactly(n)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        dur = self.format.ptime_ms / 1000
        while not self._closed:
            try:
                kind, payload = await self._read(reader)
            except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
                break
            self.stats.packets_in += 1
            if kind == KIND_AUDIO and payload:
                pcm = self.format.decode(payload)
                now = time.monotonic()
                seconds = len(pcm) / 2 / self.sample_rate
                # TCP gives no timestamps: frames are laid end to end on our clock, and
                # re-anchored on arrival when they fall behind by more than one frame.
                ts = now - seconds if self._next_ts is None or now - seconds - self._next_ts > dur \
                    else self._next_ts
                self._next_ts = ts + seconds
                self._queue.put(AudioFrame(pcm, self.sample_rate, ts))
            elif kind == KIND_HANGUP:
                self.hung_up.set()
                break
            elif kind == KIND_ERROR:
                log.warning("AudioSocket %s: Asterisk reports an error %r", self.uuid, payload[:1])
            elif kind != KIND_DTMF:
                self.stats.dropped_garbage += 1

    def frames(self) -> AsyncIterator[AudioFrame]:
        return self._queue.iterate()

    def send(self, pcm_frame: bytes) -> None:
        w = self._writer
        if w is None or self._closed or w.is_closing():
            self.stats.dropped_out += 1
            return
        data = self.format.encode(pcm_frame)
        w.write(message(KIND_AUDIO, data))
        self.stats.frames_out += 1
        self.stats.bytes_out += len(data)

    def clear_output(self) -> None:
        """Barge-in: nothing of ours waits here (the pacer holds the reply and is flushed); what
        is in the kernel's socket buffer, a frame or two, still plays."""

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.write(message(KIND_HANGUP))
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
