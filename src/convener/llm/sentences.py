"""Cut streamed text into sentences to speak, pure.

``Sentences.feed(piece)`` returns the sentences completed by ``piece``; ``flush()`` the rest.
A sentence ends at ``.``, ``!`` or ``?`` (and a closing quote or bracket) followed by white
space, or at a line break; "Dr." or "3.5" do not end one. A first sentence that runs long is
cut at a comma after ``soft_limit`` characters, so the caller hears something early.
"""

from __future__ import annotations

import re

_END = re.compile(r"""[.!?…]+["')\]]*(?=\s)|\n+""")
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st sr jr prof vs etc e.g i.e a.m p.m no approx dept mt ft".split()
)
SOFT_LIMIT = 160


class Sentences:
    def __init__(self, soft_limit: int = SOFT_LIMIT) -> None:
        self._buf = ""
        self.soft_limit = soft_limit
        self.count = 0

    def feed(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        start = 0
        for m in _END.finditer(self._buf):
            end = m.end()
            candidate = self._buf[start:end]
            if m.group().startswith(".") and _abbreviation(candidate):
                continue
            if candidate.strip():
                out.append(candidate.strip())
            start = end
        self._buf = self._buf[start:]
        if self.count == 0 and not out and len(self._buf) > self.soft_limit:
            cut = self._buf.rfind(", ", 0, len(self._buf))
            if cut > 20:
                out.append(self._buf[: cut + 1].strip())
                self._buf = self._buf[cut + 2:]
        self.count += len(out)
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        if rest:
            self.count += 1
            return [rest]
        return []


def _abbreviation(text: str) -> bool:
    """Whether ``text`` ends in an abbreviation or a number's decimal point, not a sentence."""
    words = text.rstrip(".").split()
    if not words:
        return False
    last = words[-1].lower().strip("(\"'")
    return last in ABBREVIATIONS
