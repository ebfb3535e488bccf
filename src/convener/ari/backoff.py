"""Reconnect delays: exponential backoff with jitter, capped. Pure logic.

Two phases. During the first ``fast_window`` seconds of an outage the delay never exceeds
``fast_cap`` (1.5 s), so a restarted Asterisk is reconnected to within about that long after it
answers again. A longer outage backs off further, up to ``cap`` (10 s), to spare a server that is
down for good. The first retry never waits more than ``initial``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    cap: float = 10.0
    fast_cap: float = 1.5
    fast_window: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0
    waited: float = 0.0

    def next_delay(self) -> float:
        """The next delay: half the nominal one plus a random share of the other half."""
        limit = min(self.cap, self.fast_cap) if self.waited < self.fast_window else self.cap
        nominal = min(limit, self.initial * (2 ** self.attempt))
        self.attempt += 1
        delay = nominal / 2 + self.rng.uniform(0, nominal / 2)
        self.waited += delay
        return delay

    def reset(self) -> None:
        self.attempt = 0
        self.waited = 0.0
