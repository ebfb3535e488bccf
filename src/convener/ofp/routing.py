"""Matching what a caller says against agent manifests: pure text scoring, no I/O.

``explicit_request`` finds requests that name an agent ("let me talk to the weather agent");
``score`` rates how well an utterance fits a manifest from its keyphrases (whole phrases, words
compared loosely: "flights" matches "flight") and, more weakly, its descriptions and synopsis.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from convener.ofp.manifest import Manifest

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """a an the to of for in on at and or is are be me my i you your it this that with from what
    whats can could would like want need please about do does how get give let us we our some any
    tell know there here just now today""".split()
)
_CUES = re.compile(
    r"\b(talk|speak|chat|connect|transfer|put|switch|ask|go back|back to|get me|give me)\b"
)
_AGENT_NOUNS = frozenset({"agent", "assistant", "bot", "desk", "service", "person", "expert"})


def words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower())]


def _stem(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    if len(w) > 4 and w.endswith("ing"):
        return w[:-3]
    return w


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n = len(needle)
    return n > 0 and any(list(haystack[i : i + n]) == list(needle) for i in range(len(haystack) - n + 1))


def _names(m: Manifest) -> list[list[str]]:
    names = [words(m.identification.conversational_name)]
    if m.identification.role:
        names.append(words(m.identification.role))
    return [n for n in names if n]


def explicit_request(text: str, manifests: Sequence[Manifest]) -> Manifest | None:
    """The agent the caller asks for by name, or None.

    A name counts when it is followed by a word like "agent" ("the weather agent") or when the
    utterance has a cue like "talk to", "ask", "connect me" ("let me talk to Flights").
    """
    ws = words(text)
    cue = _CUES.search(text.lower()) is not None
    for m in manifests:
        for name in _names(m):
            for i in range(len(ws) - len(name) + 1):
                if ws[i : i + len(name)] != name:
                    continue
                nxt = ws[i + len(name)] if i + len(name) < len(ws) else ""
                if cue or nxt in _AGENT_NOUNS or name[-1] in _AGENT_NOUNS:
                    return m
    return None


@dataclass(frozen=True)
class Match:
    manifest: Manifest
    score: float


def score(text: str, m: Manifest) -> float:
    ws = words(text)
    content = {w for w in ws if w not in STOPWORDS}
    s = 0.0
    for phrase in m.keyphrases:
        pw = words(phrase)
        if _contains(ws, pw):
            s += 1.0 + 0.5 * (len(pw) - 1)
    desc_words = {w for d in [*m.descriptions, m.identification.synopsis] for w in words(d)} - STOPWORDS
    s += 0.25 * min(len(content & desc_words), 4)
    return s


def rank(text: str, manifests: Sequence[Manifest]) -> list[Match]:
    """Manifests by decreasing score (stable: ties keep the given order)."""
    scored = [Match(m, score(text, m)) for m in manifests]
    return sorted(scored, key=lambda x: -x.score)
