"""Routing: which agent should answer what the caller said.

- ``keyphrases``  words: explicit requests by name, keyphrase scores (bounded against stuffing)
- ``embeddings``  meaning: the bundled sentence-embedding model, pinned and checked; manifest index
- ``domains``     everyday service domains with callers' example requests, blended into meaning
- ``decision``    the calibrated decision (invite, ask which of two, none), pure
- ``router``      the signals of each agent combined, with the model called off the event loop
"""

from convener.ofp.routing.decision import Calibration, Candidate, Decision, choose, decide, split_requests
from convener.ofp.routing.keyphrases import STOPWORDS, Match, explicit_request, rank, score, words
from convener.ofp.routing.router import Router

__all__ = [
    "STOPWORDS",
    "Calibration",
    "Candidate",
    "Decision",
    "Match",
    "Router",
    "choose",
    "decide",
    "explicit_request",
    "rank",
    "score",
    "split_requests",
    "words",
]
