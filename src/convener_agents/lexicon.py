"""Tiny deterministic language helpers shared by the example agents."""

from __future__ import annotations

import re

CITIES = (
    "New York", "San Francisco", "Los Angeles", "Las Vegas", "Denver", "Boston", "Chicago",
    "Seattle", "Miami", "Austin", "Atlanta", "Dallas", "Phoenix", "Portland", "London", "Paris",
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)
YES = re.compile(r"\b(yes|yeah|yep|yup|sure|correct|confirm|book it|go ahead|please do|ok|okay)\b", re.I)
NO = re.compile(r"\b(no|nope|don't|do not|cancel|wrong)\b", re.I)


def find_cities(text: str) -> list[tuple[int, str]]:
    """Cities mentioned in ``text`` with their positions, in order of appearance."""
    low = text.lower()
    found = []
    for c in CITIES:
        for m in re.finditer(rf"\b{re.escape(c.lower())}\b", low):
            found.append((m.start(), c))
    return sorted(found)


def city_after(text: str, words: tuple[str, ...]) -> str | None:
    """The city right after one of ``words`` ("to Denver", "from Boston")."""
    low = text.lower()
    for pos, c in find_cities(text):
        before = low[:pos].rstrip().split()
        if before and before[-1] in words:
            return c
    return None


def find_date(text: str) -> str | None:
    """A spoken date: today, tomorrow, (next) Friday, December 5, 2026-12-05."""
    low = text.lower()
    if m := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", low):
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if 1 <= mo <= 12 and 1 <= d <= 31:
            return f"{MONTHS[mo - 1].capitalize()} {d}, {y}"
    if m := re.search(r"\b(today|tonight|tomorrow)\b", low):
        return "today" if m.group(1) == "tonight" else m.group(1)
    if m := re.search(r"\b(next |this )?(" + "|".join(WEEKDAYS) + r")\b", low):
        return f"{(m.group(1) or '').strip()} {m.group(2).capitalize()}".strip()
    months = "|".join(MONTHS + tuple(m[:3] for m in MONTHS))
    if m := re.search(rf"\b({months})\.? (\d{{1,2}})(st|nd|rd|th)?\b", low):
        name = next(x for x in MONTHS if x.startswith(m.group(1)[:3]))
        return f"{name.capitalize()} {int(m.group(2))}"
    if m := re.search(rf"\b(\d{{1,2}})(st|nd|rd|th)? (of )?({months})\b", low):
        name = next(x for x in MONTHS if x.startswith(m.group(4)[:3]))
        return f"{name.capitalize()} {int(m.group(1))}"
    return None


def code(prefix: str, *parts: str) -> str:
    """A deterministic booking reference from the booking's details."""
    n = sum((i + 1) * ord(ch) for i, ch in enumerate("|".join(parts))) % 900 + 100
    return f"{prefix}{n}"
