"""PostgreSQL transcript store (``asyncpg``), shared by several convener nodes.

Tables are created on first use (``IF NOT EXISTS``). Conversation ids are unique across nodes
(the call's conversation id); every row records the ``node_id`` of the instance that wrote it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from convener.ops.transcripts.base import (
    NOT_RESUMED,
    Conversation,
    TranscriptStore,
    Turn,
    When,
    _timings_json,
    _ts,
    like_pattern,
)
from convener.settings import ConfigError
from convener.timings import TurnTimings

PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS convener_conversations (
    conversation_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    room TEXT NOT NULL,
    node_id TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS convener_conversations_started ON convener_conversations (started_at);
CREATE TABLE IF NOT EXISTS convener_turns (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES convener_conversations (conversation_id),
    node_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    floor_holder TEXT,
    timings JSONB
);
CREATE INDEX IF NOT EXISTS convener_turns_conversation ON convener_turns (conversation_id, at, id);
CREATE TABLE IF NOT EXISTS convener_floor_states (
    conversation_id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    node_id TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS convener_floor_states_room ON convener_floor_states (node_id, room, updated_at);
"""

_SELECT = ("SELECT c.conversation_id, c.call_id, c.room, c.node_id, c.started_at, c.ended_at, c.end_reason, "
           "(SELECT COUNT(*) FROM convener_turns t WHERE t.conversation_id = c.conversation_id) AS n "
           "FROM convener_conversations c ")


def _conversation(r: Any) -> Conversation:
    return Conversation(r["conversation_id"], r["call_id"], r["room"], r["started_at"], r["ended_at"],
                        r["end_reason"], r["node_id"], int(r["n"]))


