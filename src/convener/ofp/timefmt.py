"""RFC 3339 times: strict when we write them, tolerant when we read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

# RFC 3339 date-time (section 5.6); the 'T' may be lowercase or a space (section 5.6, NOTE).
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_time(dt: datetime) -> str:
    """RFC 3339 with a time zone, millisecond precision, ``Z`` for UTC. Naive times are a bug."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"refusing to write a time without a time zone: {dt!r}")
    s = dt.isoformat(timespec="milliseconds")
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def is_rfc3339(value: object) -> bool:
    return isinstance(value, str) and RFC3339.match(value) is not None


def parse_time(value: object) -> tuple[datetime, str | None]:
    """Read a time leniently. Returns the time (always aware) and a note when it was repaired.

    A naive time is taken as UTC; an unreadable one raises ValueError.
    """
    if not isinstance(value, str):
        raise ValueError(f"time must be a string, got {type(value).__name__}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC), f"time {value!r} has no time zone; taken as UTC"
    if not is_rfc3339(value):
        return dt, f"time {value!r} is not RFC 3339; rewritten"
    return dt, None
