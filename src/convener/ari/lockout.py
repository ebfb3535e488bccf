"""Is Asterisk's ARI WebSocket locked up? The verdict from what was seen, no I/O.

Asterisk 22.10.1 was seen to stop completing any ARI WebSocket handshake after a client closed
its event socket during a burst of events, while its REST API kept answering (README, "Known
issues"). Every new caller then falls to the dialplan fallback until Asterisk restarts, and
convener's own reconnect after a blip is refused the same way. The sign: the TCP connection is
accepted, REST requests are answered, and the WebSocket upgrade never gets an answer.

Measured on a private Asterisk 22.10.1 (``bench/ari_ws_lockout.py``): a client whose TCP
connection dropped (no close frame) during a burst of 300 channel hang-ups (subscribeAll) left
new handshakes unanswered for 15 s and about 30 s, REST answering all along, after which they
were answered again. So a network drop can cause it; a stall that lasts is what needs the restart.
"""

from __future__ import annotations

from dataclasses import dataclass

# Handshake timeouts in a row (10 s each, with REST answering) before it is called a lockout:
# stalls of up to about 30 s were seen to pass by themselves.
TIMEOUTS_FOR_LOCKOUT = 4
ADVICE = ("Asterisk answers its REST API but no ARI WebSocket handshake: the known lockout of "
          "Asterisk's ARI WebSocket. New calls fall to the dialplan fallback until Asterisk is "
          "restarted (systemctl restart asterisk); convener reconnects by itself.")
PROBE_ADVICE = ("a stall (seen to last up to about 30 s after a network drop during a burst of "
                "events) or the lockout: run `convener doctor` again in a minute; if it still fails, "
                + ADVICE[ADVICE.index("New calls"):].replace("New calls", "new calls"))


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
