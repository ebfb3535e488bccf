"""The transcript store's interface and the records it holds; no implementation here.

Implementations beside it: ``sqlite`` (the default) and ``postgres`` (several nodes, one store).
``convener.ops.transcripts.open_store`` picks one from ``ops.transcripts_url``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from convener.timings import TurnTimings

When = datetime | float | int | None
NOT_RESUMED = "not resumed after a restart"


def _ts(when: When) -> datetime:
    if when is None:
        return datetime.now(UTC)
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(when), UTC)


def _timings_json(timings: TurnTimings | dict[str, Any] | None) -> str | None:
    if timings is None:
        return None
    if isinstance(timings, TurnTimings):
        return json.dumps({"turn_id": timings.turn_id, "breakdown_ms": timings.breakdown_ms()})
    return json.dumps(timings, default=str)


@dataclass
class Turn:
    speaker: str
    text: str
    at: datetime
    floor_holder: str | None = None
    timings: dict[str, Any] | None = None
    node_id: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d


@dataclass
class Conversation:
    conversation_id: str
    call_id: str
    room: str
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str = ""
    node_id: str = ""
    turn_count: int = 0
    turns: list[Turn] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        d["turns"] = [t.to_json() for t in self.turns]
        return d


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``%``, ``_`` and ``\\`` taken literally
    (used with ``ESCAPE '\\'``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class TranscriptStore:
    """The interface. ``convener.ops.transcripts.open_store`` picks an implementation from the settings."""

    node_id: str = ""

    async def start_conversation(self, conversation_id: str, call_id: str, room: str,
                                 started_at: When = None) -> None:
        raise NotImplementedError

    async def add_turn(self, conversation_id: str, speaker: str, text: str, at: When = None,
                       floor_holder: str | None = None,
                       timings: TurnTimings | dict[str, Any] | None = None) -> None:
        raise NotImplementedError

    async def end_conversation(self, conversation_id: str, ended_at: When = None, reason: str = "") -> None:
        raise NotImplementedError

    async def list(self, limit: int = 20) -> list[Conversation]:
        """The latest conversations first, without their turns (``turn_count`` is set)."""
        raise NotImplementedError

    # The floor state of each live conversation (``convener.ofp.floor_state``, as JSON text): one
    # row per conversation, replaced as it changes, deleted when the conversation ends.
    async def save_floor_state(self, conversation_id: str, room: str, state: str, at: When = None) -> None:
        raise NotImplementedError

    async def live_floor_state(self, room: str) -> str | None:
        """The latest stored floor state of a conversation of ``room`` that this node did not end."""
        raise NotImplementedError

    async def floor_state_rooms(self) -> list[tuple[str, str]]:
        """(conversation id, room) of every floor state this node holds."""
        raise NotImplementedError

    async def search(self, room: str = "", since: When = None, until: When = None, text: str = "",
                     limit: int = 100) -> list[Conversation]:
        """Like ``list``, narrowed: ``room`` exactly, started in [``since``, ``until``), and
        ``text`` (case-insensitive) in any of the conversation's turns. Empty/None: no filter."""
        raise NotImplementedError

    async def get(self, conversation_id: str) -> Conversation | None:
        raise NotImplementedError

    async def purge(self, before: When) -> int:
        """Delete the conversations (and their turns) that started before ``before``; returns how many."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


class NullTranscriptStore(TranscriptStore):
    """``ops.transcripts = false``: nothing is kept."""

    async def start_conversation(self, conversation_id: str, call_id: str, room: str,
                                 started_at: When = None) -> None:
        return None

    async def add_turn(self, conversation_id: str, speaker: str, text: str, at: When = None,
                       floor_holder: str | None = None,
                       timings: TurnTimings | dict[str, Any] | None = None) -> None:
        return None

    async def end_conversation(self, conversation_id: str, ended_at: When = None, reason: str = "") -> None:
        return None

    async def list(self, limit: int = 20) -> list[Conversation]:
        return []

    async def save_floor_state(self, conversation_id: str, room: str, state: str, at: When = None) -> None:
        return None

    async def live_floor_state(self, room: str) -> str | None:
        return None

    async def floor_state_rooms(self) -> list[tuple[str, str]]:
        return []

    async def search(self, room: str = "", since: When = None, until: When = None, text: str = "",
                     limit: int = 100) -> list[Conversation]:
        return []

    async def get(self, conversation_id: str) -> Conversation | None:
        return None

    async def purge(self, before: When) -> int:
        return 0


