"""What the recogniser should expect to hear: a bias context built from the conversation.

Pure logic, no I/O. :func:`build_bias` takes the words this conversation makes likely and
returns a bounded :class:`BiasContext`; each recogniser turns it into its own form:

* Whisper (faster-whisper): :meth:`BiasContext.prompt` becomes the decoder's previous-text
  context (``initial_prompt``; faster-whisper's ``hotwords`` go into the very same slot, just
  before the prompt, so the two differ only in wording and order: see docs/decisions.md).
* Deepgram: :meth:`BiasContext.keyterms` (Nova-3 and Flux ``keyterm``) and
  :meth:`BiasContext.keywords` (older models, ``keywords=word:intensifier``).

Sources, in priority order (a full budget drops the later ones first):

1. the configured vocabulary (``[speech] vocabulary``: city, product or street names);
2. the last question an agent asked (its own slot, only in the Whisper prompt);
3. the agents' conversational names;
4. the agents' keyphrases, taken round-robin across agents (one agent's 10,000 keyphrases
   cannot crowd the others out, nor blow up the prompt).

Bounds: at most :data:`MAX_TERMS` terms of at most :data:`MAX_TERM_CHARS` characters,
:data:`MAX_TERMS_CHARS` characters of terms in all, a question of at most
:data:`MAX_QUESTION_CHARS`; the prompt is at most :data:`MAX_PROMPT_CHARS`. Deepgram documents
up to 100 keyterms and 500 tokens; our caps stay well under both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_TERMS = 40
MAX_TERM_CHARS = 40
MAX_TERMS_CHARS = 400
MAX_QUESTION_CHARS = 160
MAX_PROMPT_CHARS = 600
MAX_KEYPHRASES_PER_AGENT = 8
VOCABULARY_INTENSIFIER = 2  # Deepgram keywords: configured words count double (exponential)

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"^[\w'\-.]+$")


@dataclass(frozen=True, slots=True)
class AgentTerms:
    """What one agent contributes: its conversational name and keyphrases (from its manifest)."""

    name: str = ""
    keyphrases: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class BiasContext:
    terms: tuple[str, ...] = ()  # priority order: vocabulary, agent names, keyphrases
    question: str = ""  # the last question an agent asked ("" = none)
    vocabulary_count: int = 0  # how many of ``terms`` (the first ones) came from the vocabulary

    def __bool__(self) -> bool:
        return bool(self.terms or self.question)

    def prompt(self) -> str:
        """Whisper's context text: the terms as a list, then the question (closest to the turn).

        Order and wording chosen by bench/hearing.py on its tuning part (docs/decisions.md).
        """
        parts: list[str] = []
        if self.terms:
            parts.append(", ".join(self.terms) + ".")
        if self.question:
            parts.append(self.question)
        return " ".join(parts)[:MAX_PROMPT_CHARS]

    def keyterms(self) -> list[str]:
        """Deepgram ``keyterm`` values (Nova-3, Flux): one per term, multi-word terms allowed."""
        return list(self.terms)

    def keywords(self) -> list[str]:
        """Deepgram ``keywords`` values (Nova-2 and older): single words with an intensifier."""
        out: list[str] = []
        seen: set[str] = set()
        for i, term in enumerate(self.terms):
            boost = VOCABULARY_INTENSIFIER if i < self.vocabulary_count else 1
            for word in term.split():
                word = word.strip(".,;:!?\"()")
                if not word or not _WORD.match(word) or word.lower() in seen:
                    continue
                seen.add(word.lower())
                out.append(f"{word}:{boost}")
        return out


def clean_term(text: str) -> str:
    """One line, single spaces, no prompt-breaking characters; "" if unusable or too long."""
    text = str(text)
    if len(text) > MAX_TERM_CHARS * 4:  # too long whatever its spacing: not even looked at
        return ""
    t = _SPACE.sub(" ", str(text)).strip().strip(",;")
    t = "".join(ch for ch in t if ch.isprintable() and ch not in "<>|{}[]")
    if not t or len(t) > MAX_TERM_CHARS:
        return ""
    return t


def clean_question(text: str) -> str:
    q = _SPACE.sub(" ", str(text)[-MAX_QUESTION_CHARS * 4:]).strip()
    if len(q) > MAX_QUESTION_CHARS:  # keep the end: that is where the question is
        q = q[-MAX_QUESTION_CHARS:]
        q = q[q.find(" ") + 1:] if " " in q else q
    return q


def last_question(utterances: Iterable[tuple[bool, str]]) -> str:
    """The last agent utterance that is (or ends with) a question.

    ``utterances`` are (spoken by an agent, text) in conversation order. Only the last agent
    utterance counts: once an agent has said something else, its earlier question is stale.
    Of that utterance, the last sentence ending in "?" is kept ("Sure. Where from?" → "Where from?").
    """
    last = ""
    for by_agent, text in utterances:
        if by_agent:
            last = text
    text = _SPACE.sub(" ", last[-MAX_QUESTION_CHARS * 4:]).strip()
    if not text.endswith("?"):
        return ""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return clean_question(sentences[-1])


def build_bias(
    agents: Sequence[AgentTerms],
    *,
    question: str = "",
    vocabulary: Sequence[str] = (),
) -> BiasContext:
    """The bounded bias context; see the module docstring for priorities and bounds."""
    terms: list[str] = []
    seen: set[str] = set()
    budget = MAX_TERMS_CHARS

    def add(raw: str) -> bool:
        """False once the budget is spent."""
        nonlocal budget
        if len(terms) >= MAX_TERMS or budget <= 0:
            return False
        t = clean_term(raw)
        if not t or t.lower() in seen:
            return True
        if len(t) + 2 > budget:
            return True  # a shorter one may still fit
        seen.add(t.lower())
        terms.append(t)
        budget -= len(t) + 2
        return True

    for v in vocabulary[: MAX_TERMS * 4]:
        if not add(v):
            break
    vocabulary_count = len(terms)
    for a in agents[: MAX_TERMS * 4]:
        if not add(a.name):
            break
    per_agent = [list(a.keyphrases[: MAX_KEYPHRASES_PER_AGENT * 4]) for a in agents[: MAX_TERMS * 4]]
    for rank in range(MAX_KEYPHRASES_PER_AGENT):
        more = False
        for phrases in per_agent:
            if rank < len(phrases):
                more = True
                if not add(phrases[rank]):
                    return BiasContext(tuple(terms), clean_question(question), vocabulary_count)
        if not more:
            break
    return BiasContext(tuple(terms), clean_question(question), vocabulary_count)


def conversation_bias(
    manifests: Iterable[object],
    history: Iterable[object],
    humans: Iterable[str],
    vocabulary: Sequence[str] = (),
) -> BiasContext:
    """:func:`build_bias` from a floor session's parts (duck-typed, so ``speech`` needs no ``ofp``).

    ``manifests``: objects with ``identification.conversational_name`` and ``keyphrases``
    (:class:`convener.ofp.manifest.Manifest`); ``history``: dialog events with ``speaker_uri``
    and ``text`` (the convener policy's history); ``humans``: the callers' speaker URIs.
    """
    people = set(humans)
    agents = [
        AgentTerms(getattr(getattr(m, "identification", None), "conversational_name", "") or "",
                   list(getattr(m, "keyphrases", ()) or ()))
        for m in manifests
    ]
    said = [(getattr(e, "speaker_uri", "") not in people, str(getattr(e, "text", ""))) for e in history]
    return build_bias(agents, question=last_question(said), vocabulary=vocabulary)
