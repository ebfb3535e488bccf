"""The history search the console sends: parsed and checked here, run by the transcript store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_ROOM = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class QueryError(ValueError):
    """A search parameter the console cannot use (the message names it and says what fits)."""


@dataclass(frozen=True)
class HistoryQuery:
    room: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    text: str = ""
    limit: int = DEFAULT_LIMIT


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: expected a date as YYYY-MM-DD, got {value!r}") from None


def parse_query(params: Mapping[str, str]) -> HistoryQuery:
    """``room``, ``from`` and ``to`` (UTC days, both included), ``q`` (text in any turn), ``limit``."""
    room = params.get("room", "").strip()
    if room and not _ROOM.match(room):
        raise QueryError(f"room: letters, digits, _ . - only (up to 64), got {room!r}")
    since = until = None
    if v := params.get("from", "").strip():
        since = datetime.combine(_day("from", v), datetime.min.time(), UTC)
    if v := params.get("to", "").strip():
        until = datetime.combine(_day("to", v) + timedelta(days=1), datetime.min.time(), UTC)
    if since and until and until <= since:
        raise QueryError("to: must be the same day as 'from' or later")
    text = params.get("q", "").strip()
    if len(text) > 200:
        raise QueryError("q: at most 200 characters")
    raw = params.get("limit", "").strip() or str(DEFAULT_LIMIT)
    try:
        limit = int(raw)
    except ValueError:
        raise QueryError(f"limit: expected a whole number, got {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit: between 1 and {MAX_LIMIT}, got {limit}")
    return HistoryQuery(room, since, until, text, limit)

