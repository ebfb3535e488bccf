"""Live events for the console: transcript lines and finished turns, fanned out to listeners.

``publish`` is a plain call from the event loop (the call path never waits): each listener has a
bounded queue; a listener too slow to keep up loses its oldest event, never blocks the call.
The last ``keep`` events are replayed to a new listener, so a page opened mid-call has context.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from typing import Any

Event = dict[str, Any]


class LiveFeed:
    def __init__(self, keep: int = 200, queue_size: int = 500) -> None:
        self.recent: collections.deque[Event] = collections.deque(maxlen=keep)
        self._queue_size = queue_size
        self._listeners: set[asyncio.Queue[Event | None]] = set()
        self._ids = itertools.count(1)
        self.dropped = 0

    def publish(self, event: Event) -> None:
        event = {"id": next(self._ids), **event}
        self.recent.append(event)
        for q in list(self._listeners):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                self.dropped += 1
            q.put_nowait(event)

    def listen(self) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(self._queue_size)
        for event in self.recent:
            if q.full():
                break
            q.put_nowait(event)
        self._listeners.add(q)
        return q

    def unlisten(self, q: asyncio.Queue[Event | None]) -> None:
        self._listeners.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def close(self) -> None:
        """End every listener's stream (the ops server is stopping)."""
        for q in list(self._listeners):
            with contextlib.suppress(asyncio.QueueEmpty):
                if q.full():
                    q.get_nowait()
            q.put_nowait(None)
        self._listeners.clear()
