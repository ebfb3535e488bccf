"""Settings of the Open Floor side (section ``[ofp]``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AgentSettings:
    url: str
    timeout: float = 4.0


@dataclass
class OfpSettings:
    agents: dict[str, AgentSettings] = field(default_factory=dict)
