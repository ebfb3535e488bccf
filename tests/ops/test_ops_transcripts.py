from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

from convener.ops.settings import OpsSettings
from convener.ops.transcripts import NullTranscriptStore, SqliteTranscriptStore, TranscriptStore, open_store
from convener.timings import TurnTimings

T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


async def _conversation(store: TranscriptStore, conv: str, call: str = "1700.1", room: str = "lobby") -> None:
    await store.start_conversation(conv, call, room, T0)
    t = TurnTimings("t1")
    t.mark("end_of_turn", 1.0)
    t.mark("first_audio_out", 1.6)
    await store.add_turn(conv, "caller", "I need a flight to Denver", T0 + timedelta(seconds=2))
    await store.add_turn(conv, "flights", "Which day?", T0 + timedelta(seconds=3), floor_holder="flights",
                         timings=t)
    await store.add_turn(conv, "caller", "Friday", (T0 + timedelta(seconds=5)).timestamp(),
                         floor_holder="flights")
    await store.end_conversation(conv, T0 + timedelta(seconds=9), reason="caller hung up")


async def _check_roundtrip(store: TranscriptStore, conv: str, node: str) -> None:
    got = await store.get(conv)
    assert got is not None
    assert (got.call_id, got.room, got.node_id, got.end_reason) == ("1700.1", "lobby", node, "caller hung up")
    assert got.started_at == T0 and got.ended_at == T0 + timedelta(seconds=9)
    assert [(t.speaker, t.text, t.floor_holder) for t in got.turns] == [
        ("caller", "I need a flight to Denver", None),
        ("flights", "Which day?", "flights"),
        ("caller", "Friday", "flights"),
    ]
    assert got.turns[2].at == T0 + timedelta(seconds=5)
    assert got.turns[1].timings == {"turn_id": "t1", "breakdown_ms": {"end_of_turn->first_audio_out": 600.0}}
    assert got.turn_count == 3
    assert got.to_json()["turns"][0]["at"] == (T0 + timedelta(seconds=2)).isoformat()
    assert await store.get("no-such-conversation") is None


async def test_sqlite_roundtrip_and_listing(tmp_path):
    settings = OpsSettings(state_dir=str(tmp_path / "state"), node_id="node-a")
    store = await open_store(settings)
    assert isinstance(store, SqliteTranscriptStore)
    assert store.path == tmp_path / "state" / "transcripts.sqlite3"
    try:
        await _conversation(store, "conv-1")
        await store.start_conversation("conv-2", "1700.2", "sales", T0 + timedelta(minutes=1))
        await _check_roundtrip(store, "conv-1", "node-a")
        listed = await store.list(10)
        assert [c.conversation_id for c in listed] == ["conv-2", "conv-1"]  # latest first
        assert [c.turn_count for c in listed] == [0, 3]
        assert listed[0].ended_at is None and listed[0].turns == []
        assert [c.conversation_id for c in await store.list(1)] == ["conv-2"]
        # every database call ran on the store's worker thread, never on the event loop's
        assert store.thread_ids and threading.get_ident() not in store.thread_ids
    finally:
        await store.close()
    assert (tmp_path / "state" / "transcripts.sqlite3").stat().st_mode & 0o077 == 0o040
    # the data survives a restart
    store = await open_store(settings)
    try:
        await _check_roundtrip(store, "conv-1", "node-a")
    finally:
        await store.close()


async def test_sqlite_url_and_event_loop_stays_responsive(tmp_path):
    store = await open_store(OpsSettings(transcripts_url=f"sqlite:///{tmp_path}/t.db", node_id="n"))
    assert (tmp_path / "t.db").exists()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await store.start_conversation("c", "1", "lobby", T0)
        await asyncio.gather(*(store.add_turn("c", "caller", f"turn {i}", T0 + timedelta(seconds=i))
                               for i in range(200)))
    finally:
        task.cancel()
    got = await store.get("c")
    await store.close()
    assert got is not None and got.turn_count == 200
    assert [t.text for t in got.turns][:3] == ["turn 0", "turn 1", "turn 2"]
    assert ticks > 50  # the loop kept running while the worker wrote


async def test_transcripts_disabled_keeps_nothing(tmp_path):
    store = await open_store(OpsSettings(transcripts=False, state_dir=str(tmp_path)))
    assert isinstance(store, NullTranscriptStore)
    await store.start_conversation("c", "1", "lobby", T0)
    await store.add_turn("c", "caller", "hello", T0)
    assert await store.list() == [] and await store.get("c") is None
    assert list(tmp_path.iterdir()) == []


def test_state_dir_resolution(tmp_path, monkeypatch):
    assert OpsSettings(state_dir=str(tmp_path)).resolved_state_dir() == tmp_path
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/convener-systemd")
    assert OpsSettings().resolved_state_dir().as_posix() == "/var/lib/convener-systemd"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setattr("convener.ops.settings.SYSTEM_STATE_DIR", tmp_path / "ro" / "convener")
    (tmp_path / "ro").mkdir(mode=0o500)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    import os

    expected = tmp_path / "ro" / "convener" if os.geteuid() == 0 else tmp_path / "xdg" / "convener"
    assert OpsSettings().resolved_state_dir() == expected


