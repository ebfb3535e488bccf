"""A small reorder buffer for RTP, keyed by sequence number (pure logic, no I/O, no clock).

Asterisk sends one packet every 20 ms; on loopback they almost never reorder, across a
network they sometimes do. The buffer releases packets strictly in sequence order and never
stalls: a missing packet is waited for until ``depth`` later packets are buffered or until the
oldest buffered packet has waited ``max_wait`` seconds (``poll(now)``), then it is declared
lost and playout moves on. With ``depth=0`` nothing is ever waited for.

Sequence numbers are 16-bit and wrap; they are unwrapped into an ever-increasing extended
sequence number relative to the newest one seen. A jump of more than ``resync_gap`` packets
(either way) is treated as a new stream (e.g. Asterisk re-INVITE/restart) and re-synchronises
instead of emitting thousands of losses or dropping everything as "late".

Outputs are ``(extended_seq, item)`` pairs; ``item`` is ``None`` for a lost packet so the caller
can conceal (repeat or silence). Counters: received, delivered, lost, late (arrived after its
slot was declared lost), duplicate, reordered (arrived out of order but still in time), resyncs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

SEQ_MOD = 1 << 16
_HALF = 1 << 15


@dataclass
class JitterStats:
    received: int = 0
    delivered: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    resyncs: int = 0


class JitterBuffer(Generic[T]):
    """Reorder buffer: ``push`` packets, get back the ones that are ready, in order."""

    def __init__(self, depth: int = 3, max_wait: float = 0.06, resync_gap: int = 500) -> None:
        if depth < 0 or max_wait < 0 or resync_gap < 1:
            raise ValueError("depth and max_wait must be >= 0, resync_gap >= 1")
        self.depth = depth
        self.max_wait = max_wait
        self.resync_gap = resync_gap
        self.stats = JitterStats()
        self._next: int | None = None  # extended seq expected next
        self._top: int | None = None  # newest extended seq seen
        self._buf: dict[int, tuple[T, float]] = {}
        self._recent: deque[int] = deque(maxlen=256)  # recently delivered ext seqs
        self._recent_set: set[int] = set()

    # -- helpers --------------------------------------------------------------------------
    def _unwrap(self, seq: int) -> int:
        seq &= 0xFFFF
        if self._top is None:
            return seq + SEQ_MOD  # start one cycle up so a backwards step stays >= 0
        diff = (seq - self._top) % SEQ_MOD
        if diff >= _HALF:
            diff -= SEQ_MOD
        return self._top + diff

    def _remember(self, ext: int) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(ext)
        self._recent_set.add(ext)

    def _drain(self, out: list[tuple[int, T | None]]) -> None:
        assert self._next is not None
        while self._next in self._buf:
            item, _ = self._buf.pop(self._next)
            out.append((self._next, item))
            self._remember(self._next)
            self.stats.delivered += 1
            self._next += 1

    def _skip_to(self, ext: int, out: list[tuple[int, T | None]]) -> None:
        """Declare everything before ``ext`` that is missing as lost."""
        assert self._next is not None
        while self._next < ext:
            if self._next in self._buf:
                self._drain(out)
                continue
            out.append((self._next, None))
            self.stats.lost += 1
            self._next += 1
        self._drain(out)

    # -- API ------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Packets held back waiting for a gap to fill."""
        return len(self._buf)

    def oldest_wait_deadline(self) -> float | None:
        """When ``poll`` will next give up on a gap (None if nothing is waiting)."""
        if not self._buf:
            return None
        return min(arrival for _, arrival in self._buf.values()) + self.max_wait

    def push(self, seq: int, item: T, now: float) -> list[tuple[int, T | None]]:
        """Add a packet; return what is ready to play, in order (``None`` = lost)."""
        self.stats.received += 1
        out: list[tuple[int, T | None]] = []
        ext = self._unwrap(seq)
        if self._next is None:
            self._next = self._top = ext
        assert self._top is not None
        if abs(ext - self._top) > self.resync_gap:
            # A new stream: what is buffered plays out (after gaps are declared lost).
            if self._buf:
                self._skip_to(max(self._buf) + 1, out)
            self.stats.resyncs += 1
            self._buf.clear()
            self._next = self._top = ext
        if ext < self._next:
            if ext in self._recent_set:
                self.stats.duplicate += 1
            else:
                self.stats.late += 1
            return out
        if ext in self._buf:
            self.stats.duplicate += 1
            return out
        if ext < self._top:
            self.stats.reordered += 1
        self._top = max(self._top, ext)
        self._buf[ext] = (item, now)
        self._drain(out)
        if len(self._buf) > self.depth:
            # Waited long enough (in packets) for the gap at _next: skip it.
            while len(self._buf) > self.depth:
                self._skip_to(min(self._buf), out)
        if self._buf:
            out.extend(self.poll(now))
        return out

    def poll(self, now: float) -> list[tuple[int, T | None]]:
        """Release packets whose gap has waited ``max_wait`` seconds; call on a timer."""
        out: list[tuple[int, T | None]] = []
        while self._buf:
            # Everything buffered is waiting on the gap at _next; the gap has been noticed
            # since the oldest of them arrived.
            if now - min(a for _, a in self._buf.values()) < self.max_wait:
                break
            self._skip_to(min(self._buf), out)
        return out

    def reset(self) -> None:
        """Forget the stream (counters are kept)."""
        self._buf.clear()
        self._next = self._top = None
        self._recent.clear()
        self._recent_set.clear()
