"""Helpers of the ops tests: a transcript store filled with generated conversations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


async def fill_store(store, n: int, turns: int = 12) -> datetime:
    base = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    for i in range(n):
        cid = f"conv:{i:04d}"
        at = base + timedelta(hours=i)
        await store.start_conversation(cid, f"call-{i}", ["lobby", "sales", "support"][i % 3], at)
        for k in range(turns):
            text = f"turn {k} of call {i}: " + ("a flight to Denver please" if i % 50 == 7 and k == 3
                                               else "what is the weather like")
            await store.add_turn(cid, "caller" if k % 2 == 0 else "weather", text, at + timedelta(seconds=5 * k),
                                 floor_holder=None if k % 2 == 0 else "weather")
        await store.end_conversation(cid, at + timedelta(minutes=2), "room closed")
    return base