class PostgresTranscriptStore(TranscriptStore):
    def __init__(self, pool: Any, node_id: str) -> None:
        self._pool = pool
        self.node_id = node_id

    @classmethod
    async def connect(cls, url: str, node_id: str, min_size: int = 1, max_size: int = 4) -> PostgresTranscriptStore:
        try:
            import asyncpg
        except ImportError:
            raise ConfigError("ops.transcripts_url names PostgreSQL but the Python package asyncpg is not "
                              "installed: pip install asyncpg") from None
        pool = await asyncpg.create_pool(url.replace("postgres://", "postgresql://", 1),
                                         min_size=min_size, max_size=max_size, command_timeout=10, timeout=5)
        async with pool.acquire() as conn:
            # Several nodes may start at once: serialise the schema creation.
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7474017)")
                await conn.execute(PG_SCHEMA)
        return cls(pool, node_id)

    async def start_conversation(self, conversation_id: str, call_id: str, room: str,
                                 started_at: When = None) -> None:
        await self._pool.execute(
            "INSERT INTO convener_conversations (conversation_id, call_id, room, node_id, started_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_id) DO NOTHING",
            conversation_id, call_id, room, self.node_id, _ts(started_at))

    async def add_turn(self, conversation_id: str, speaker: str, text: str, at: When = None,
                       floor_holder: str | None = None,
                       timings: TurnTimings | dict[str, Any] | None = None) -> None:
        await self._pool.execute(
            "INSERT INTO convener_turns (conversation_id, node_id, at, speaker, text, floor_holder, timings) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
            conversation_id, self.node_id, _ts(at), speaker, text, floor_holder, _timings_json(timings))

    async def end_conversation(self, conversation_id: str, ended_at: When = None, reason: str = "") -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE convener_conversations SET ended_at = $1, end_reason = $2 WHERE conversation_id = $3",
                _ts(ended_at), reason, conversation_id)
            await conn.execute("DELETE FROM convener_floor_states WHERE conversation_id = $1", conversation_id)

    async def save_floor_state(self, conversation_id: str, room: str, state: str, at: When = None) -> None:
        others = ("SELECT conversation_id FROM convener_floor_states WHERE node_id = $1 AND room = $2 "
                  "AND conversation_id != $3")
        async with self._pool.acquire() as conn, conn.transaction():
            # A room has one live conversation per node: an older one was not resumed.
            await conn.execute(f"UPDATE convener_conversations SET ended_at = $4, end_reason = $5 "
                               f"WHERE ended_at IS NULL AND conversation_id IN ({others})",
                               self.node_id, room, conversation_id, _ts(at), NOT_RESUMED)
            await conn.execute("DELETE FROM convener_floor_states WHERE node_id = $1 AND room = $2 "
                               "AND conversation_id != $3", self.node_id, room, conversation_id)
            await conn.execute(
                "INSERT INTO convener_floor_states (conversation_id, room, node_id, updated_at, state) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_id) DO UPDATE SET room = EXCLUDED.room, "
                "node_id = EXCLUDED.node_id, updated_at = EXCLUDED.updated_at, state = EXCLUDED.state",
                conversation_id, room, self.node_id, _ts(at), state)

    async def live_floor_state(self, room: str) -> str | None:
        row = await self._pool.fetchrow(
            "SELECT state FROM convener_floor_states WHERE node_id = $1 AND room = $2 "
            "ORDER BY updated_at DESC LIMIT 1", self.node_id, room)
        return row["state"] if row else None

    async def floor_state_rooms(self) -> list[tuple[str, str]]:
        rows = await self._pool.fetch(
            "SELECT conversation_id, room FROM convener_floor_states WHERE node_id = $1", self.node_id)
        return [(r["conversation_id"], r["room"]) for r in rows]

    async def list(self, limit: int = 20) -> list[Conversation]:
        rows = await self._pool.fetch(_SELECT + "ORDER BY c.started_at DESC LIMIT $1", limit)
        return [_conversation(r) for r in rows]

    async def search(self, room: str = "", since: When = None, until: When = None, text: str = "",
                     limit: int = 100) -> list[Conversation]:
        where: list[str] = []
        args: list[Any] = []

        def arg(v: Any) -> str:
            args.append(v)
            return f"${len(args)}"

        if room:
            where.append(f"c.room = {arg(room)}")
        if since is not None:
            where.append(f"c.started_at >= {arg(_ts(since))}")
        if until is not None:
            where.append(f"c.started_at < {arg(_ts(until))}")
        if text:
            where.append("EXISTS (SELECT 1 FROM convener_turns t WHERE t.conversation_id = c.conversation_id "
                         f"AND t.text ILIKE {arg(like_pattern(text))} ESCAPE '\\')")
        sql = (_SELECT + (f"WHERE {' AND '.join(where)} " if where else "")
               + f"ORDER BY c.started_at DESC LIMIT {arg(limit)}")
        return [_conversation(r) for r in await self._pool.fetch(sql, *args)]

    async def get(self, conversation_id: str) -> Conversation | None:
        row = await self._pool.fetchrow(_SELECT + "WHERE c.conversation_id = $1", conversation_id)
        if row is None:
            return None
        conv = _conversation(row)
        turns = await self._pool.fetch(
            "SELECT speaker, text, at, floor_holder, timings, node_id FROM convener_turns "
            "WHERE conversation_id = $1 ORDER BY at, id", conversation_id)
        conv.turns = [Turn(t["speaker"], t["text"], _aware(t["at"]), t["floor_holder"],
                           json.loads(t["timings"]) if t["timings"] else None, t["node_id"]) for t in turns]
        return conv

    async def purge(self, before: When) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            old = "SELECT conversation_id FROM convener_conversations WHERE started_at < $1"
            await conn.execute(f"DELETE FROM convener_turns WHERE conversation_id IN ({old})", _ts(before))
            await conn.execute(f"DELETE FROM convener_floor_states WHERE conversation_id IN ({old})", _ts(before))
            status = await conn.execute("DELETE FROM convener_conversations WHERE started_at < $1", _ts(before))
        return int(status.rsplit(" ", 1)[-1])

    async def close(self) -> None:
        await self._pool.close()


def _aware(at: datetime) -> datetime:
    return _ts(at)
