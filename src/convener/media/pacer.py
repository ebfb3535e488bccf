"""Outbound pacing: TTS audio of any sample rate in, one 20 ms frame out every 20 ms.

``PacerCore`` is the whole logic and takes the time as an argument (tested with a fake
clock); ``Pacer`` is the thin asyncio task that asks it what is due and calls
``transport.send``.

Scheduling (against ``time.monotonic()``):

- a reply starts once ``warmup_ms`` of it is buffered (or all of it, if shorter), so a slow
  first TTS chunk does not cause an immediate underrun; the first frame goes out at once;
- frame *k* of a talk-spurt is due at ``start + k·20 ms`` (absolute deadlines, so no drift);
  it may leave up to ``early_ms`` (1 ms) before its deadline: asyncio timers fire up to ~1 ms
  late (epoll's millisecond timeout is rounded up), and this window cancels that bias;
- a frame sent up to one frame late keeps the schedule (the next one catches up); if the pacer
  fell behind by more than one frame (a stall of the event loop), the schedule is reset to
  "now": the missed time is not replayed as a burst;
- when the queue runs dry mid-reply (TTS slower than real time) the pacer goes idle (an
  underrun is counted) and warms up again when audio returns;
- frames are counted late when sent more than ``late_ms`` (5 ms) after their deadline.

Input: ``feed(reply_id, pcm16, sample_rate)`` with chunks of any size; each reply has its own
``soxr.ResampleStream`` (streaming, state kept across chunks) to the leg rate;
``end_reply(reply_id)`` drains the resampler and pads the tail to a whole frame with silence.
A frame never mixes two replies.

Accounting: per reply, the time the first frame went out (``first_frame_at``, for the
``first_audio_out`` timing mark) and how many samples of real audio (padding excluded) were
sent. ``flush()`` (barge-in) stops at once, drops everything queued and returns those reports
for the replies it interrupted. On RTP the frames Asterisk got are what the caller heard
(Asterisk does not buffer our RTP beyond its own jitter handling); on chan_websocket the
transport sends ``FLUSH_MEDIA`` so the same holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import soxr

log = logging.getLogger(__name__)


@dataclass
class PlaybackReport:
    """How much of one reply went out to the caller."""

    reply_id: str
    sample_rate: int
    played_samples: int = 0
    queued_samples: int = 0  # real samples accepted into the queue so far (at leg rate)
    first_frame_at: float | None = None
    finished: bool = False  # every queued sample was sent and end_reply() was called
    interrupted: bool = False  # flush() cut it

    @property
    def played_ms(self) -> float:
        return self.played_samples * 1000.0 / self.sample_rate


@dataclass
class PacerStats:
    frames_sent: int = 0
    late_frames: int = 0  # sent more than late_ms after their deadline
    max_lateness_ms: float = 0.0
    schedule_resets: int = 0  # fell behind > 1 frame: schedule moved to now (no burst)
    underruns: int = 0  # ran dry in the middle of a reply
    flushes: int = 0
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=3000))


@dataclass
class _Segment:
    reply_id: str
    pcm: bytearray
    ended: bool = False


class PacerCore:
    """The pacing logic; no I/O, no clock of its own (``now`` is passed in)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        frame_ms: int = 20,
        warmup_ms: int = 40,
        late_ms: float = 5.0,
        early_ms: float = 1.0,
        resample_quality: str = "HQ",
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_s = frame_ms / 1000.0
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self.warmup_bytes = sample_rate * warmup_ms // 1000 * 2
        self.late_s = late_ms / 1000.0
        self.early_s = early_ms / 1000.0
        self.quality = resample_quality
        self.stats = PacerStats()
        self.reports: dict[str, PlaybackReport] = {}
        self._segments: deque[_Segment] = deque()
        self._resamplers: dict[str, tuple[int, soxr.ResampleStream]] = {}
        self._carry: dict[str, bytes] = {}
        self._deadline: float | None = None
        self.current_reply: str | None = None  # reply of the last frame sent, while playing

    # -- input ----------------------------------------------------------------------------
    def _segment_for(self, reply_id: str) -> _Segment:
        if self._segments and self._segments[-1].reply_id == reply_id and not self._segments[
            -1
        ].ended:
            return self._segments[-1]
        seg = _Segment(reply_id, bytearray())
        self._segments.append(seg)
        return seg

    def _report(self, reply_id: str) -> PlaybackReport:
        rep = self.reports.get(reply_id)
        if rep is None:
            rep = self.reports[reply_id] = PlaybackReport(reply_id, self.sample_rate)
        return rep

    def feed(self, reply_id: str, pcm: bytes, sample_rate: int) -> None:
        """Queue a TTS chunk (PCM16 LE mono at ``sample_rate``) for reply ``reply_id``."""
        rep = self._report(reply_id)
        if rep.interrupted or rep.finished:
            return  # late chunks of a flushed/finished reply are dropped
        data = self._carry.pop(reply_id, b"") + pcm
        if len(data) % 2:
            self._carry[reply_id] = data[-1:]
            data = data[:-1]
        if not data:
            return
        if sample_rate != self.sample_rate:
            data = self._resample(reply_id, data, sample_rate, last=False)
        if data:
            self._segment_for(reply_id).pcm += data
            rep.queued_samples += len(data) // 2

    def _resample(self, reply_id: str, data: bytes, rate: int, last: bool) -> bytes:
        cur = self._resamplers.get(reply_id)
        out = b""
        if cur is not None and cur[0] != rate:
            out = cur[1].resample_chunk(np.zeros(0, dtype=np.int16), last=True).tobytes()
            cur = None
        if cur is None:
            cur = (rate, soxr.ResampleStream(rate, self.sample_rate, 1, dtype="int16",
                                             quality=self.quality))
            self._resamplers[reply_id] = cur
        x = np.frombuffer(data, dtype="<i2")
        return out + np.asarray(cur[1].resample_chunk(x, last=last), dtype="<i2").tobytes()

    def end_reply(self, reply_id: str) -> None:
        """No more audio for ``reply_id``: drain its resampler, pad its tail to a frame."""
        rep = self._report(reply_id)
        if rep.interrupted or rep.finished:
            return
        self._carry.pop(reply_id, None)
        cur = self._resamplers.pop(reply_id, None)
        seg = self._segment_for(reply_id)
        if cur is not None:
            tail = np.asarray(
                cur[1].resample_chunk(np.zeros(0, dtype=np.int16), last=True), dtype="<i2"
            ).tobytes()
            seg.pcm += tail
            rep.queued_samples += len(tail) // 2
        seg.ended = True
        if not seg.pcm and self._segments and self._segments[0] is seg:
            self._segments.popleft()
            rep.finished = True

    # -- scheduling -----------------------------------------------------------------------
    @property
    def is_playing(self) -> bool:
        """A reply is being sent or waiting in the queue."""
        return bool(self._segments) or self._deadline is not None

    def buffered_ms(self) -> float:
        return sum(len(s.pcm) for s in self._segments) * 500.0 / self.sample_rate

    def _ready_to_start(self) -> bool:
        if not self._segments:
            return False
        head = self._segments[0]
        return head.ended or len(head.pcm) >= max(self.warmup_bytes, self.frame_bytes)

    def next_deadline(self, now: float) -> float | None:
        """When ``pop_due`` will have a frame (``now`` if at once; None: wait for input)."""
        if self._deadline is not None:
            return self._deadline - self.early_s
        return now if self._ready_to_start() else None

    def pop_due(self, now: float) -> tuple[str, bytes] | None:
        """The frame to send now as ``(reply_id, pcm)``, or None if nothing is due."""
        if self._deadline is None:
            if not self._ready_to_start():
                return None
            self._deadline = now
        lateness = now - self._deadline
        if lateness < -self.early_s - 1e-9:  # (tolerance: float rounding of deadlines)
            return None
        cut = self._cut_frame()
        if cut is None:
            if self._segments:  # mid-reply underrun (not just the end of the last reply)
                self.stats.underruns += 1
            self._deadline = None
            self.current_reply = None
            return None
        reply_id, frame, real = cut
        st = self.stats
        st.frames_sent += 1
        st.lateness_ms.append(lateness * 1000.0)
        if lateness > self.late_s:
            st.late_frames += 1
            st.max_lateness_ms = max(st.max_lateness_ms, lateness * 1000.0)
        if lateness > self.frame_s:
            st.schedule_resets += 1
            self._deadline = now + self.frame_s
        else:
            self._deadline += self.frame_s
        rep = self.reports[reply_id]
        if rep.first_frame_at is None:
            rep.first_frame_at = now
        rep.played_samples += real
        self.current_reply = reply_id
        return reply_id, frame

    def _cut_frame(self) -> tuple[str, bytes, int] | None:
        fb = self.frame_bytes
        while self._segments:
            seg = self._segments[0]
            if len(seg.pcm) >= fb:
                frame = bytes(seg.pcm[:fb])
                del seg.pcm[:fb]
                self._finish_if_done(seg)
                return seg.reply_id, frame, fb // 2
            if seg.ended:
                if not seg.pcm:
                    self._finish_if_done(seg)
                    continue
                real = len(seg.pcm) // 2
                frame = bytes(seg.pcm) + bytes(fb - len(seg.pcm))
                seg.pcm.clear()
                self._finish_if_done(seg)
                return seg.reply_id, frame, real
            return None  # head reply not ended but short: underrun
        return None

    def _finish_if_done(self, seg: _Segment) -> None:
        if seg.ended and not seg.pcm and self._segments and self._segments[0] is seg:
            self._segments.popleft()
            self.reports[seg.reply_id].finished = True

    def flush(self) -> dict[str, PlaybackReport]:
        """Barge-in: stop now, drop the queue; reports of the replies this interrupted."""
        cut: dict[str, PlaybackReport] = {}
        ids = [s.reply_id for s in self._segments]
        if self.current_reply is not None:
            ids.insert(0, self.current_reply)
        ids.extend(self._resamplers)
        for rid in ids:
            rep = self.reports.get(rid)
            if rep is not None and not rep.finished:
                rep.interrupted = True
                cut[rid] = rep
        self._segments.clear()
        self._resamplers.clear()
        self._carry.clear()
        self._deadline = None
        self.current_reply = None
        self.stats.flushes += 1
        return cut

    def forget(self, reply_id: str) -> None:
        """Drop the report of a reply the caller no longer needs (bounded memory)."""
        self.reports.pop(reply_id, None)


