"""Transcript turn-completion classifier: logistic regression over the end of the words.

A request that stops on "to", "for", "and", "the", "um" ... is unfinished whatever the
silence says. The features are the last word (a one-hot over the words seen in training),
whether it is a closed-class English word (a prior for words training never saw), a single
word, a trailing "..." or comma, and a bias. The weights are trained by
``bench/train_turn_text.py`` on phrases the project generates (complete requests and their
cuts at every word) and checked in as ``text_weights.json``, pinned by sha256 below. Scoring
is a dictionary lookup and a sigmoid: microseconds, no model runtime.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

WEIGHTS_FILE = "text_weights.json"
# sha256 of text_weights.json as trained by bench/train_turn_text.py (rerun updates it).
WEIGHTS_SHA256 = "d1effcbdfd0d9cc1dd9aad7c284d0c79202b8f0ce5f1a60276493039e370c77b"

_WORD = re.compile(r"[a-z0-9']+")

# English closed-class words a request rarely ends on: prepositions, articles, conjunctions,
# determiners, auxiliaries, fillers. A prior for last words the training phrases never had.
FUNCTION_WORDS = frozenset("""
a an the to for from in on at of with by about into onto near after before until via than
and or but so because if that which who whose where when while then also
my your our their his her its this these those some any each every no another
i i'd i'm i'll we we'd you you'd he she they it it's is are was were be been am do does did
can could would should will shall may might must have has had want need like get
um uh er erm hmm ah uhm mm well just very really maybe
too
""".split())
# "too": Whisper hears a trailing "to" as "too" on the benchmark's voices ("Show me flight
# too."); no training phrase ends on it, so the prior alone decides (the weights are the same).


# A subject pronoun right after an auxiliary is a question still being asked ("is it ...",
# "does he ...", "can you ..."); after any other word it is usually the object ("book it").
SUBJECT_PRONOUNS = frozenset("it he she they you we i".split())
AUXILIARIES = frozenset(
    "is are was were am do does did can could would should will shall may might must has have had".split()
)


def words(text: str) -> list[str]:
    """The transcript's words, lower case; a capitalised "May" inside a sentence (not after
    ".", "!" or "?") is the month ("... on the 20th of May."), not the auxiliary ("OK. May"),
    and reads as ``MONTH``."""
    w = _WORD.findall(text.lower().replace("’", "'"))
    if len(w) >= 2 and w[-1] == "may" and _LAST_MAY.search(text):
        w[-1] = MONTH
    return w


MONTH = "<month>"  # no weight of its own: an ordinary last word
_LAST_MAY = re.compile(r"[^.!?\s]\s+May\W*$")


def features(text: str) -> list[str]:
    """Named binary features of a transcript (the classifier's input)."""
    w = words(text)
    n = len(w)
    feats = ["bias"]
    if n == 1:
        feats.append("one_word")
    if w:
        feats.append(f"last:{w[-1]}")
        if w[-1] in FUNCTION_WORDS:
            feats.append("last_function_word")
        if n >= 2 and w[-1] in SUBJECT_PRONOUNS and w[-2] in AUXILIARIES:
            feats.append("aux_then_pronoun")
    if text.rstrip().endswith(("...", "…", ",", "-")):
        feats.append("trails")
    return feats


@dataclass
class TextTurnModel:
    weights: dict[str, float]
    name: str = "text"

    def probability(self, text: str) -> float:
        """P(the caller has finished | the transcript so far)."""
        z = sum(self.weights.get(f, 0.0) for f in features(text))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_json(self) -> str:
        return json.dumps({"features": dict(sorted(self.weights.items()))}, indent=0, sort_keys=True) + "\n"

    @classmethod
    def from_bytes(cls, data: bytes, expected_sha256: str | None = WEIGHTS_SHA256,
                   source: str = WEIGHTS_FILE) -> TextTurnModel:
        if expected_sha256 is not None:
            got = hashlib.sha256(data).hexdigest()
            if got != expected_sha256:
                raise ValueError(f"{source}: sha256 {got} does not match the pinned {expected_sha256}; "
                                 "retrain with bench/train_turn_text.py, which updates the pin")
        raw = json.loads(data)
        return cls({str(k): float(v) for k, v in raw["features"].items()})


def weights_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(WEIGHTS_FILE)))


def load_text_model(path: Path | None = None) -> TextTurnModel:
    """The checked-in classifier; FileNotFoundError when absent, ValueError on a pin mismatch."""
    p = path or weights_path()
    return TextTurnModel.from_bytes(p.read_bytes(), source=str(p))
