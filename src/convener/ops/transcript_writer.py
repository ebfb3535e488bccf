"""A fire-and-forget front for a TranscriptStore, for the call path.

A caller must never wait on the transcript database, and a database outage must never end a
call. ``TranscriptWriter`` methods are plain (non-async) calls that queue the write; one task
applies the writes in order. When the store is unreachable (connection refused or lost, a
timeout: PostgreSQL stopped or restarting) the write is kept and tried again with a backoff
(0.5 s doubling to 5 s) while later writes wait behind it in the queue, so nothing is lost and
the order is kept when the store returns. Other failures (a bad row) drop that write. Both are
logged once per outage and counted in ``convener_transcript_errors_total``; when the queue is
full the write is dropped and counted in ``convener_transcript_dropped_total``.
``await writer.close()`` drains the queue, then closes the store. With ``retention_days`` > 0,
conversations older than that are purged at start and daily.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from convener.ops import metrics
from convener.ops.settings import OpsSettings
from convener.ops.transcripts import TranscriptStore, When, open_store
from convener.timings import TurnTimings

log = logging.getLogger(__name__)


Write = Callable[[], Awaitable[None]]
PURGE_EVERY_S = 24 * 3600
REOPEN_EVERY_S = 30.0
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


def transient(e: BaseException) -> bool:
    """An outage of the store (worth trying the same write again), not a problem of the write."""
    if isinstance(e, OSError | TimeoutError):  # ConnectionError is an OSError
        return True
    try:
        import asyncpg
    except ImportError:
        return False
    return isinstance(e, asyncpg.PostgresConnectionError | asyncpg.InterfaceError
                      | asyncpg.exceptions.CannotConnectNowError | asyncpg.exceptions.AdminShutdownError)


class TranscriptWriter:
    def __init__(self, store: TranscriptStore | None, max_queue: int = 10000, retention_days: int = 0,
                 reopen: Callable[[], Awaitable[TranscriptStore]] | None = None,
                 reopen_every_s: float = REOPEN_EVERY_S) -> None:
        self.store = store
        self.retention_days = retention_days
        self._reopen = reopen
        self._reopen_every_s = reopen_every_s
        self._last_open_attempt = time.monotonic()
        self._queue: asyncio.Queue[Write | None] = asyncio.Queue(max_queue)
        self._task: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._failing = False
        self._states: dict[str, tuple[str, str]] = {}  # floor states not yet written: id -> (room, json)
        self.retries = 0  # writes tried again because the store was unreachable

    @classmethod
    async def open(cls, settings: OpsSettings, max_queue: int = 10000) -> TranscriptWriter:
        """Open the configured store and start writing. If the store cannot be opened (database
        down at boot), calls go on: writes are counted as failed and the store is retried every
        ``REOPEN_EVERY_S`` seconds while writes arrive."""

        async def reopen() -> TranscriptStore:
            return await open_store(settings)

        store: TranscriptStore | None = None
        try:
            store = await reopen()
        except Exception as e:
            metrics.TRANSCRIPT_ERRORS_TOTAL.inc()
            log.error("transcript store unavailable (%s: %s): calls go on without transcripts until it "
                      "can be opened", type(e).__name__, e)
        writer = cls(store, max_queue, settings.transcripts_retention_days, reopen)
        writer._failing = store is None
        return writer.start()

    async def _ensure_store(self) -> bool:
        if self.store is not None:
            return True
        if self._reopen is None or time.monotonic() - self._last_open_attempt < self._reopen_every_s:
            return False
        self._last_open_attempt = time.monotonic()
        try:
            self.store = await self._reopen()
            log.info("transcript store opened")
            return True
        except Exception as e:
            log.debug("transcript store still unavailable: %s", e)
            return False

    def start(self) -> TranscriptWriter:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="transcript-writer")
            if self.retention_days > 0:
                self._purger = asyncio.create_task(self._purge_daily(), name="transcript-purge")
        return self

    async def _purge_daily(self) -> None:
        while True:
            before = datetime.now(UTC) - timedelta(days=self.retention_days)
            self._put(lambda before=before: self._purge(before))
            await asyncio.sleep(PURGE_EVERY_S)

    async def _purge(self, before: datetime) -> None:
        assert self.store is not None
        n = await self.store.purge(before)
        if n:
            log.info("transcripts: purged %d conversation(s) older than %d day(s)", n, self.retention_days)

    def _put(self, write: Write) -> bool:
        if self._task is None:
            self.start()
        try:
            self._queue.put_nowait(write)
            return True
        except asyncio.QueueFull:
            metrics.TRANSCRIPT_DROPPED_TOTAL.inc()
            return False

    async def _run(self) -> None:
        while True:
            write = await self._queue.get()
            if write is None:
                return
            if not await self._ensure_store():
                metrics.TRANSCRIPT_ERRORS_TOTAL.inc()
                continue
            await self._apply(write)

    async def _apply(self, write: Write) -> None:
        delay = RETRY_FIRST_S
        retried = 0
        while True:
            try:
                await write()
            except Exception as e:
                if not transient(e):
                    metrics.TRANSCRIPT_ERRORS_TOTAL.inc()
                    if not self._failing:
                        log.warning("transcript write failed (%s: %s); that write is dropped, calls go on",
                                    type(e).__name__, e)
                        self._failing = True
                    return
                if retried == 0:
                    metrics.TRANSCRIPT_ERRORS_TOTAL.inc()
                if not self._failing:
                    log.warning("transcript store unreachable (%s: %s); writes wait in memory (up to %d) and "
                                "are written when it returns", type(e).__name__, e, self._queue.maxsize)
                    self._failing = True
                retried += 1
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if self._failing:
                log.info("transcript store writes work again (%d waiting)", self._queue.qsize())
                self._failing = False
            return

    # -- the API of the call path (same arguments as TranscriptStore) ---------------------------

    def start_conversation(self, conversation_id: str, call_id: str, room: str, started_at: When = None) -> None:
        self._put(lambda: self._store().start_conversation(conversation_id, call_id, room, started_at))

    def add_turn(self, conversation_id: str, speaker: str, text: str, at: When = None,
                 floor_holder: str | None = None, timings: TurnTimings | dict[str, Any] | None = None) -> None:
        self._put(lambda: self._store().add_turn(conversation_id, speaker, text, at, floor_holder, timings))

    def end_conversation(self, conversation_id: str, ended_at: When = None, reason: str = "") -> None:
        self._states.pop(conversation_id, None)
        self._put(lambda: self._store().end_conversation(conversation_id, ended_at, reason))

    def save_floor_state(self, conversation_id: str, room: str, state: str) -> None:
        """Store a conversation's floor state (JSON). Saves that pile up while the store is slow
        are coalesced: only the newest state of a conversation is written."""
        queued = conversation_id in self._states
        self._states[conversation_id] = (room, state)
        if not queued and not self._put(lambda: self._write_state(conversation_id)):
            self._states.pop(conversation_id, None)

    async def _write_state(self, conversation_id: str) -> None:
        latest = self._states.pop(conversation_id, None)
        if latest is not None:
            await self._store().save_floor_state(conversation_id, latest[0], latest[1])

    def end_unresumed(self, keep_rooms: set[str]) -> None:
        """After a start: the stored conversations of rooms no adopted caller is in are over
        (their callers hung up while convener was down)."""
        async def end() -> None:
            from convener.ops.transcripts import NOT_RESUMED

            store = self._store()
            for cid, room in await store.floor_state_rooms():
                if room not in keep_rooms:
                    await store.end_conversation(cid, None, NOT_RESUMED)
                    log.info("conversation %s of room %s not resumed: nobody of it is left", cid, room)

        self._put(end)

    async def live_floor_state(self, room: str, timeout: float = 2.0) -> str | None:
        """The stored floor state of ``room``'s live conversation (after a restart), or None when
        there is none or the store does not answer within ``timeout`` seconds."""
        if self.store is None:
            return None
        try:
            return await asyncio.wait_for(self.store.live_floor_state(room), timeout)
        except Exception as e:
            log.warning("floor state of room %s not read (%s: %s); the conversation starts afresh",
                        room, type(e).__name__, e)
            return None

    def _store(self) -> TranscriptStore:
        assert self.store is not None  # _run calls writes only once the store is open
        return self.store

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to ``timeout`` seconds), then close the store."""
        if self._purger is not None:
            self._purger.cancel()
        if self._task is not None:
            await self._queue.put(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.warning("transcript writer: %d write(s) not flushed at shutdown", self._queue.qsize())
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self.store is not None:
            await self.store.close()