class Pacer:
    """The asyncio shell around ``PacerCore``: sends due frames via ``send``.

    ``send`` is the transport's ``send`` (non-blocking). ``on_first_frame(reply_id, t)`` fires
    when a reply's first frame went out (``t`` is ``time.monotonic()``), ``on_reply_done(report)``
    when a reply was played to its end. Callbacks must not block.
    """

    def __init__(
        self,
        core: PacerCore,
        send: Callable[[bytes], None],
        *,
        clear_output: Callable[[], None] | None = None,
        on_first_frame: Callable[[str, float], None] | None = None,
        on_reply_done: Callable[[PlaybackReport], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = core
        self._send = send
        self._clear_output = clear_output
        self._on_first = on_first_frame
        self._on_done = on_reply_done
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._last_late_log = float("-inf")
        self._logged_late = 0

    @property
    def stats(self) -> PacerStats:
        return self.core.stats

    @property
    def is_playing(self) -> bool:
        return self.core.is_playing

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pacer")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> Pacer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def feed(self, reply_id: str, pcm: bytes, sample_rate: int) -> None:
        self.core.feed(reply_id, pcm, sample_rate)
        self._poke()

    def end_reply(self, reply_id: str) -> None:
        self.core.end_reply(reply_id)
        self._poke()

    def flush(self) -> dict[str, PlaybackReport]:
        """Barge-in: stop now; also tells the transport to drop anything queued remotely."""
        reports = self.core.flush()
        if self._clear_output is not None:
            self._clear_output()
        self._poke()
        return reports

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        core = self.core
        while True:
            now = self._clock()
            due = core.pop_due(now)
            if due is not None:
                reply_id, frame = due
                try:
                    self._send(frame)
                except Exception:  # a broken transport must not kill pacing silently
                    log.exception("pacer: send failed")
                rep = core.reports[reply_id]
                if rep.first_frame_at == now and self._on_first is not None:
                    self._on_first(reply_id, now)
                if rep.finished and self._on_done is not None:
                    self._on_done(rep)
                late = core.stats.late_frames
                if late > self._logged_late and now - self._last_late_log > 10.0:
                    self._last_late_log = now
                    self._logged_late = late
                    # A few ms late is inaudible (Asterisk's jitter handling absorbs it); past
                    # 40 ms the caller may hear a glitch.
                    level = logging.WARNING if core.stats.max_lateness_ms > 40 else logging.INFO
                    log.log(level, "pacer: %d late frames so far (max %.1f ms late)",
                            late, core.stats.max_lateness_ms)
                continue
            deadline = core.next_deadline(now)
            self._wake = loop.create_future()
            handle = None
            if deadline is not None:
                # loop.time() is time.monotonic() on the default loop.
                handle = loop.call_at(loop.time() + (deadline - now), self._poke)
            try:
                await self._wake
            finally:
                self._wake = None
                if handle is not None:
                    handle.cancel()
