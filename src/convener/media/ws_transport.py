"""chan_websocket media leg (Asterisk 20.16+/21.11+/22.6+/23): we are the websocket client.

Facts (docs.asterisk.org "WebSocket" channel driver page and channels/chan_websocket.c):

- ``POST /ari/channels/externalMedia?app=…&transport=websocket&encapsulation=none
  &connection_type=server&external_host=INCOMING&format=slin16`` creates the channel and sets
  ``MEDIA_WEBSOCKET_CONNECTION_ID`` (and ``MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE``); the app
  connects to ``ws(s)://<asterisk http>/media/<connection id>`` with subprotocol ``media``
  (HTTP basic auth with the ARI user). The channel is auto-answered on connect.
- BINARY messages carry raw media in the channel's format, no headers. Asterisk→app: one
  message per Asterisk frame (ulaw: 160 bytes per 20 ms). slin16 is written as Asterisk's frame
  data as-is (host byte order = little-endian on x86-64/arm64; RTP would be big-endian).
- TEXT messages carry control. Plain-text format (the default; ``chan_websocket.conf``
  ``control_message_format`` = ``json`` since 20.18/22.8/23.2 switches to JSON):
  ``MEDIA_START connection_id:<id> channel:<name> channel_id:<uniqueid> format:<fmt>
  optimal_frame_size:<bytes> ptime:<ms>``, ``MEDIA_XOFF``, ``MEDIA_XON``,
  ``MEDIA_BUFFERING_COMPLETED [id]``, ``MEDIA_MARK_PROCESSED [id]``, ``QUEUE_DRAINED``,
  ``DTMF_END digit:<d> channel_id:<id>``, ``STATUS queue_length:… xon_level:800
  xoff_level:900 queue_full:… bulk_media:… media_paused:…``, ``ERROR … error_text:…``.
  JSON: ``{"event": "MEDIA_START", "connection_id": …, "format": …, "optimal_frame_size": …,
  "ptime": …, "channel_variables": {…}}`` and ``{"event": …, "channel_id": …}`` for the rest.
- Commands app→Asterisk (TEXT, case-sensitive, at most 128 bytes): ``ANSWER``, ``HANGUP``,
  ``START_MEDIA_BUFFERING``, ``STOP_MEDIA_BUFFERING [id]``, ``MARK_MEDIA [id]``,
  ``FLUSH_MEDIA`` (drop everything queued, ends buffering/pause), ``PAUSE_MEDIA``,
  ``CONTINUE_MEDIA``, ``GET_STATUS``, ``REPORT_QUEUE_DRAINED``. JSON form:
  ``{"command": "FLUSH_MEDIA"}`` (``correlation_id`` for the ones taking an id).
- App→Asterisk media: a message of exactly ``optimal_frame_size`` bytes (or a multiple) is cut
  into frames and played one per ptime; leftovers of odd sizes are dropped unless buffering is
  on. Asterisk queues up to ~1000 frames, sends ``MEDIA_XOFF`` at 900 and ``MEDIA_XON`` below
  800; media sent while full is dropped. A message above 65500 bytes closes the socket.
  When nothing is queued Asterisk plays silence.

This transport sends whole frames paced by ``convener.media.pacer`` (one per 20 ms), so
Asterisk's queue stays ~empty and barge-in is immediate; ``clear_output()`` also sends
``FLUSH_MEDIA``. While XOFF is in effect outbound frames are held (bounded) and sent on XON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp

from convener.audio import AudioFrame
from convener.media.formats import LegFormat, leg_format
from convener.media.settings import MediaSettings
from convener.media.transport import FrameQueue, TransportStats

log = logging.getLogger(__name__)

SUBPROTOCOL = "media"
MAX_MESSAGE_BYTES = 65500
MAX_COMMAND_BYTES = 128


@dataclass
class ControlMessage:
    """One TEXT message from chan_websocket, plain-text or JSON, normalised."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    json: bool = False


