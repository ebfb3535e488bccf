"""Printing transcripts for ``convener transcripts``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TextIO

from convener.ops.settings import OpsSettings
from convener.ops.transcripts import Conversation, open_store, sqlite_path


def _when(conv: Conversation) -> str:
    return conv.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_list(convs: list[Conversation]) -> str:
    if not convs:
        return "no conversations stored\n"
    lines = [f"{'conversation':36}  {'started':23}  {'room':12}  {'turns':>5}  {'node':12}  ended"]
    for c in convs:
        ended = c.end_reason or ("yes" if c.ended_at else "in progress")
        lines.append(f"{c.conversation_id:36}  {_when(c):23}  {c.room:12}  {c.turn_count:>5}  {c.node_id:12}  {ended}")
    return "\n".join(lines) + "\n"


def format_conversation(c: Conversation) -> str:
    lines = [f"conversation {c.conversation_id}  call {c.call_id}  room {c.room}  node {c.node_id}",
             f"started {_when(c)}"]
    for t in c.turns:
        offset = (t.at - c.started_at).total_seconds()
        floor = f" [floor: {t.floor_holder}]" if t.floor_holder else ""
        lines.append(f"  +{offset:7.1f}s  {t.speaker}{floor}: {t.text}")
    if c.ended_at:
        lines.append(f"ended +{(c.ended_at - c.started_at).total_seconds():.1f}s"
                     + (f" ({c.end_reason})" if c.end_reason else ""))
    else:
        lines.append("in progress")
    return "\n".join(lines) + "\n"


async def show(settings: OpsSettings, conversation_id: str | None, limit: int, as_json: bool, out: TextIO) -> int:
    if not settings.transcripts:
        print("transcripts are disabled (ops.transcripts = false)", file=out)
        return 1
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        print(f"no conversations stored (no transcript file {path})", file=out)
        return 0 if not conversation_id else 1
    store = await open_store(settings)
    try:
        if conversation_id:
            conv = await store.get(conversation_id)
            if conv is None:
                print(f"no conversation {conversation_id!r}", file=out)
                return 1
            out.write(json.dumps(conv.to_json(), indent=2) + "\n" if as_json else format_conversation(conv))
        else:
            convs = await store.list(limit)
            out.write(json.dumps([c.to_json() for c in convs], indent=2) + "\n" if as_json else format_list(convs))
    finally:
        await store.close()
    return 0


async def purge(settings: OpsSettings, days: float, out: TextIO) -> int:
    path = sqlite_path(settings)
    if path is not None and not path.exists():
        print(f"nothing to purge (no transcript file {path})", file=out)
        return 0
    store = await open_store(settings)
    try:
        n = await store.purge(datetime.now(UTC) - timedelta(days=days))
    finally:
        await store.close()
    print(f"purged {n} conversation(s) older than {days:g} day(s)", file=out)
    return 0
