"""The one interface both media transports (RTP/UDP and chan_websocket) implement.

Direction names are from convener's side: *inbound* is the caller's audio coming from
Asterisk, *outbound* is our reply audio going to Asterisk.

- ``await start()`` binds/connects; ``frames()`` (one consumer per leg) yields inbound ``AudioFrame``s (PCM16 LE at
  ``sample_rate``, ``timestamp`` = ``time.monotonic()`` of the frame's first sample);
- ``send(pcm)`` takes one outbound frame of PCM16 LE at ``sample_rate`` (``format.pcm_frame_bytes``
  long, 20 ms) and never blocks: it encodes and hands it to the OS/the websocket writer;
- ``clear_output()`` drops anything of ours still queued on the way to the caller (barge-in);
- ``await close()`` releases sockets/ports; it is idempotent and runs on every exit path
  (``async with transport:`` closes it too). ``frames()`` ends after close.
- ``stats`` is a live counter object.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

from convener.audio import AudioFrame
from convener.media.formats import LegFormat


@dataclass
class TransportStats:
    """Counters of one media leg. Only ever incremented (read them for logs/metrics)."""

    packets_in: int = 0  # datagrams/messages received (before any filtering)
    frames_in: int = 0  # frames delivered to frames() consumers' queue
    frames_out: int = 0  # frames handed to the wire
    bytes_out: int = 0
    dropped_foreign: int = 0  # from an address/port other than Asterisk's announced one
    dropped_before_remote: int = 0  # arrived before set_remote() and could not be held
    dropped_garbage: int = 0  # not parseable (bad RTP, empty...)
    dropped_other_ssrc: int = 0  # a second SSRC / unexpected payload type
    dropped_flood: int = 0  # over the rate limit
    dropped_queue_full: int = 0  # consumer too slow: oldest inbound frame dropped
    dropped_out: int = 0  # outbound frames that could not be sent
    lost: int = 0  # inbound frames concealed/skipped (jitter buffer)
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class MediaTransport(Protocol):
    """A bidirectional media leg to Asterisk."""

    format: LegFormat
    stats: TransportStats

    @property
    def sample_rate(self) -> int: ...

    async def start(self) -> None: ...

    def frames(self) -> AsyncIterator[AudioFrame]: ...

    def send(self, pcm_frame: bytes) -> None: ...

    def clear_output(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class FrameQueue:
    """Bounded inbound frame queue: drop-oldest when full, ends when closed. Loop-bound."""

    def __init__(self, maxlen: int, stats: TransportStats) -> None:
        self._q: deque[AudioFrame] = deque()
        self._maxlen = maxlen
        self._stats = stats
        self._event = asyncio.Event()
        self._closed = False

    def put(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        if len(self._q) >= self._maxlen:
            self._q.popleft()
            self._stats.dropped_queue_full += 1
        self._q.append(frame)
        self._stats.frames_in += 1
        self._event.set()

    def __len__(self) -> int:
        return len(self._q)

    def close(self) -> None:
        self._closed = True
        self._event.set()

    async def iterate(self) -> AsyncIterator[AudioFrame]:
        while True:
            while self._q:
                yield self._q.popleft()
            if self._closed:
                return
            self._event.clear()
            await self._event.wait()
