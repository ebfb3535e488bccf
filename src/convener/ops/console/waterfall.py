"""A turn's latency waterfall from its timing marks (``convener.timings``), for the console.

The origin is the end of the caller's speech: each recorded stage after it becomes a bar from
the previous stage to this one, in milliseconds from the origin. ``origin_monotonic`` is the
origin on ``time.monotonic()`` (the host's CLOCK_MONOTONIC, shared by every process on it), so a
test caller or benchmark on the same host can place convener's stages on its own clock.
"""

from __future__ import annotations

from typing import Any

from convener.timings import STAGES, TurnTimings

ORIGIN = "speech_end"


def waterfall(timings: TurnTimings) -> dict[str, Any]:
    marks = timings.marks
    present = [s for s in STAGES if s in marks]
    origin = ORIGIN if ORIGIN in marks else (present[0] if present else None)
    if origin is None:
        return {"turn_id": timings.turn_id, "origin": None, "total_ms": None, "bars": []}
    t0 = marks[origin]
    after = [s for s in present if marks[s] >= t0 and STAGES.index(s) >= STAGES.index(origin)]
    bars = []
    prev = origin
    for stage in after:
        if stage == origin:
            continue
        start, end = (marks[prev] - t0) * 1000, (marks[stage] - t0) * 1000
        bars.append({"stage": stage, "from": prev, "start_ms": round(start, 1),
                     "duration_ms": round(max(0.0, end - start), 1)})
        prev = stage
    total = round((marks[prev] - t0) * 1000, 1) if bars else 0.0
    return {"turn_id": timings.turn_id, "origin": origin, "origin_monotonic": round(t0, 4),
            "total_ms": total, "bars": bars}