async def test_postgresql_shared_by_two_nodes(pg_url):
    a = await open_store(OpsSettings(transcripts_url=pg_url, node_id="node-a"))
    b = await open_store(OpsSettings(transcripts_url=pg_url, node_id="node-b"))
    conv_a, conv_b = f"conv-{uuid.uuid4().hex}", f"conv-{uuid.uuid4().hex}"
    try:
        assert type(a).__name__ == "PostgresTranscriptStore"
        await _conversation(a, conv_a)
        await b.start_conversation(conv_b, "1800.1", "sales", T0 + timedelta(hours=1))
        await b.add_turn(conv_b, "caller", "hi", T0 + timedelta(hours=1, seconds=1))
        await _check_roundtrip(b, conv_a, "node-a")  # node b reads what node a wrote
        listed = await a.list(50)
        nodes = {c.conversation_id: c.node_id for c in listed}
        assert nodes[conv_a] == "node-a" and nodes[conv_b] == "node-b"
        got_b = await a.get(conv_b)
        assert got_b is not None and got_b.turns[0].node_id == "node-b" and got_b.ended_at is None
    finally:
        await a.close()
        await b.close()


async def test_purge_deletes_old_conversations_and_their_turns(tmp_path):
    store = await open_store(OpsSettings(state_dir=str(tmp_path), node_id="n"))
    try:
        await _conversation(store, "old")
        await store.start_conversation("new", "2", "lobby", T0 + timedelta(days=40))
        await store.add_turn("new", "caller", "hello", T0 + timedelta(days=40, seconds=1))
        assert await store.purge(T0 + timedelta(days=30)) == 1
        assert await store.get("old") is None
        got = await store.get("new")
        assert got is not None and got.turn_count == 1
        orphans = await store._run(lambda: store._db().execute("SELECT COUNT(*) FROM turns").fetchone()[0])
        assert orphans == 1
        assert await store.purge(T0) == 0
    finally:
        await store.close()


async def test_postgresql_purge(pg_url):
    store = await open_store(OpsSettings(transcripts_url=pg_url, node_id="node-p"))
    conv = f"conv-{uuid.uuid4().hex}"
    try:
        await store.start_conversation(conv, "1", "lobby", T0 - timedelta(days=3650))
        await store.add_turn(conv, "caller", "long ago", T0 - timedelta(days=3650))
        assert await store.purge(T0 - timedelta(days=3000)) == 1
        assert await store.get(conv) is None
    finally:
        await store.close()


async def _floor_states(a: TranscriptStore, b: TranscriptStore) -> None:
    """Two nodes on one store (or one node twice): each room's live state, per node."""
    c1, c2, c3 = (f"conv-{uuid.uuid4().hex}" for _ in range(3))
    room = f"room-{uuid.uuid4().hex[:6]}"
    assert await a.live_floor_state(room) is None
    await a.start_conversation(c1, "1", room, T0)
    await a.save_floor_state(c1, room, '{"n": 1}', T0)
    await a.save_floor_state(c1, room, '{"n": 2}', T0 + timedelta(seconds=1))  # replaced as it changes
    assert await a.live_floor_state(room) == '{"n": 2}'
    assert (c1, room) in await a.floor_state_rooms()
    if a.node_id != b.node_id:
        assert (c1, room) not in await b.floor_state_rooms()
        assert await b.live_floor_state(room) is None  # another node's room of the same name
    # A new conversation in the same room on the same node: the old one was not resumed.
    await a.start_conversation(c2, "2", room, T0 + timedelta(seconds=5))
    await a.save_floor_state(c2, room, '{"n": 3}', T0 + timedelta(seconds=5))
    assert await a.live_floor_state(room) == '{"n": 3}'
    old = await a.get(c1)
    assert old is not None and old.end_reason == "not resumed after a restart" and old.ended_at is not None
    # The end of a conversation removes its state.
    await a.end_conversation(c2, T0 + timedelta(seconds=9), reason="caller hung up")
    assert await a.live_floor_state(room) is None
    await a.start_conversation(c3, "3", room, T0 + timedelta(seconds=10))
    await a.save_floor_state(c3, room, '{"n": 4}', T0 + timedelta(seconds=10))
    assert await a.purge(T0 + timedelta(days=1)) >= 3
    assert await a.live_floor_state(room) is None  # purged with its conversation


async def test_sqlite_floor_states(tmp_path):
    store = await open_store(OpsSettings(state_dir=str(tmp_path), node_id="n1"))
    try:
        await _floor_states(store, store)
    finally:
        await store.close()
    again = await open_store(OpsSettings(state_dir=str(tmp_path), node_id="n1"))
    try:  # the schema is created on an existing file too
        assert await again.live_floor_state("lobby") is None
    finally:
        await again.close()


async def test_postgresql_floor_states(pg_url):
    a = await open_store(OpsSettings(transcripts_url=pg_url, node_id="node-a"))
    b = await open_store(OpsSettings(transcripts_url=pg_url, node_id="node-b"))
    try:
        await _floor_states(a, b)
    finally:
        await a.close()
        await b.close()


async def test_null_store_keeps_no_floor_state():
    store = NullTranscriptStore()
    await store.save_floor_state("c", "lobby", "{}")
    assert await store.live_floor_state("lobby") is None
