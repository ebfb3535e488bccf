"""``FallbackAsr``: a cloud recogniser with an offline one behind it, for the whole call.

The call keeps going when the primary fails: if the primary cannot be opened (no network,
401) the session starts on the fallback; if it fails mid-call (connection lost beyond its own
reconnects) the session switches to the fallback and hands it the audio of the turn in
progress, so the caller does not have to repeat themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from convener.speech.asr import AsrError, AsrEvent, AsrProvider, AsrSession, EndOfTurn, EventQueue

if TYPE_CHECKING:
    from convener.speech.bias import BiasContext

log = logging.getLogger(__name__)

MAX_TURN_BYTES = 60 * 16000 * 2


class FallbackSession:
    def __init__(self, owner: FallbackAsr, sample_rate: int, bias: BiasContext | None = None) -> None:
        self.owner = owner
        self.bias = bias
        self.sample_rate = sample_rate
        self.active: AsrSession | None = None
        self.active_name = ""
        self.switched = False
        self.switch_reason = ""
        self._queue = EventQueue()
        self._pump: asyncio.Task[None] | None = None
        self._turn: list[bytes] = []  # audio since the last end_of_turn() call
        self._pending: list[bytes] | None = None  # audio of a turn awaiting its EndOfTurn
        self._switch_lock = asyncio.Lock()
        self._switch_task: asyncio.Task[None] | None = None
        self._turn_bytes = 0

    async def start(self) -> None:
        try:
            session = await self.owner.primary.open_session(self.sample_rate, bias=self.bias)
        except AsrError as e:
            await self._use_fallback(f"{self.owner.primary.name} unavailable: {e}")
            return
        self._activate(session, self.owner.primary.name)

    def _activate(self, session: AsrSession, name: str) -> None:
        self.active, self.active_name = session, name
        self._pump = asyncio.create_task(self._run_pump(session), name=f"asr-pump-{name}")

    async def _run_pump(self, session: AsrSession) -> None:
        try:
            async for ev in session.events():
                if isinstance(ev, EndOfTurn):
                    if self._pending is None:  # the recogniser ended the turn itself (Flux)
                        self._turn, self._turn_bytes = [], 0
                    self._pending = None
                self._queue.put(ev)
        except AsrError as e:
            if session is self.active and not self.switched:
                self._switch_task = asyncio.create_task(self._use_fallback(str(e)))
                return
            self._queue.fail(e)
            return
        if session is self.active:
            self._queue.close()

    async def _use_fallback(self, reason: str) -> None:
        async with self._switch_lock:
            if self.switched:
                return
            self.switched = True
            self.switch_reason = reason
            old = self.active
            log.warning("ASR switching to %s: %s", self.owner.fallback.name, reason)
            try:
                session = await self.owner.fallback.open_session(self.sample_rate, bias=self.bias)
            except AsrError as e:
                self._queue.fail(AsrError(f"primary and fallback ASR failed: {e}"))
                return
            self._activate(session, self.owner.fallback.name)
            if old is not None:
                with contextlib.suppress(Exception):
                    await old.close()
            if self._pending is not None:
                for pcm in self._pending:
                    await session.feed(pcm)
                await session.end_of_turn()
            for pcm in self._turn:
                await session.feed(pcm)

    @property
    def turn_events(self) -> bool:
        """The recogniser in use decides the end of turn itself (Deepgram Flux)."""
        return bool(getattr(self.active, "turn_events", False))

    async def feed(self, pcm: bytes) -> None:
        self._turn.append(pcm)
        self._turn_bytes += len(pcm)
        while self._turn_bytes > MAX_TURN_BYTES:
            self._turn_bytes -= len(self._turn.pop(0))
        if self._switch_lock.locked():
            return  # the switch replays self._turn
        session = self.active
        if session is None:
            return
        try:
            await session.feed(pcm)
        except AsrError as e:
            await self._use_fallback(str(e))

    async def end_of_turn(self) -> None:
        self._pending, self._turn, self._turn_bytes = self._turn, [], 0
        if self._switch_lock.locked():
            async with self._switch_lock:
                pass
        session = self.active
        if session is None:
            return
        try:
            await session.end_of_turn()
        except AsrError as e:
            await self._use_fallback(str(e))

    def events(self) -> AsyncIterator[AsrEvent]:
        return self._queue.iterate()

    async def close(self) -> None:
        if self._switch_task is not None and not self._switch_task.done():
            with contextlib.suppress(Exception):
                await self._switch_task
        if self.active is not None:
            with contextlib.suppress(Exception):
                await self.active.close()
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self._queue.close()


class FallbackAsr:
    """ASR provider wrapping ``primary`` with ``fallback`` (e.g. Deepgram → Whisper)."""

    def __init__(self, primary: AsrProvider, fallback: AsrProvider) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = f"{primary.name}+{fallback.name}"

    async def warm(self) -> None:
        try:
            await self.primary.warm()
        except AsrError as e:
            log.warning("ASR %s not usable, calls will use %s: %s", self.primary.name, self.fallback.name, e)
        await self.fallback.warm()

    async def open_session(self, sample_rate: int = 8000, bias: BiasContext | None = None) -> FallbackSession:
        session = FallbackSession(self, sample_rate, bias)
        await session.start()
        return session
