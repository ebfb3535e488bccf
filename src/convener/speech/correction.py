"""Vocabulary correction: words heard close to a configured vocabulary term become that term.

Biasing (``speech/bias.py``) makes the recogniser more likely to hear ``[speech] vocabulary``;
in noise it still writes what the words sounded like: "San Francis Coach" for San Francisco,
"low-angle" for Los Angeles. A caller's city is then lost to routing and to the agent, although
the words on the page are one letter-edit away from a name the deployment said to expect.

``VocabularyCorrector.correct(text)`` replaces a run of words whose letters are close to a
term's letters (rapidfuzz's normalised Indel similarity, ``min_similarity``) by the term:

- windows of the term's word count, one fewer and one more ("Los Angeles" ← "low angle",
  "San Francisco" ← "San Francis", "Portland" ← "in Portland" read as "importantly" is not
  caught: the word is longer than the name), best matches first, never overlapping;
- a window may not begin or end on a function word ("the", "in", "to" ...) unless the term
  does: "the truck" does not become Detroit, nor "a seat" Seattle;
- a window must come first in the text or right after a word a name follows (a preposition,
  an article, a possessive, "and"): measured on typed requests, most false changes were words
  that are what they look like ("getting married", "a seven seater", "100 dollars");
- words that already are a term (or its plural/possessive) are left alone, and no window may
  overlap them ("Vegas" of "Las Vegas" is not a near miss of it);
- only configured vocabulary is used: agents' keyphrases are everyday words ("room", "stay")
  that the caller says as such.

Pure and small: each window's letters are built once, and a term only looks at windows whose
length can reach the threshold; 40 terms over a 20-word turn take about 0.3 ms (measured here).
Measured in ``bench/hearing.py`` (``vocab+fix``
rows) and on typed requests for changes it should not make (``bench/correction.py``); the
choice of ``min_similarity`` is in docs/decisions.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Indel

from convener.speech.bias import MAX_TERM_CHARS, MAX_TERMS  # the vocabulary's bounds, as for the bias

MIN_KEY = 4  # terms with fewer letters are not corrected towards (too many near words)
FUNCTION_WORDS = frozenset(
    "a an the in on at to for of from and or but with by as is it me my i you your we our "
    "this that there here be are was get go".split()
)
# A name is said after one of these (or first): "in Boston", "to the Nimbus Pro", "and Austin".
# A near word after anything else is taken as the word it is: "getting married" (Madrid),
# "a seven seater" (Seattle), "100 dollars" (Dallas), "too late" after "it's" (Tokyo).
BEFORE_NAMES = frozenset(
    "in on at to for of from and or near into via around about than the a an my our your "
    "this that".split()
)
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@dataclass(frozen=True)
class Correction:
    heard: str  # the words as the recogniser wrote them
    term: str  # the vocabulary term they became
    similarity: float


def _key(words: Sequence[str]) -> str:
    return "".join(w.lower() for w in words).replace("'", "")


@dataclass(frozen=True)
class _Term:
    text: str
    key: str
    words: int
    first: str
    last: str


class VocabularyCorrector:
    def __init__(self, terms: Sequence[str], min_similarity: float = 0.8) -> None:
        if not 0.0 < min_similarity <= 1.0:
            raise ValueError("min_similarity must be in (0, 1]")
        self.min_similarity = min_similarity
        seen: set[str] = set()
        self.terms: list[_Term] = []
        for t in terms[:MAX_TERMS]:
            if len(t) > MAX_TERM_CHARS:
                continue
            words = _WORD.findall(t)
            key = _key(words)
            if len(key) < MIN_KEY or key in seen:
                continue
            seen.add(key)
            self.terms.append(_Term(t.strip(), key, len(words), words[0].lower(), words[-1].lower()))
        self._exact = frozenset(k for t in self.terms for k in (t.key, t.key + "s"))

    def correct(self, text: str) -> tuple[str, list[Correction]]:
        """``text`` with near-misses of the vocabulary replaced, and what was replaced."""
        if not self.terms or not text:
            return text, []
        spans = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
        words = [s[2] for s in spans]
        lowered = [w.lower() for w in words]
        # Every run of up to `longest` words, its letters built once: (first word, end word, letters).
        longest = max(t.words for t in self.terms) + 1
        parts = [w.replace("'", "") for w in lowered]
        runs: list[tuple[int, int, str]] = []
        for i in range(len(words)):
            key = ""
            for j in range(i, min(i + longest, len(words))):
                key += parts[j]
                runs.append((i, j + 1, key))
        # Words that already are a term are kept whole: "Vegas" of "Las Vegas" is not a near miss.
        taken: list[tuple[int, int]] = [(i, j) for i, j, key in runs if key in self._exact]
        # Windows that may hold a name: first in the text, or after a word a name follows.
        windows = [r for r in runs if r[0] == 0 or lowered[r[0] - 1] in BEFORE_NAMES]
        # Indel similarity s needs the shorter length >= s / (2 - s) of the longer one.
        ratio = self.min_similarity / (2 - self.min_similarity)
        found: list[tuple[float, int, int, _Term]] = []  # (similarity, first word, end word, term)
        for term in self.terms:
            lo, hi = len(term.key) * ratio, len(term.key) / ratio
            for i, j, key in windows:
                if not (term.words - 1 <= j - i <= term.words + 1 and lo <= len(key) <= hi):
                    continue
                if (lowered[i] in FUNCTION_WORDS and lowered[i] != term.first) or (
                    lowered[j - 1] in FUNCTION_WORDS and lowered[j - 1] != term.last
                ):
                    continue
                sim = Indel.normalized_similarity(key, term.key)
                if sim >= self.min_similarity:
                    found.append((sim, i, j, term))
        if not found:
            return text, []
        found.sort(key=lambda f: (-f[0], f[1]))
        chosen: list[tuple[float, int, int, _Term]] = []
        for sim, i, j, term in found:
            if any(i < b and a < j for a, b in taken):
                continue  # overlaps a term already there, or a better match
            taken.append((i, j))
            chosen.append((sim, i, j, term))
        out, pos, changes = [], 0, []
        for sim, i, j, term in sorted(chosen, key=lambda c: c[1]):
            start, end = spans[i][0], spans[j - 1][1]
            out.append(text[pos:start])
            out.append(term.text)
            changes.append(Correction(text[start:end], term.text, round(sim, 3)))
            pos = end
        out.append(text[pos:])
        return "".join(out), changes


@functools.lru_cache(maxsize=8)
def corrector_for(terms: tuple[str, ...], min_similarity: float) -> VocabularyCorrector:
    """One corrector per configured vocabulary (the configuration does not change in a process)."""
    return VocabularyCorrector(terms, min_similarity)


def correct_text(text: str, terms: Sequence[str], min_similarity: float) -> tuple[str, list[Correction]]:
    """``text`` corrected towards ``terms`` (nothing to do without terms, or at similarity 1.0)."""
    if not terms or min_similarity >= 1.0:
        return text, []
    return corrector_for(tuple(terms), min_similarity).correct(text)
