"""SQLite transcript store (the default: ``transcripts.sqlite3`` in the state directory), written
from one worker thread so the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from convener.ops.settings import OpsSettings
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
from convener.timings import TurnTimings

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_sqlite_path(settings: OpsSettings) -> Path:
    return settings.resolved_state_dir() / "transcripts.sqlite3"


def sqlite_path(settings: OpsSettings) -> Path | None:
    """The SQLite file the settings name, or None for another backend."""
    url = settings.transcripts_url
    if not url:
        return default_sqlite_path(settings)
    return Path(urlsplit(url).path) if urlsplit(url).scheme == "sqlite" else None



SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    room TEXT NOT NULL,
    node_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS conversations_started ON conversations (started_at);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id),
    node_id TEXT NOT NULL,
    at REAL NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    floor_holder TEXT,
    timings TEXT
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, at, id);
CREATE TABLE IF NOT EXISTS floor_states (
    conversation_id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    node_id TEXT NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS floor_states_room ON floor_states (node_id, room, updated_at);
"""


class SqliteTranscriptStore(TranscriptStore):
    """One connection owned by one worker thread; every call runs there, in order."""

    def __init__(self, path: Path, node_id: str) -> None:
        self.path = path
        self.node_id = node_id
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcripts")
        self._conn: sqlite3.Connection | None = None
        self.thread_ids: set[int] = set()  # threads that touched the database (tests check)

    @classmethod
    async def connect(cls, path: Path, node_id: str) -> SqliteTranscriptStore:
        store = cls(path, node_id)
        await store._run(store._open)
        return store

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fresh = not self.path.exists()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if fresh:
            os.chmod(self.path, 0o640)  # transcripts are personal data
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SQLITE_SCHEMA)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        def call() -> T:
            self.thread_ids.add(threading.get_ident())
            return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("transcript store is closed")
        return self._conn

    async def start_conversation(self, conversation_id: str, call_id: str, room: str,
                                 started_at: When = None) -> None:
        at = _ts(started_at).timestamp()
        await self._run(lambda: self._db().execute(
            "INSERT INTO conversations (conversation_id, call_id, room, node_id, started_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO NOTHING",
            (conversation_id, call_id, room, self.node_id, at)))

    async def add_turn(self, conversation_id: str, speaker: str, text: str, at: When = None,
                       floor_holder: str | None = None,
                       timings: TurnTimings | dict[str, Any] | None = None) -> None:
        row = (conversation_id, self.node_id, _ts(at).timestamp(), speaker, text, floor_holder,
               _timings_json(timings))
        await self._run(lambda: self._db().execute(
            "INSERT INTO turns (conversation_id, node_id, at, speaker, text, floor_holder, timings) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", row))

    async def end_conversation(self, conversation_id: str, ended_at: When = None, reason: str = "") -> None:
        at = _ts(ended_at).timestamp()

        def end() -> None:
            db = self._db()
            db.execute("UPDATE conversations SET ended_at = ?, end_reason = ? WHERE conversation_id = ?",
                       (at, reason, conversation_id))
            db.execute("DELETE FROM floor_states WHERE conversation_id = ?", (conversation_id,))

        await self._run(end)

    async def save_floor_state(self, conversation_id: str, room: str, state: str, at: When = None) -> None:
        when = _ts(at).timestamp()

        def save() -> None:
            db = self._db()
            db.execute("BEGIN")
            try:
                # A room has one live conversation per node: an older one was not resumed.
                others = ("SELECT conversation_id FROM floor_states WHERE node_id = ? AND room = ? "
                          "AND conversation_id != ?")
                key = (self.node_id, room, conversation_id)
                db.execute(f"UPDATE conversations SET ended_at = ?, end_reason = ? WHERE ended_at IS NULL "
                           f"AND conversation_id IN ({others})", (when, NOT_RESUMED, *key))
                db.execute("DELETE FROM floor_states WHERE node_id = ? AND room = ? AND conversation_id != ?", key)
                db.execute(
                    "INSERT INTO floor_states (conversation_id, room, node_id, updated_at, state) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET room = excluded.room, "
                    "node_id = excluded.node_id, updated_at = excluded.updated_at, state = excluded.state",
                    (conversation_id, room, self.node_id, when, state))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(save)

    async def live_floor_state(self, room: str) -> str | None:
        row = await self._run(lambda: self._db().execute(
            "SELECT state FROM floor_states WHERE node_id = ? AND room = ? ORDER BY updated_at DESC LIMIT 1",
            (self.node_id, room)).fetchone())
        return row[0] if row else None

    async def floor_state_rooms(self) -> list[tuple[str, str]]:
        rows = await self._run(lambda: self._db().execute(
            "SELECT conversation_id, room FROM floor_states WHERE node_id = ?", (self.node_id,)).fetchall())
        return [(c, r) for c, r in rows]

    @staticmethod
    def _conversation(row: tuple[Any, ...]) -> Conversation:
        cid, call_id, room, node, started, ended, reason, count = row
        return Conversation(cid, call_id, room, datetime.fromtimestamp(started, UTC),
                            datetime.fromtimestamp(ended, UTC) if ended is not None else None,
                            reason, node, count)

    _SELECT = ("SELECT c.conversation_id, c.call_id, c.room, c.node_id, c.started_at, c.ended_at, "
               "c.end_reason, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.conversation_id) "
               "FROM conversations c ")

    async def list(self, limit: int = 20) -> list[Conversation]:
        rows = await self._run(lambda: self._db().execute(
            self._SELECT + "ORDER BY c.started_at DESC LIMIT ?", (limit,)).fetchall())
        return [self._conversation(r) for r in rows]

    async def search(self, room: str = "", since: When = None, until: When = None, text: str = "",
                     limit: int = 100) -> list[Conversation]:
        where: list[str] = []
        args: list[Any] = []
        if room:
            where.append("c.room = ?")
            args.append(room)
        if since is not None:
            where.append("c.started_at >= ?")
            args.append(_ts(since).timestamp())
        if until is not None:
            where.append("c.started_at < ?")
            args.append(_ts(until).timestamp())
        if text:
            # LIKE is case-insensitive for ASCII in SQLite.
            where.append("EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = c.conversation_id "
                         "AND t.text LIKE ? ESCAPE '\\')")
            args.append(like_pattern(text))
        sql = self._SELECT + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY c.started_at DESC LIMIT ?"
        rows = await self._run(lambda: self._db().execute(sql, (*args, limit)).fetchall())
        return [self._conversation(r) for r in rows]

    async def get(self, conversation_id: str) -> Conversation | None:
        def fetch() -> tuple[Any, list[Any]]:
            db = self._db()
            conv = db.execute(self._SELECT + "WHERE c.conversation_id = ?", (conversation_id,)).fetchone()
            turns = db.execute(
                "SELECT speaker, text, at, floor_holder, timings, node_id FROM turns "
                "WHERE conversation_id = ? ORDER BY at, id", (conversation_id,)).fetchall()
            return conv, turns

        conv_row, turn_rows = await self._run(fetch)
        if conv_row is None:
            return None
        conv = self._conversation(conv_row)
        conv.turns = [Turn(s, t, datetime.fromtimestamp(at, UTC), fh, json.loads(tm) if tm else None, node)
                      for s, t, at, fh, tm, node in turn_rows]
        return conv

    async def purge(self, before: When) -> int:
        cutoff = _ts(before).timestamp()

        def delete() -> int:
            db = self._db()
            db.execute("BEGIN")
            try:
                old = "SELECT conversation_id FROM conversations WHERE started_at < ?"
                db.execute(f"DELETE FROM turns WHERE conversation_id IN ({old})", (cutoff,))
                db.execute(f"DELETE FROM floor_states WHERE conversation_id IN ({old})", (cutoff,))
                n = db.execute("DELETE FROM conversations WHERE started_at < ?", (cutoff,)).rowcount
                db.execute("COMMIT")
                return n
            except BaseException:
                db.execute("ROLLBACK")
                raise

        return await self._run(delete)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)
