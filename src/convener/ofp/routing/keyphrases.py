"""Matching what a caller says against manifests by their words: pure text scoring, no I/O.

``explicit_request`` finds requests that name an agent ("put me through to the weather agent",
"can I speak with Hotels", "get me RentRight"); ``score`` rates how well an utterance fits a
manifest from its keyphrases (whole phrases, words compared loosely: "flights" matches
"flight") and, more weakly, its descriptions and synopsis.

Bounded against hostile manifests: only the first ``MAX_KEYPHRASES`` keyphrases (each cut to
``MAX_PHRASE_WORDS`` words) and ``MAX_TEXT_CHARS`` of each description are ever read, only the
best ``COUNTED_MATCHES`` keyphrase matches count, and a manifest with many keyphrases earns
less for each (weight ``sqrt(FAIR_KEYPHRASES / n)``), so listing every word cannot win.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from convener.ofp.manifest import Manifest

MAX_KEYPHRASES = 64
MAX_PHRASE_WORDS = 6
MAX_DESCRIPTIONS = 8
MAX_TEXT_CHARS = 1000
COUNTED_MATCHES = 3
FAIR_KEYPHRASES = 16

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """a an the to of for in on at and or is are be me my i you your it this that with from what
    whats can could would like want need please about do does how get give let us we our some any
    tell know there here just now today""".split()
)
_CUES = re.compile(
    r"\b(talk|speak|chat|connect|transfer|put me|through to|switch|ask|go back|back to|get me|"
    r"give me|i want|i'd like|id like|i would like|i wanna)\b"
)
_AGENT_NOUNS = frozenset(
    {"agent", "assistant", "bot", "desk", "service", "person", "expert", "guy", "people", "team", "line"}
)


def words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text[:MAX_TEXT_CHARS].lower())]


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


def keyphrases(m: Manifest) -> list[str]:
    """The keyphrases that count (the first ``MAX_KEYPHRASES``)."""
    out: list[str] = []
    for c in m.capabilities:
        for k in c.keyphrases[: MAX_KEYPHRASES - len(out)]:
            out.append(k[: MAX_TEXT_CHARS])
        if len(out) >= MAX_KEYPHRASES:
            break
    return out


def descriptions(m: Manifest) -> list[str]:
    """The descriptions that count (the first ``MAX_DESCRIPTIONS``, each cut to ``MAX_TEXT_CHARS``)."""
    out: list[str] = []
    for c in m.capabilities:
        out.extend(d[:MAX_TEXT_CHARS] for d in c.descriptions[: MAX_DESCRIPTIONS - len(out)])
        if len(out) >= MAX_DESCRIPTIONS:
            break
    return out


def _keyphrase_count(m: Manifest) -> int:
    return sum(len(c.keyphrases) for c in m.capabilities)


def names(m: Manifest) -> list[list[str]]:
    """Ways the caller may name the agent: its conversational name, its role, and the first
    word of a longer name ("Polly" for "Polly the Parrot")."""
    full = words(m.identification.conversational_name)
    out = [full]
    if len(full) > 1 and len(full[0]) >= 4 and full[0] not in STOPWORDS and full[0] not in _AGENT_NOUNS:
        out.append(full[:1])
    if m.identification.role:
        out.append(words(m.identification.role))
    return [n for n in out if n]


def explicit_request(text: str, manifests: Sequence[Manifest]) -> Manifest | None:
    """The agent the caller asks for by name, or None.

    A name counts when it is followed by a word like "agent" ("the weather agent"), when the
    utterance has a cue like "talk to", "put me through", "get me", "I'd like" ("can I speak
    with Flights"), or when the utterance is hardly more than the name ("RentRight, please").
    The longest name found wins.
    """
    ws = words(text)
    cue = _CUES.search(text[:MAX_TEXT_CHARS].lower()) is not None
    filler = STOPWORDS | _AGENT_NOUNS | {"hi", "hello", "thanks", "thank", "ok", "okay", "yes"}
    best: tuple[int, Manifest] | None = None
    for m in manifests:
        for name in names(m):
            for i in range(len(ws) - len(name) + 1):
                if ws[i : i + len(name)] != name:
                    continue
                nxt = ws[i + len(name)] if i + len(name) < len(ws) else ""
                bare = all(w in filler or w in name for w in ws)
                if cue or nxt in _AGENT_NOUNS or name[-1] in _AGENT_NOUNS or bare:
                    if best is None or len(name) > best[0]:
                        best = (len(name), m)
    return best[1] if best else None


@dataclass(frozen=True)
class Match:
    manifest: Manifest
    score: float


COMMON_WEIGHT = 0.25


def vocabulary(m: Manifest) -> set[str]:
    """The content words of a manifest's bounded text (keyphrases, descriptions, synopsis, role)."""
    texts = [*keyphrases(m), *descriptions(m), m.identification.synopsis[:MAX_TEXT_CHARS],
             (m.identification.role or "")[:MAX_TEXT_CHARS]]
    return {w for t in texts for w in words(t)} - STOPWORDS


def common_words(manifests: Sequence[Manifest]) -> frozenset[str]:
    """Words found in the texts of two or more manifests: weak evidence for any one of them."""
    seen: dict[str, int] = {}
    for m in manifests:
        for w in vocabulary(m):
            seen[w] = seen.get(w, 0) + 1
    return frozenset(w for w, n in seen.items() if n > 1)


def score(text: str, m: Manifest, common: frozenset[str] = frozenset()) -> float:
    """Keyphrase matches (best ``COUNTED_MATCHES``, fairness-weighted) plus a little for words
    shared with the descriptions and synopsis (at most 1.0). A keyphrase whose words all appear
    in other manifests too (``common``: "airport" for flights, car rental and taxi) counts
    ``COMMON_WEIGHT``."""
    ws = words(text)
    content = {w for w in ws if w not in STOPWORDS}
    hits: list[float] = []
    for phrase in keyphrases(m):
        pw = words(phrase)[:MAX_PHRASE_WORDS]
        if _contains(ws, pw):
            weak = all(w in common or w in STOPWORDS for w in pw)
            hits.append((1.0 + 0.5 * (len(pw) - 1)) * (COMMON_WEIGHT if weak else 1.0))
    n = _keyphrase_count(m)
    weight = min(1.0, math.sqrt(FAIR_KEYPHRASES / n)) if n else 1.0
    s = weight * sum(sorted(hits, reverse=True)[:COUNTED_MATCHES])
    desc_words = {w for d in [*descriptions(m), m.identification.synopsis[:MAX_TEXT_CHARS]] for w in words(d)}
    s += 0.25 * min(len(content & (desc_words - STOPWORDS)), 4)
    return s


def rank(text: str, manifests: Sequence[Manifest]) -> list[Match]:
    """Manifests by decreasing score (stable: ties keep the given order)."""
    scored = [Match(m, score(text, m)) for m in manifests]
    return sorted(scored, key=lambda x: -x.score)
