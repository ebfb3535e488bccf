"""A transfer's course, as a pure state machine, and the summary the person hears.

States (``dial`` targets)::

    dialling --answered--> answered --summary_played--> connected --ended--> ended
        |                      |
        +-- busy / no_answer / failed --> returned   (the caller is told, stays with the agents)

A ``dialplan`` target is blind: ``continued`` at once (the caller leaves convener for the
dialplan location). Each step returns what the shell must do next, so the order of Asterisk
requests is decided here and tested without Asterisk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from convener.app.actions.person import wants_person

State = Literal["idle", "dialling", "answered", "connected", "returned", "continued", "ended"]
Failure = Literal["busy", "no_answer", "failed"]

# ARI Dial event dialstatus -> how the transfer ended when it is not ANSWER.
_DIALSTATUS: dict[str, Failure] = {
    "BUSY": "busy", "NOANSWER": "no_answer", "CONGESTION": "failed", "CHANUNAVAIL": "failed",
    "CANCEL": "failed", "DONTCALL": "failed", "TORTURE": "failed", "INVALIDARGS": "failed",
}
# Hangup causes of the dialled channel (Q.850) when it goes before answering.
_CAUSES: dict[int, Failure] = {17: "busy", 18: "no_answer", 19: "no_answer", 21: "busy"}


class TransferError(RuntimeError):
    """A step asked of the machine in a state where it makes no sense."""


@dataclass
class Step:
    """What the shell does next."""

    action: Literal["dial", "continue", "play_summary", "connect", "tell_caller", "clean_up", "none"]
    failure: Failure | None = None


@dataclass
class TransferMachine:
    target: str
    kind: Literal["dial", "dialplan"] = "dial"
    summary: bool = True
    state: State = "idle"
    failure: Failure | None = None
    history: list[State] = field(default_factory=list)

    def _go(self, state: State) -> None:
        self.history.append(self.state)
        self.state = state

    def start(self) -> Step:
        if self.state != "idle":
            raise TransferError(f"transfer to {self.target} already {self.state}")
        if self.kind == "dialplan":
            self._go("continued")
            return Step("continue")
        self._go("dialling")
        return Step("dial")

    def dial_status(self, status: str) -> Step:
        """An ARI ``Dial`` event for the dialled channel."""
        s = status.upper()
        if self.state != "dialling" or s in ("", "RINGING", "PROGRESS", "PROCEEDING"):
            return Step("none")
        if s == "ANSWER":
            return self.answered()
        return self._fail(_DIALSTATUS.get(s, "failed"))

    def answered(self) -> Step:
        if self.state != "dialling":
            return Step("none")
        self._go("answered")
        return Step("play_summary") if self.summary else self.summary_played()

    def summary_played(self) -> Step:
        if self.state != "answered":
            return Step("none")
        self._go("connected")
        return Step("connect")

    def peer_gone(self, cause: int = 0, rang_out: bool = False) -> Step:
        """The dialled channel went away (hung up, or never answered). ``rang_out``: it went
        when the ring timeout ran out (ARI's dial ends an unanswered ring with a bare hangup,
        no NOANSWER status)."""
        if self.state == "dialling":
            return self._fail("no_answer" if rang_out else _CAUSES.get(cause, "failed"))
        if self.state == "answered":  # hung up during the summary
            return self._fail("failed")
        if self.state == "connected":
            self._go("ended")
            return Step("clean_up")
        return Step("none")

    def timed_out(self) -> Step:
        if self.state == "dialling":
            return self._fail("no_answer")
        if self.state == "answered":
            return self._fail("failed")
        return Step("none")

    def _fail(self, why: Failure) -> Step:
        self.failure = why
        self._go("returned")
        return Step("tell_caller", failure=why)

    @property
    def done(self) -> bool:
        return self.state in ("returned", "continued", "ended", "connected")


_FILLER = re.compile(r"^(?:hi|hello|hey|yes|yeah|no|ok|okay|thanks|thank you|please|um|uh)[.!,? ]*$", re.I)


def _clip(text: str, words: int) -> str:
    w = text.strip().rstrip(".!?").split()
    return " ".join(w[:words]) + ("..." if len(w) > words else "")


def summary_sentence(transcript: list[tuple[float, str, str]], caller: str = "caller",
                     target: str = "", max_words: int = 18) -> str:
    """One sentence for the person who answers, from the conversation so far.

    ``transcript`` is ``[(time, who, text)]`` with the caller's turns under ``caller``. The
    sentence names what the caller asked first and, if different, last, and which assistant
    spoke last. The request for a person itself is left out. It never invents: with nothing
    said yet it says so."""
    said = [text for _t, who, text in transcript if who == caller and text.strip()
            and not _FILLER.match(text.strip()) and not wants_person(text)]
    agents = [who for _t, who, text in transcript if who not in (caller, "convener", "") and text.strip()]
    if not said:
        return "A caller is being transferred to you; they have not said anything yet."
    first, last = said[0], said[-1]
    parts = f'A caller is being transferred to you; they said "{_clip(first, max_words)}"'
    if last != first:
        parts += f', and last "{_clip(last, max_words)}"'
    if agents:
        parts += f", after talking with {agents[-1]}"
    return parts + "."