def parse_control(text: str) -> ControlMessage:
    """Parse a chan_websocket notification; unknown shapes give event ``""`` (never raises)."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except ValueError:
            return ControlMessage("", {"raw": text}, True)
        if not isinstance(obj, dict):
            return ControlMessage("", {"raw": text}, True)
        event = obj.pop("event", "")
        return ControlMessage(event if isinstance(event, str) else "", obj, True)
    if not text:
        return ControlMessage("")
    event, _, rest = text.partition(" ")
    fields: dict[str, Any] = {}
    if event == "ERROR" and "error_text:" in rest:
        head, _, err = rest.partition("error_text:")
        fields["error_text"] = err
        rest = head
    for token in rest.split():
        key, sep, value = token.partition(":")
        if sep:
            fields[key] = value
        elif event in ("MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED"):
            fields["correlation_id"] = token
    for key in ("optimal_frame_size", "ptime", "queue_length", "xon_level", "xoff_level"):
        if key in fields:
            with contextlib.suppress(TypeError, ValueError):
                fields[key] = int(fields[key])
    return ControlMessage(event, fields, False)


def format_command(command: str, json_format: bool, correlation_id: str | None = None) -> str:
    """A command in the control format Asterisk uses on this connection."""
    if json_format:
        msg: dict[str, str] = {"command": command}
        if correlation_id is not None:
            msg["correlation_id"] = correlation_id
        return json.dumps(msg, separators=(",", ":"))
    return f"{command} {correlation_id}" if correlation_id else command


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def media_url(http_base: str, connection_id: str) -> str:
    """``http://127.0.0.1:8088`` + id → ``ws://127.0.0.1:8088/media/<id>``."""
    base = http_base.rstrip("/")
    if base.endswith("/ari"):
        base = base[: -len("/ari")]
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return f"{base}/media/{connection_id}"


