"""The ``[transfer]`` section: where a caller can be handed, and how long to ring.

Only targets named here can ever be reached: an agent names a target, never a dial string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from convener.settings import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# Channel technologies a ``dial`` target may use: a PJSIP endpoint or a Local channel (to a
# queue, a ring group, any dialplan extension that dials people).
_ENDPOINT = re.compile(r"^(PJSIP|Local)/[A-Za-z0-9_@.+*#/-]+$")


@dataclass
class TransferTarget:
    # "dialplan": the caller leaves convener for context/extension/priority (ARI continue),
    # a blind transfer. "dial": convener dials ``endpoint`` into a bridge, tells the person
    # who answers what the call is about, then connects the caller (warm).
    kind: Literal["dialplan", "dial"] = "dial"
    endpoint: str = ""  # dial: "PJSIP/operator" or "Local/600@from-internal"
    context: str = ""  # dialplan: the context ("from-internal" on FreePBX)
    extension: str = ""  # dialplan: an extension, a queue's or a ring group's number
    priority: int = 1  # dialplan: the priority to start at
    ring_timeout: float = 0.0  # dial: seconds; 0 = the section's ring_timeout
    label: str = ""  # how the caller hears it named: "an operator", "sales"
    summary: bool = True  # dial: the person hears a one-sentence summary before the caller

    def validate(self) -> None:
        if self.kind == "dial":
            if not _ENDPOINT.match(self.endpoint):
                raise ConfigError(f"endpoint: a dial target needs PJSIP/NAME or Local/EXTEN@CONTEXT, "
                                  f"got {self.endpoint!r}")
        elif not self.context or not self.extension:
            raise ConfigError("a dialplan target needs context and extension")
        if self.priority < 1:
            raise ConfigError(f"priority: must be >= 1, got {self.priority}")
        if self.ring_timeout < 0:
            raise ConfigError(f"ring_timeout: must be >= 0, got {self.ring_timeout}")


@dataclass
class TransferSettings:
    # Where callers can be handed: [transfer.targets.NAME] tables (docs/actions.md).
    targets: dict[str, TransferTarget] = field(default_factory=dict)
    # The target a caller who asks for a real person is handed to ("" = not by voice).
    person_target: str = ""
    # Seconds a dial target rings before the caller is told nobody answers.
    ring_timeout: float = 20.0
    # What the caller hears while the target is dialled (``{label}``: the target's label or name).
    say_connecting: str = "Please hold, I'm putting you through to {label}."
    # What the caller hears when the target is busy; they stay with the agents.
    say_busy: str = "Sorry, {label} is busy right now. You're still with the assistants."
    # ... when nobody answers within the ring timeout.
    say_no_answer: str = "Sorry, {label} is not answering. You're still with the assistants."
    # ... when the dial failed (congestion, unavailable, an ARI error).
    say_failed: str = "Sorry, I couldn't reach {label}. You're still with the assistants."

    def validate(self) -> None:
        for name in self.targets:
            if not _NAME.match(name):
                raise ConfigError(f"targets.{name}: a target name is letters, digits, - and _")
        if self.person_target and self.person_target not in self.targets:
            raise ConfigError(f"person_target: {self.person_target!r} is not one of the targets "
                              f"({', '.join(sorted(self.targets)) or 'none configured'})")
        if not 1 <= self.ring_timeout <= 300:
            raise ConfigError(f"ring_timeout: must be in [1, 300] seconds, got {self.ring_timeout}")

    def label(self, name: str) -> str:
        t = self.targets.get(name)
        return (t.label if t is not None and t.label else name)

    def ring_seconds(self, name: str) -> float:
        t = self.targets[name]
        return t.ring_timeout or self.ring_timeout
