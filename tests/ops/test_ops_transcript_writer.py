from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from convener.ops import metrics
from convener.ops.settings import OpsSettings
from convener.ops.transcript_writer import TranscriptWriter
from convener.ops.transcripts import NullTranscriptStore, TranscriptStore, open_store

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class SlowFlakyStore(NullTranscriptStore):
    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.fail = False
        self.gate = asyncio.Event()
        self.closed = False

    async def add_turn(self, conversation_id, speaker, text, at=None, floor_holder=None, timings=None):
        await self.gate.wait()
        if self.fail:
            raise ValueError("bad row")  # a problem of the write, not of the store: not retried
        self.writes.append((conversation_id, text))

    async def close(self) -> None:
        self.closed = True


async def test_writes_are_queued_in_order_and_never_block_the_caller():
    store = SlowFlakyStore()
    writer = TranscriptWriter(store).start()
    for i in range(5):
        writer.add_turn("c", "caller", f"t{i}")  # returns at once although the store is stuck
    await asyncio.sleep(0.01)
    assert store.writes == [] and writer.pending >= 4
    store.gate.set()
    await writer.close()
    assert store.writes == [("c", f"t{i}") for i in range(5)]
    assert store.closed


async def test_failed_writes_and_overflow_are_counted_not_raised(caplog):
    store = SlowFlakyStore()
    store.fail = True
    store.gate.set()
    writer = TranscriptWriter(store, max_queue=2).start()
    for i in range(3):
        writer.add_turn("c", "caller", f"t{i}")  # the third does not fit
    await writer.close()
    assert metrics.TRANSCRIPT_DROPPED_TOTAL.value() == 1
    assert metrics.TRANSCRIPT_ERRORS_TOTAL.value() == 2
    assert sum("transcript write failed" in r.getMessage() for r in caplog.records) == 1  # once per outage


async def test_with_sqlite_and_retention(tmp_path):
    store = await open_store(OpsSettings(state_dir=str(tmp_path), node_id="n"))
    await store.start_conversation("ancient", "0", "lobby", datetime.now(UTC) - timedelta(days=400))
    writer = TranscriptWriter(store, retention_days=30).start()
    writer.start_conversation("c1", "1", "lobby", T0)
    writer.add_turn("c1", "caller", "hello", T0, floor_holder=None)
    writer.add_turn("c1", "weather", "Sunny.", T0 + timedelta(seconds=2), floor_holder="weather")
    writer.end_conversation("c1", T0 + timedelta(seconds=5), "caller hung up")
    await asyncio.sleep(0.05)
    ids = [c.conversation_id for c in await store.list(10)]
    assert "ancient" not in ids  # purged at start
    await writer.close()
    store = await open_store(OpsSettings(state_dir=str(tmp_path), node_id="n"))
    got = await store.get("c1")
    await store.close()
    assert got is not None and [t.text for t in got.turns] == ["hello", "Sunny."]
    assert got.end_reason == "caller hung up"


async def test_store_down_at_start_calls_go_on_then_it_recovers(tmp_path, caplog):
    pytest.importorskip("asyncpg")
    settings = OpsSettings(transcripts_url="postgresql://convener@127.0.0.1:1/convener", node_id="n")
    writer = await TranscriptWriter.open(settings)  # connection refused: no exception
    assert writer.store is None
    assert metrics.TRANSCRIPT_ERRORS_TOTAL.value() == 1
    assert any("transcript store unavailable" in r.getMessage() for r in caplog.records)
    writer.add_turn("c", "caller", "lost")
    await asyncio.sleep(0.05)
    assert metrics.TRANSCRIPT_ERRORS_TOTAL.value() == 2  # retried later, not on every write

    sqlite = OpsSettings(state_dir=str(tmp_path), node_id="n")

    async def reopen() -> TranscriptStore:
        return await open_store(sqlite)

    writer._reopen, writer._reopen_every_s = reopen, 0.0  # the database is back
    writer.start_conversation("c", "1", "lobby", T0)
    writer.add_turn("c", "caller", "kept", T0)
    await writer.close()
    store = await open_store(sqlite)
    got = await store.get("c")
    await store.close()
    assert got is not None and [t.text for t in got.turns] == ["kept"]


