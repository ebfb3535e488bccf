"""One Deepgram streaming recognition over WebSocket, surviving dropped connections.

Shared by the live (``/v1/listen``, Nova) and Flux (``/v2/listen``) sessions: connecting with the
``Authorization: Token`` header, sending audio (μ-law at 8 kHz, linear16 at 16 kHz), KeepAlive
while no audio flows, CloseStream on close, and reconnecting when the connection drops: audio
not yet acknowledged by a final result (up to ``replay_audio_s``) is replayed into the new
connection. After ``reconnect_attempts`` failures the event stream ends with an ``AsrError``
(``FallbackAsr`` then switches to the offline recogniser without ending the call).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from convener.audio import pcm16_to_ulaw
from convener.speech.asr import AsrAuthError, AsrError, AsrEvent, EndOfTurn, EventQueue
from convener.speech.bias import BiasContext
from convener.speech.deepgram_common import auth_headers, handshake_error, url
from convener.speech.settings import DeepgramSettings

log = logging.getLogger("convener.speech.deepgram")

FINALIZE_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 2.0


class DeepgramStreamSession:
    """Base class; subclasses set ``path``, ``params()`` and ``on_message()``."""

    path = "/v1/listen"
    provider = "deepgram"

    def __init__(self, settings: DeepgramSettings, http: aiohttp.ClientSession, key: str, sample_rate: int) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"Deepgram session takes 8000 or 16000 Hz, got {sample_rate}")
        self.settings = settings
        self.sample_rate = sample_rate
        self.encoding = "mulaw" if sample_rate == 8000 else "linear16"
        self._bytes_per_s = sample_rate * (1 if self.encoding == "mulaw" else 2)
        self._http = http
        self._key = key
        self._queue = EventQueue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._recv_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._finalize_timer: asyncio.Task[None] | None = None
        self._closing = False
        self._failed: AsrError | None = None
        self._connected = asyncio.Event()
        self._last_send = time.monotonic()
        # Replay buffer: (logical stream offset in seconds, encoded audio)
        self._sent_s = 0.0
        self._conn_base_s = 0.0  # logical offset of the current connection's t=0
        self._acked_s = 0.0
        self._replay: deque[tuple[float, bytes]] = deque()
        self.connections = 0
        self.request_ids: list[str] = []
        self.errors: list[str] = []
        # turn state
        self.turn_texts: list[str] = []
        self.finalize_pending = False
        self.bias: BiasContext | None = None  # set before connect(): goes into the query

    # --- subclass hooks -----------------------------------------------------------------------

    def params(self) -> dict[str, object]:
        raise NotImplementedError

    def on_message(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def finalize_message(self) -> dict[str, str]:
        return {"type": "Finalize"}

    # --- connection ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return url(self.settings, self.path, self.params(), websocket=True)

    async def connect(self) -> None:
        """Open the WebSocket (raises AsrAuthError on 401/403, AsrError otherwise)."""
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                ws = await self._http.ws_connect(
                    self.url,
                    headers=auth_headers(self._key),
                    autoping=True,
                    max_msg_size=0,
                )
        except aiohttp.WSServerHandshakeError as e:
            detail = (e.headers or {}).get("dg-error", "") if e.headers else ""
            raise handshake_error(e.status, detail) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise AsrError(f"cannot connect to Deepgram {self.path}: {type(e).__name__}") from None
        self._ws = ws
        self.connections += 1
        self._connected.set()
        if self._recv_task is None:
            self._recv_task = asyncio.create_task(self._receive_loop(), name="deepgram-recv")
            self._keepalive_task = asyncio.create_task(self._keepalive_loop(), name="dg-keepalive")

    async def _send_json(self, msg: dict[str, str]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        try:
            await ws.send_str(json.dumps(msg))
            self._last_send = time.monotonic()
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass  # the receive loop notices the drop and reconnects

    async def _receive_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            close_reason = ""
            while True:
                m = await ws.receive()
                if m.type == aiohttp.WSMsgType.TEXT:
                    try:
                        msg = json.loads(m.data)
                    except ValueError:
                        log.warning("Deepgram sent a non-JSON text frame")
                        continue
                    self._handle(msg)
                elif m.type == aiohttp.WSMsgType.CLOSE:
                    close_reason = str(m.extra or "")
                    break
                elif m.type in (
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    if m.type == aiohttp.WSMsgType.ERROR:
                        close_reason = type(m.data).__name__
                    break
            if self._closing:
                self._queue.close()
                return
            self._connected.clear()
            log.warning(
                "Deepgram connection dropped mid-stream (close code %s %s); reconnecting",
                ws.close_code,
                close_reason,
            )
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        self._connected.clear()
        last: AsrError | None = None
        for attempt in range(self.settings.reconnect_attempts):
            if self._closing:
                return False
            await asyncio.sleep(min(0.1 * 2**attempt, 1.0))
            try:
                await self.connect()
            except AsrAuthError as e:
                last = e
                break
            except AsrError as e:
                last = e
                continue
            await self._replay_unacked()
            if self.finalize_pending:
                await self._send_json(self.finalize_message())
            log.info("Deepgram reconnected (attempt %d)", attempt + 1)
            return True
        self._failed = AsrError(
            f"Deepgram connection lost and {self.settings.reconnect_attempts} reconnects failed"
            + (f": {last}" if last else "")
        )
        log.warning("%s", self._failed)
        self._queue.fail(self._failed)
        return False

    async def _replay_unacked(self) -> None:
        while self._replay and self._replay[0][0] + self._chunk_s(self._replay[0][1]) <= (self._acked_s):
            self._replay.popleft()
        self._conn_base_s = self._replay[0][0] if self._replay else self._sent_s
        ws = self._ws
        if ws is None:
            return
        replayed = 0
        for _, data in list(self._replay):
            with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
                await ws.send_bytes(data)
                replayed += len(data)
        if replayed:
            log.info("replayed %.2f s of unacknowledged audio", replayed / self._bytes_per_s)

    def _chunk_s(self, data: bytes) -> float:
        return len(data) / self._bytes_per_s

    async def _keepalive_loop(self) -> None:
        interval = self.settings.keepalive_s
        while not self._closing:
            await asyncio.sleep(min(1.0, interval / 2))
            if time.monotonic() - self._last_send >= interval and self._connected.is_set():
                await self._send_json({"type": "KeepAlive"})

    # --- messages -----------------------------------------------------------------------------

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "Metadata":
            rid = msg.get("request_id")
            if rid:
                self.request_ids.append(str(rid))
            return
        if kind in ("Error", "FatalError", "Warning"):
            desc = str(msg.get("description") or msg.get("message") or msg.get("code") or kind)
            self.errors.append(desc)
            log.warning("Deepgram %s: %s", kind, desc)
            return
        self.on_message(msg)

    def ack_until(self, stream_end_s: float) -> None:
        """Audio up to ``stream_end_s`` (connection time) is final: drop it from the replay."""
        self._acked_s = max(self._acked_s, self._conn_base_s + stream_end_s)
        while self._replay and self._replay[0][0] + self._chunk_s(self._replay[0][1]) <= (self._acked_s):
            self._replay.popleft()

    def emit(self, event: AsrEvent) -> None:
        self._queue.put(event)

    def emit_end_of_turn(self) -> None:
        text = " ".join(t for t in self.turn_texts if t)
        self.turn_texts = []
        self.finalize_pending = False
        if self._finalize_timer is not None:
            self._finalize_timer.cancel()
            self._finalize_timer = None
        self.emit(EndOfTurn(text))

    # --- AsrSession ---------------------------------------------------------------------------

    async def feed(self, pcm: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closing or not pcm:
            return
        data = pcm16_to_ulaw(pcm) if self.encoding == "mulaw" else pcm
        self._replay.append((self._sent_s, data))
        self._sent_s += self._chunk_s(data)
        limit = self.settings.replay_audio_s
        while self._replay and self._sent_s - self._replay[0][0] > limit:
            self._replay.popleft()
        ws = self._ws
        if ws is None or ws.closed or not self._connected.is_set():
            return  # kept in the replay buffer; sent after reconnecting
        try:
            await ws.send_bytes(data)
            self._last_send = time.monotonic()
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass

    async def end_of_turn(self) -> None:
        if self._failed is not None:
            raise self._failed
        self.finalize_pending = True
        await self._send_json(self.finalize_message())
        if self._finalize_timer is None:
            self._finalize_timer = asyncio.create_task(self._finalize_deadline())

    async def _finalize_deadline(self) -> None:
        await asyncio.sleep(FINALIZE_TIMEOUT_S)
        self._finalize_timer = None
        if self.finalize_pending:
            log.info("Deepgram did not answer Finalize in %.1f s; ending turn", FINALIZE_TIMEOUT_S)
            self.emit_end_of_turn()

    def events(self) -> AsyncIterator[AsrEvent]:
        return self._queue.iterate()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if ws is not None and not ws.closed and self._failed is None:
            await self._send_json({"type": "CloseStream"})
            if self._recv_task is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._recv_task), CLOSE_TIMEOUT_S)
        for task in (self._recv_task, self._keepalive_task, self._finalize_timer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if ws is not None and not ws.closed:
            await ws.close()
        self._queue.close()
