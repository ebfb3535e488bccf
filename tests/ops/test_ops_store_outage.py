"""PostgreSQL stopped during calls, then started again: turns wait in memory and are all
written, in order, when it returns; the call path never waits."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from convener.ops import metrics
from convener.ops.settings import OpsSettings
from convener.ops.transcript_writer import TranscriptWriter
from convener.ops.transcripts import open_store


async def _outage(pg_cluster, outage_s: float) -> None:
    if pg_cluster is None:
        pytest.skip("CONVENER_TEST_PG_URL names an outside server: not stopping it")
    store = await open_store(OpsSettings(transcripts_url=pg_cluster.url, node_id="outage"))
    writer = TranscriptWriter(store).start()
    conv = f"conv-{uuid.uuid4().hex}"
    texts = [f"turn {i}" for i in range(5)]
    writer.start_conversation(conv, "1", "lobby")
    for t in texts:
        writer.add_turn(conv, "caller", t)
    try:
        for _ in range(200):
            if writer.pending == 0:
                break
            await asyncio.sleep(0.02)
        await asyncio.to_thread(pg_cluster.stop)
        stopped = time.monotonic()
        slowest = 0.0
        i = len(texts)
        while time.monotonic() - stopped < outage_s:  # the calls go on
            t0 = time.perf_counter()
            writer.add_turn(conv, "caller", f"turn {i}")
            writer.save_floor_state(conv, "lobby", f'{{"n": {i}}}')
            slowest = max(slowest, time.perf_counter() - t0)
            texts.append(f"turn {i}")
            i += 1
            await asyncio.sleep(outage_s / 20)
        assert writer.pending > 0 and writer.retries > 0  # waiting, not dropped
        await asyncio.to_thread(pg_cluster.start)
        back = time.monotonic()
        for _ in range(600):
            if writer.pending == 0:
                break
            await asyncio.sleep(0.05)
        flushed_s = time.monotonic() - back
        assert writer.pending == 0, f"{writer.pending} writes still waiting {flushed_s:.1f} s after the restart"
        got = await store.get(conv)
        assert got is not None and [t.text for t in got.turns] == texts  # nothing lost, in order
        assert await store.live_floor_state("lobby") == f'{{"n": {i - 1}}}'
        assert metrics.TRANSCRIPT_DROPPED_TOTAL.value() == 0
        assert slowest < 0.02, f"a write call took {slowest * 1000:.1f} ms on the call path"
        print(f"PostgreSQL down {outage_s:.0f} s: {len(texts)} turns kept, all written "
              f"{flushed_s:.1f} s after it was back; slowest write call {slowest * 1e6:.0f} us")
    finally:
        await writer.close()


async def test_postgresql_down_and_up_nothing_lost(pg_cluster):
    await _outage(pg_cluster, 3.0)


@pytest.mark.soak
async def test_postgresql_down_30_s_during_calls(pg_cluster):
    await _outage(pg_cluster, 30.0)
