"""Text preparation for synthesis: SSML stripping and sentence splitting.

Sentences are synthesised one at a time so the first audio chunk is ready after the first
sentence, not the whole reply. A long first sentence is cut at its first clause boundary so
time to first audio stays short.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<break\b[^>]*/?>", re.IGNORECASE)
_SENT_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+(?=\S)")
_CLAUSE = re.compile(r"(?<=[,;:—])\s+")
_ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "prof.", "e.g.", "i.e.", "etc.", "vs.", "no."}
FIRST_CHUNK_MAX_WORDS = 12


def is_ssml(text: str) -> bool:
    return text.lstrip().startswith("<speak") or bool(_TAG.search(text))


def strip_ssml(text: str) -> str:
    """Plain text from SSML: ``<break>`` becomes a comma pause, other tags vanish."""
    text = _BREAK.sub(", ", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    return re.sub(r"\s+", " ", text).strip(" ,")


def split_sentences(text: str, first_max_words: int = FIRST_CHUNK_MAX_WORDS) -> list[str]:
    """Sentences of ``text``; a first sentence over ``first_max_words`` is cut at a clause."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n", text.strip()):
        para = para.strip()
        cut = 0
        for m in _SENT_END.finditer(para):
            word = para[para.rfind(" ", 0, m.start()) + 1 : m.start()].lower()
            nxt = para[m.end() : m.end() + 1]
            if word in _ABBREV or (len(word) == 2 and word[0].isalpha()) or nxt.islower():
                continue
            out.append(para[cut : m.end()].strip())
            cut = m.end()
        out.append(para[cut:].strip())
    out = [s for s in out if s and any(c.isalnum() for c in s)]
    if out and len(out[0].split()) > first_max_words:
        parts = _CLAUSE.split(out[0], maxsplit=1)
        if len(parts) == 2 and len(parts[0].split()) >= 3:
            out[0:1] = parts
    return out