class WebSocketTransport:
    """One call's chan_websocket media leg (see the module docstring for the protocol)."""

    def __init__(
        self,
        url: str,
        *,
        settings: MediaSettings | None = None,
        format: str | None = None,
        auth: tuple[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        on_event: Callable[[ControlMessage], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.settings = settings or MediaSettings()
        self.format: LegFormat = leg_format(format or self.settings.format, "websocket")
        self.stats = TransportStats()
        self.media_start: ControlMessage | None = None
        self.json_control = False
        self.xoff = False
        # Basic auth as a header (aiohttp 4 drops the ``auth`` argument of ws_connect).
        self._headers = {"Authorization": _basic_auth(*auth)} if auth else {}
        self._session = session
        self._own_session = session is None
        self._on_event = on_event
        self._clock = clock
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._queue = FrameQueue(self.settings.inbound_queue_frames, self.stats)
        self._out: deque[str | bytes] = deque()
        self._out_wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._closed = False
        self._inbuf = bytearray()
        self._last_ts = float("-inf")

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def optimal_frame_size(self) -> int:
        if self.media_start is not None:
            size = self.media_start.fields.get("optimal_frame_size")
            if isinstance(size, int) and size > 0:
                return size
        return self.format.wire_frame_bytes

    async def start(self) -> None:
        """Connect and wait for ``MEDIA_START`` (at most ``ws_connect_timeout_s``)."""
        if self._ws is not None or self._closed:
            raise RuntimeError("WebSocketTransport can be started once")
        timeout = self.settings.ws_connect_timeout_s
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            self._ws = await asyncio.wait_for(
                self._session.ws_connect(
                    self.url, protocols=(SUBPROTOCOL,), headers=self._headers, autoping=True,
                    max_msg_size=MAX_MESSAGE_BYTES * 4,
                ),
                timeout,
            )
            self._reader = asyncio.create_task(self._read_loop(), name="ws-media-reader")
            self._writer = asyncio.create_task(self._write_loop(), name="ws-media-writer")
            await asyncio.wait_for(self._started.wait(), timeout)
        except BaseException:
            await self.close()
            raise
        if self.media_start is None:
            await self.close()
            raise ConnectionError("media websocket closed before MEDIA_START")
        fmt = self.media_start.fields.get("format")
        if isinstance(fmt, str) and fmt != self.format.name:
            log.warning("chan_websocket says format %s, expected %s", fmt, self.format.name)

    def _handle_text(self, text: str) -> None:
        msg = parse_control(text)
        if msg.event == "MEDIA_START":
            self.media_start = msg
            self.json_control = msg.json
            self._started.set()
        elif msg.event == "MEDIA_XOFF":
            self.xoff = True
            self.stats.extra["xoff"] = self.stats.extra.get("xoff", 0) + 1
        elif msg.event == "MEDIA_XON":
            self.xoff = False
            self._out_wake.set()
        elif msg.event == "ERROR":
            log.warning("chan_websocket error: %s", msg.fields.get("error_text", msg.fields))
        if self._on_event is not None:
            self._on_event(msg)

    def _handle_binary(self, data: bytes) -> None:
        fmt = self.format
        self._inbuf += data
        wire = fmt.wire_frame_bytes
        now = self._clock()
        n = len(self._inbuf) // wire
        for i in range(n):
            chunk = bytes(self._inbuf[i * wire:(i + 1) * wire])
            ts = now - (n - i) * fmt.ptime_ms / 1000.0
            if ts <= self._last_ts:
                ts = self._last_ts + 1e-6
            self._last_ts = ts
            self._queue.put(AudioFrame(fmt.decode(chunk), fmt.sample_rate, ts))
        del self._inbuf[: n * wire]

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            async for msg in ws:
                self.stats.packets_in += 1
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._handle_text(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    if self.media_start is None:
                        self.stats.dropped_before_remote += 1
                    else:
                        self._handle_binary(msg.data)
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    break
        except Exception:  # the connection died: end frames(), close() cleans up
            log.exception("media websocket reader failed")
        finally:
            self._queue.close()
            self._started.set()
            self._out_wake.set()

    async def _write_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            while self._out and not ws.closed:
                item = self._out[0]
                if isinstance(item, bytes) and self.xoff:
                    break
                self._out.popleft()
                try:
                    if isinstance(item, str):
                        await ws.send_str(item)
                    else:
                        await ws.send_bytes(item)
                        self.stats.frames_out += 1
                        self.stats.bytes_out += len(item)
                except (ConnectionError, RuntimeError):
                    self.stats.dropped_out += 1
            if ws.closed or self._closed:
                return
            self._out_wake.clear()
            await self._out_wake.wait()

    def frames(self) -> AsyncIterator[AudioFrame]:
        return self._queue.iterate()

    def send(self, pcm_frame: bytes) -> None:
        """Queue one PCM16 LE frame at ``sample_rate`` for sending (non-blocking)."""
        if self._ws is None or self._closed or self._ws.closed:
            self.stats.dropped_out += 1
            return
        pending = sum(1 for x in self._out if isinstance(x, bytes))
        if pending >= self.settings.ws_send_queue_frames:
            self.stats.dropped_out += 1
            return
        self._out.append(self.format.encode(pcm_frame))
        self._out_wake.set()

    def send_command(self, command: str, correlation_id: str | None = None) -> None:
        """Queue a control command (TEXT) in the connection's control format."""
        if self._ws is None or self._closed:
            return
        text = format_command(command, self.json_control, correlation_id)
        if len(text.encode()) > MAX_COMMAND_BYTES:
            raise ValueError(f"command longer than {MAX_COMMAND_BYTES} bytes")
        self._out.append(text)
        self._out_wake.set()

    def clear_output(self) -> None:
        """Drop our unsent frames and tell Asterisk to drop its queue (``FLUSH_MEDIA``)."""
        dropped = [x for x in self._out if isinstance(x, bytes)]
        self._out = deque(x for x in self._out if isinstance(x, str))
        self.stats.extra["flushed_frames"] = self.stats.extra.get("flushed_frames", 0) + len(
            dropped
        )
        self.send_command("FLUSH_MEDIA")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.close()
        self._out_wake.set()
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
        for task in (self._writer, self._reader):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
