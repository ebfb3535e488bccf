"""Transcripts: every conversation, who said what and when, and which agent held the floor.

SQLite by default (``transcripts.sqlite3`` in the state directory), written from one worker
thread so the event loop never waits on the disk; PostgreSQL when ``ops.transcripts_url`` is a
``postgresql://`` URL (``asyncpg``), where several convener nodes can share one store: every row
carries the ``node_id`` of the instance that wrote it.

    store = await open_store(cfg.ops)
    await store.start_conversation(conversation_id, call_id, room, started_at)
    await store.add_turn(conversation_id, "caller", "a flight to Denver", at, floor_holder="flights")
    await store.end_conversation(conversation_id, ended_at, reason="caller hung up")
    await store.close()

Times are timezone-aware datetimes (UTC) or Unix timestamps (floats). The interface is in
``base`` (which imports no implementation), the implementations in ``sqlite`` and ``postgres``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from convener.ops.settings import OpsSettings
from convener.ops.transcripts.base import (
    NOT_RESUMED,
    Conversation,
    NullTranscriptStore,
    TranscriptStore,
    Turn,
    When,
    like_pattern,
)
from convener.ops.transcripts.sqlite import SqliteTranscriptStore, default_sqlite_path, sqlite_path

__all__ = ["NOT_RESUMED", "Conversation", "NullTranscriptStore", "SqliteTranscriptStore", "TranscriptStore",
           "Turn", "When", "default_sqlite_path", "like_pattern", "open_store", "sqlite_path"]


async def open_store(settings: OpsSettings) -> TranscriptStore:
    """The store the settings name: none (``ops.transcripts = false``), PostgreSQL for a
    ``postgresql://`` URL (``asyncpg`` imported only then), else SQLite."""
    node = settings.resolved_node_id()
    if not settings.transcripts:
        return NullTranscriptStore()
    url = settings.transcripts_url
    scheme = urlsplit(url).scheme if url else "sqlite"
    if scheme in ("postgresql", "postgres"):
        from convener.ops.transcripts.postgres import PostgresTranscriptStore

        return await PostgresTranscriptStore.connect(url, node)
    path = sqlite_path(settings)
    assert path is not None
    return await SqliteTranscriptStore.connect(path, node)
