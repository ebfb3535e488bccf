from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convener.media.jitter import JitterBuffer


def seqs(out):
    return [(s & 0xFFFF, item) for s, item in out]


def test_in_order_passes_straight_through() -> None:
    jb: JitterBuffer[str] = JitterBuffer(depth=3, max_wait=0.06)
    got = []
    for i in range(10):
        got += jb.push(100 + i, f"p{i}", now=i * 0.02)
    assert [item for _, item in got] == [f"p{i}" for i in range(10)]
    assert jb.stats.lost == jb.stats.late == jb.stats.duplicate == 0
    assert jb.pending == 0


def test_reorder_within_depth_is_fixed() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=3, max_wait=1.0)
    got = []
    for seq in (1, 3, 2, 4, 6, 5):
        got += jb.push(seq, seq, now=0.0)
    assert [item for _, item in got] == [1, 2, 3, 4, 5, 6]
    assert jb.stats.reordered == 2 and jb.stats.lost == 0


def test_loss_declared_after_depth_packets() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=2, max_wait=10.0)
    out = jb.push(1, 1, 0.0)
    assert seqs(out) == [(1, 1)]
    assert jb.push(3, 3, 0.0) == []  # waiting for 2
    assert jb.push(4, 4, 0.0) == []  # 2 buffered == depth: still waiting
    out = jb.push(5, 5, 0.0)  # 3 buffered > depth: 2 is lost
    assert seqs(out) == [(2, None), (3, 3), (4, 4), (5, 5)]
    assert jb.stats.lost == 1
    # 2 arriving now is late, not played
    assert jb.push(2, 2, 0.0) == []
    assert jb.stats.late == 1 and jb.stats.duplicate == 0


def test_loss_declared_after_max_wait_by_poll() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=5, max_wait=0.06)
    jb.push(1, 1, 0.0)
    assert jb.push(3, 3, 0.02) == []
    assert jb.oldest_wait_deadline() == pytest.approx(0.08)
    assert jb.poll(0.07) == []
    out = jb.poll(0.081)
    assert seqs(out) == [(2, None), (3, 3)]
    assert jb.pending == 0 and jb.oldest_wait_deadline() is None


def test_zero_depth_never_waits() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=0, max_wait=0.0)
    jb.push(1, 1, 0.0)
    assert seqs(jb.push(4, 4, 0.0)) == [(2, None), (3, None), (4, 4)]


def test_duplicates_dropped_and_counted() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=3, max_wait=1.0)
    got = jb.push(1, 1, 0) + jb.push(1, 1, 0) + jb.push(3, 3, 0) + jb.push(3, 3, 0)
    got += jb.push(2, 2, 0)
    assert [i for _, i in got] == [1, 2, 3]
    assert jb.stats.duplicate == 2 and jb.stats.late == 0


def test_wraparound() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=3, max_wait=1.0)
    got = []
    order = [65533, 65534, 0, 65535, 1, 2]
    for s in order:
        got += jb.push(s, s, 0.0)
    assert [i for _, i in got] == [65533, 65534, 65535, 0, 1, 2]
    ext = [e for e, _ in got]
    assert ext == sorted(ext) and ext[-1] - ext[0] == 5
    assert jb.stats.lost == 0


def test_big_jump_resyncs_instead_of_mass_loss() -> None:
    jb: JitterBuffer[int] = JitterBuffer(depth=3, max_wait=1.0, resync_gap=100)
    jb.push(10, 10, 0)
    out = jb.push(30000, 30000, 0)
    assert seqs(out) == [(30000, 30000)]
    assert jb.stats.resyncs == 1 and jb.stats.lost == 0
    # and backwards far: a new stream too, not "late" forever
    out = jb.push(5, 5, 0)
    assert seqs(out) == [(5, 5)]
    assert seqs(jb.push(6, 6, 0)) == [(6, 6)]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 65535), st.integers(1, 300), st.integers(0, 2**31), st.integers(0, 6))
def test_never_stalls_and_always_in_order(start, n, seed, depth) -> None:
    rnd = random.Random(seed)
    order = [(start + i) & 0xFFFF for i in range(n)]
    # local reordering (swap neighbours), loss and duplicates
    for i in range(n - 1):
        if rnd.random() < 0.2:
            order[i], order[i + 1] = order[i + 1], order[i]
    arrivals = []
    for s in order:
        r = rnd.random()
        if r < 0.1:
            continue
        arrivals.append(s)
        if r > 0.95:
            arrivals.append(s)
    jb: JitterBuffer[int] = JitterBuffer(depth=depth, max_wait=0.06)
    out = []
    t = 0.0
    for s in arrivals:
        t += 0.02
        out += jb.push(s, s, t)
        assert jb.pending <= depth  # bounded wait in packets
    out += jb.poll(t + 1.0)
    assert jb.pending == 0
    ext = [e for e, _ in out]
    assert ext == list(range(ext[0], ext[0] + len(ext))) if ext else True
    for e, item in out:
        if item is not None:
            assert item == e & 0xFFFF
    delivered = {i for _, i in out if i is not None}
    assert len(delivered) == jb.stats.delivered
    st_ = jb.stats
    assert st_.received == len(arrivals)
    assert st_.delivered + st_.late + st_.duplicate == st_.received
