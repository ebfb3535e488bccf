"""Is Asterisk's ARI WebSocket locked up? The verdict from what was seen, no I/O.

Asterisk 22.10.1 was seen to stop completing any ARI WebSocket handshake after a client closed
its event socket during a burst of events, while its REST API kept answering (README, "Known
issues"). Every new caller then falls to the dialplan fallback until Asterisk restarts, and
convener's own reconnect after a blip is refused the same way. The sign: the TCP connection is
accepted, REST requests are answered, and the WebSocket upgrade never gets an answer.
"""

from __future__ import annotations

from dataclasses import dataclass

# Handshake timeouts in a row (with REST answering) before it is called a lockout: one can be
# a slow moment of a loaded Asterisk.
TIMEOUTS_FOR_LOCKOUT = 2
ADVICE = ("Asterisk answers its REST API but no ARI WebSocket handshake: the known lockout of "
          "Asterisk's ARI WebSocket. New calls fall to the dialplan fallback until Asterisk is "
          "restarted (systemctl restart asterisk); convener reconnects by itself.")


@dataclass(frozen=True)
class Verdict:
    locked_out: bool
    detail: str
    fix: str = ""


def judge(handshake_timeouts: int, rest_answers: bool | None) -> Verdict:
    """``handshake_timeouts``: WebSocket handshakes in a row that got no answer in time;
    ``rest_answers``: whether REST answered just now (None: not asked)."""
    if handshake_timeouts == 0:
        return Verdict(False, "WebSocket handshakes are answered")
    if rest_answers is False:
        return Verdict(False, f"{handshake_timeouts} WebSocket handshake(s) unanswered, and REST does not "
                              "answer either: Asterisk is down or unreachable",
                       "check that Asterisk runs and ari.url is right")
    if rest_answers and handshake_timeouts >= TIMEOUTS_FOR_LOCKOUT:
        return Verdict(True, f"{handshake_timeouts} WebSocket handshakes in a row unanswered while REST "
                             "answers", ADVICE)
    return Verdict(False, f"{handshake_timeouts} WebSocket handshake(s) unanswered; watching")