class StateStore(NullTranscriptStore):
    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []
        self.ended: list[str] = []
        self.gate = asyncio.Event()
        self.live: str | None = None
        self.read_delay = 0.0

    async def save_floor_state(self, conversation_id, room, state, at=None):
        await self.gate.wait()
        self.states.append((conversation_id, state))

    async def end_conversation(self, conversation_id, ended_at=None, reason=""):
        self.ended.append(conversation_id)

    async def live_floor_state(self, room):
        await asyncio.sleep(self.read_delay)
        return self.live

    async def floor_state_rooms(self):
        return [("c-lobby", "lobby"), ("c-gone", "gone"), ("c-sales", "sales")]


async def test_floor_states_are_coalesced_while_the_store_is_slow():
    """Saves return at once; while the store is stuck only the newest state of each
    conversation is kept for it, and a state saved before the end is not written after it."""
    store = StateStore()
    writer = TranscriptWriter(store).start()
    writer.add_turn("x", "caller", "block the queue")  # the store is not stuck on turns
    for i in range(50):
        writer.save_floor_state("c1", "lobby", f'{{"n": {i}}}')
    writer.save_floor_state("c2", "sales", "{}")
    writer.save_floor_state("c3", "hall", "{}")
    writer.end_conversation("c3")
    assert writer.pending <= 5
    store.gate.set()
    await writer.close()
    assert store.states == [("c1", '{"n": 49}'), ("c2", "{}")]
    assert store.ended == ["c3"]


async def test_reading_a_floor_state_is_bounded():
    store = StateStore()
    store.live = '{"version": 1}'
    writer = TranscriptWriter(store).start()
    assert await writer.live_floor_state("lobby") == '{"version": 1}'
    store.read_delay = 5.0
    t0 = asyncio.get_running_loop().time()
    assert await writer.live_floor_state("lobby", timeout=0.1) is None  # the caller is not kept waiting
    assert asyncio.get_running_loop().time() - t0 < 1.0
    assert await TranscriptWriter(None).live_floor_state("lobby") is None  # store down at boot
    store.gate.set()
    await writer.close()


class DownStore(NullTranscriptStore):
    """A store that is unreachable until ``up`` is set: ConnectionRefusedError, as a stopped
    PostgreSQL gives."""

    def __init__(self) -> None:
        self.up = False
        self.writes: list[str] = []
        self.attempts = 0

    async def add_turn(self, conversation_id, speaker, text, at=None, floor_holder=None, timings=None):
        self.attempts += 1
        if not self.up:
            raise ConnectionRefusedError(111, "Connect call failed")
        self.writes.append(text)


async def test_an_unreachable_store_keeps_the_writes_until_it_returns(caplog, monkeypatch):
    import logging

    from convener.ops import transcript_writer

    caplog.set_level(logging.INFO, "convener.ops.transcript_writer")
    monkeypatch.setattr(transcript_writer, "RETRY_FIRST_S", 0.02)
    monkeypatch.setattr(transcript_writer, "RETRY_MAX_S", 0.05)
    store = DownStore()
    writer = TranscriptWriter(store).start()
    for i in range(20):
        writer.add_turn("c", "caller", f"t{i}")
    await asyncio.sleep(0.3)
    assert store.writes == [] and store.attempts > 3 and writer.retries > 3  # tried again, not dropped
    store.up = True
    for i in range(20, 25):
        writer.add_turn("c", "caller", f"t{i}")
    await writer.close()
    assert store.writes == [f"t{i}" for i in range(25)]  # nothing lost, in order
    assert metrics.TRANSCRIPT_ERRORS_TOTAL.value() == 1 and metrics.TRANSCRIPT_DROPPED_TOTAL.value() == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("transcript store unreachable" in m for m in messages) == 1
    assert any("writes work again" in m for m in messages)


async def test_after_a_start_conversations_of_rooms_nobody_is_in_are_ended():
    store = StateStore()
    store.gate.set()
    writer = TranscriptWriter(store).start()
    writer.end_unresumed({"lobby", "sales"})  # callers were adopted into these two
    await writer.close()
    assert store.ended == ["c-gone"]
