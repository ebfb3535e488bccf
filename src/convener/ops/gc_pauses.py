"""Garbage-collector pauses: kept off the audio path, and measured.

CPython's cyclic collector stops the whole process while it runs, event loop included: no frame
is read or sent meanwhile. Its youngest generations are cheap (well under a millisecond here),
but a full (oldest-generation) collection walks every container object the process holds, and
a convener process holds a lot once started: the Whisper, TTS, VAD and routing models' Python
side, aiohttp, numpy and the rest. Measured on these 2 cores (docs/decisions.md, "Garbage
collection"): in a process with what ``convener run`` loads, a full collection took 49 ms at
rest and 41-59 ms during 100 calls, and that round's frames were up to 45-66 ms late. Full
collections are rare (none in a 103 s demo call, none in two 30 s rounds of 100 calls), so
this is a rare stall, but one that hits every call at once.

Two parts:

- ``settle_heap()``, once the models are loaded and before the first call: one full collection
  (the start-up garbage), then ``gc.freeze()``, which moves every object alive to a permanent
  generation the collector no longer visits. Later collections only walk what was made since
  (calls, turns): 0.0 ms at rest, 4-6 ms during 100 calls (frames then at most 4-10 ms late).
  What is frozen is never freed: it is what the process keeps until it exits anyway (modules,
  models). Off with ``ops.gc_freeze = false``.
- ``GcPauseMonitor``, a ``gc.callbacks`` hook: how long each collection took, by generation,
  into the ``convener_gc_pause_seconds`` histogram, and one warning line (at most once a minute)
  when one stalled the process for more than 20 ms. Two clock reads per collection.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

WARN_ABOVE_S = 0.020  # a pause longer than one audio frame (20 ms) is worth a line
WARN_EVERY_S = 60.0


@dataclass(frozen=True)
class HeapReport:
    collected: int  # unreachable objects found by the collection before the freeze
    collect_ms: float  # how long that full collection took (what one would cost without the freeze)
    frozen: int  # objects now out of the collector's reach


def settle_heap() -> HeapReport:
    """One full collection, then freeze everything alive (see the module docstring)."""
    t0 = time.perf_counter()
    collected = gc.collect()
    ms = (time.perf_counter() - t0) * 1000
    gc.freeze()
    return HeapReport(collected, ms, gc.get_freeze_count())


class GcPauseMonitor:
    """A ``gc.callbacks`` entry timing each collection.

    ``observe(generation, seconds)`` is called after every collection (from whichever thread
    triggered it; it must be thread-safe and quick). ``longest`` keeps the longest pause seen
    per generation, for benchmarks.
    """

    def __init__(self, observe: Callable[[int, float], None] | None = None, *,
                 warn_above_s: float = WARN_ABOVE_S, warn_every_s: float = WARN_EVERY_S,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._observe = observe
        self.warn_above_s = warn_above_s
        self.warn_every_s = warn_every_s
        self._clock = clock
        self._started: float | None = None
        self._last_warning = float("-inf")
        self.longest: dict[int, float] = {}
        self.counts: dict[int, int] = {}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._clock()
            return
        if self._started is None:
            return
        now = self._clock()
        took, self._started = now - self._started, None
        generation = int(info.get("generation", -1))
        self.counts[generation] = self.counts.get(generation, 0) + 1
        if took > self.longest.get(generation, 0.0):
            self.longest[generation] = took
        if self._observe is not None:
            self._observe(generation, took)
        if took > self.warn_above_s and now - self._last_warning >= self.warn_every_s:
            self._last_warning = now
            log.warning("garbage collection (generation %d) stalled the process for %.0f ms "
                        "(every call's audio waited); ops.gc_freeze keeps start-up objects out of it",
                        generation, took * 1000)

    def reset(self) -> None:
        self.longest.clear()
        self.counts.clear()

    def install(self) -> GcPauseMonitor:
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


_installed: GcPauseMonitor | None = None


def monitor() -> GcPauseMonitor:
    """The process's monitor, feeding ``convener_gc_pause_seconds`` (installed on first use)."""
    global _installed
    if _installed is None:
        from convener.ops import metrics

        _installed = GcPauseMonitor(metrics.gc_pause).install()
    return _installed
