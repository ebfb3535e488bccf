"""Barge-in policy: the caller starts speaking while a reply plays → stop the reply now.

``BargeIn.on_event`` takes the turn detector's events. On ``SpeechStarted`` while the pacer is
playing (a reply is being sent or queued) it calls ``pacer.flush()`` — which stops sending at
once, drops the queue and, with ``Pacer``, tells the transport to drop anything queued remotely
(``FLUSH_MEDIA`` on chan_websocket) — and returns/reports how much of each interrupted reply
the caller heard (ms and samples per reply id), so the conversation layer can tell the agents
where their reply was cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from convener.media.pacer import PlaybackReport
from convener.media.turns import SpeechStarted, TurnEvent


class Flushable(Protocol):
    @property
    def is_playing(self) -> bool: ...

    def flush(self) -> dict[str, PlaybackReport]: ...


@dataclass(frozen=True)
class BargeInReport:
    speech_at: float  # caller's first voiced sample
    detected_at: float  # when the detector confirmed speech
    flushed_at: float  # when the reply was stopped (time.monotonic())
    replies: dict[str, PlaybackReport]  # interrupted replies: played_ms / played_samples

    @property
    def played_ms(self) -> dict[str, float]:
        return {rid: rep.played_ms for rid, rep in self.replies.items()}


class BargeIn:
    """Glue between turn events and the pacer. ``enabled`` can be switched per reply."""

    def __init__(
        self,
        pacer: Flushable,
        *,
        on_barge_in: Callable[[BargeInReport], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pacer = pacer
        self.on_barge_in = on_barge_in
        self.enabled = True
        self.count = 0
        self._clock = clock

    def on_event(self, event: TurnEvent) -> BargeInReport | None:
        if not self.enabled or not isinstance(event, SpeechStarted):
            return None
        if not self.pacer.is_playing:
            return None
        replies = self.pacer.flush()
        report = BargeInReport(event.at, event.detected_at, self._clock(), replies)
        self.count += 1
        if self.on_barge_in is not None:
            self.on_barge_in(report)
        return report
