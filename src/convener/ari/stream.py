"""The ARI event WebSocket and the supervisor that keeps it connected.

One WebSocket per application (``/ari/events?app=NAME``). aiohttp's heartbeat sends a ping every
``ping_interval`` seconds and drops the connection when no pong comes within half of it, so a
silent half-open connection is noticed within ``ping_interval * 1.5`` seconds. Any end of the
connection (error, timeout, clean close by Asterisk) counts as a disconnect: the supervisor waits
a jittered exponential backoff and reconnects, and calls ``on_connect`` after every successful
connect so the application can resync what happened while it was away.

``ApplicationReplaced`` (another client took the application name) stops the supervisor: two
instances competing for one app would steal each other's calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

import aiohttp

from convener.ari.backoff import Backoff
from convener.ari.errors import MalformedEvent
from convener.ari.events import ApplicationReplaced, Event, decode_event
from convener.ari.rest import basic_auth_header, ssl_context

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0


class HandshakeTimeout(Exception):
    """The WebSocket upgrade got no answer within HANDSHAKE_TIMEOUT."""


class StreamState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    REPLACED = "replaced"
    STOPPED = "stopped"


class EventStream:
    """Supervised event WebSocket.

    ``on_event`` is called synchronously for every decoded event, in order; it must not block
    (the application hands events to per-call queues). ``on_connect(first)`` is awaited after
    every connect, before events are read, with ``first`` False after a reconnect.
    """

    def __init__(self, url: str, app: str, user: str, password: str, *,
                 on_event: Callable[[Event], None],
                 on_connect: Callable[[bool], Awaitable[None]] | None = None,
                 on_disconnect: Callable[[], None] | None = None,
                 ping_interval: float = 5.0, backoff: Backoff | None = None,
                 verify_tls: bool = True, ca_file: str = "", subscribe_all: bool = False) -> None:
        self.url = url
        self.subscribe_all = subscribe_all
        self.app = app
        self.headers = {"Authorization": basic_auth_header(user, password)}
        self.on_event = on_event
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.ping_interval = ping_interval
        self.backoff = backoff or Backoff()
        self.ssl = ssl_context(verify_tls, ca_file) if url.startswith("wss") else None
        self.state = StreamState.DISCONNECTED
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.malformed = 0
        # WebSocket handshakes in a row that got no answer in time (convener.ari.lockout).
        self.handshake_timeouts = 0
        self.handshake_timeout = HANDSHAKE_TIMEOUT
        self.connected_at: float | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stop = asyncio.Event()
        self._first = True

    async def run(self) -> StreamState:
        """Keep the stream connected until ``stop()`` or ApplicationReplaced; returns why it ended."""
        async with aiohttp.ClientSession(headers=self.headers) as session:
            while not self._stop.is_set():
                self.state = StreamState.CONNECTING
                try:
                    await self._connect_and_read(session)
                except asyncio.CancelledError:
                    raise
                except HandshakeTimeout:
                    self.handshake_timeouts += 1
                    log.warning("ARI events: no answer to the WebSocket handshake within %.1f s (%d in a row); "
                                "if Asterisk's REST API still answers, its ARI WebSocket is locked up: "
                                "restart Asterisk (see /health)", self.handshake_timeout, self.handshake_timeouts)
                except Exception as e:  # any failure is a disconnect
                    if self._stop.is_set():
                        pass
                    elif self._first:
                        log.warning("ARI events: cannot connect to %s: %s", self.url, _why(e))
                    else:
                        log.warning("ARI events: connection lost: %s", _why(e))
                finally:
                    was_connected = self.connected.is_set()
                    self.connected.clear()
                    self._ws = None
                    if was_connected and self.on_disconnect:
                        self.on_disconnect()
                if self.state is StreamState.REPLACED or self._stop.is_set():
                    break
                self.state = StreamState.DISCONNECTED
                delay = self.backoff.next_delay()
                log.info("ARI events: reconnecting in %.2fs (attempt %d)", delay, self.backoff.attempt)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        if self.state is not StreamState.REPLACED:
            self.state = StreamState.STOPPED
        return self.state

    async def _connect_and_read(self, session: aiohttp.ClientSession) -> None:
        params = {"app": self.app, "subscribeAll": "true" if self.subscribe_all else "false"}
        kwargs: dict[str, Any] = {"params": params, "heartbeat": self.ping_interval,
                                  "autoping": True,
                                  "timeout": aiohttp.ClientWSTimeout(ws_close=2.0)}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        # A handshake that never completes counts as a failed attempt, not a hang.
        try:
            ws = await asyncio.wait_for(session.ws_connect(self.url, **kwargs), self.handshake_timeout)
        except TimeoutError:
            raise HandshakeTimeout from None
        self.handshake_timeouts = 0
        async with ws:
            self._ws = ws
            if not self._first:
                self.reconnects += 1
            log.info("ARI events: connected to %s (app %s)", self.url, self.app)
            self.backoff.reset()
            if self.on_connect:
                await self.on_connect(self._first)
            self._first = False
            self.state = StreamState.CONNECTED
            self.connected_at = time.monotonic()
            self.connected.set()
            async for msg in ws:
                if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._dispatch(msg.data)
                    if self.state is StreamState.REPLACED:
                        return
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise ConnectionError(f"websocket error: {ws.exception()}")
            # The iterator ends on close (clean or not) and on a missed pong.
            raise ConnectionError(f"websocket closed (code {ws.close_code})")

    def _dispatch(self, data: str | bytes) -> None:
        try:
            event = decode_event(data)
        except MalformedEvent as e:
            self.malformed += 1
            log.warning("ARI events: malformed event skipped: %s", e)
            return
        if event is None:
            return
        if isinstance(event, ApplicationReplaced):
            log.error("ARI events: application %r was taken over by another client; this "
                      "instance stops competing for it", self.app)
            self.state = StreamState.REPLACED
            self._stop.set()
        try:
            self.on_event(event)
        except Exception:
            log.exception("ARI events: handler failed for %s", event.type)

    async def stop(self) -> None:
        self._stop.set()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

    async def drop(self) -> None:
        """Close the current connection as if the network failed (the supervisor reconnects)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()


def _why(e: BaseException) -> str:
    if isinstance(e, aiohttp.WSServerHandshakeError):
        if e.status in (401, 403):
            return f"HTTP {e.status}: the ARI user or password is wrong (ari.user / ari.password)"
        return f"HTTP {e.status} on the WebSocket handshake: {e.message}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
