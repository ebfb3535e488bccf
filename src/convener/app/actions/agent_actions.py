"""The OFP extension for call actions: what an agent sends, what convener answers. Pure.

Open Floor 1.1.0 lists the event types (section 1.9) but makes dialog-event features
extensible (section 1.11: "any other arbitrary features can be added with any mime type";
section 1.10: agents may ignore every feature but ``text``). So an action is not a new event
type, which other floors would drop: it is a feature of an ordinary ``utterance``, next to
the ``text`` that convener speaks first (the goodbye, "putting you through")::

    "features": {
      "text": {"mimeType": "text/plain", "tokens": [{"value": "Goodbye!"}]},
      "x-convener-action": {"mimeType": "application/vnd.convener.action+json",
                            "tokens": [{"value": {"action": "hangup"}}]}}

Actions: ``transfer`` (``target``: a name from ``[transfer.targets]``, never a number),
``hangup``, ``dtmf`` (``digits`` played to the caller's line), ``collect`` (``max_digits``,
``terminator``, ``timeout``: the digits the caller presses come back to the agent as the
caller's utterance). convener answers with a private utterance to the agent whose
``x-convener-action-result`` feature says ``{"action", "status", "reason"}``; ``status`` is
``done``, ``refused`` or ``failed`` and ``reason`` an OFP special token (``@unknownTarget``).
See docs/actions.md.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from convener.ofp.dialog import Feature, Token

ACTION_FEATURE = "x-convener-action"
ACTION_MIME = "application/vnd.convener.action+json"
RESULT_FEATURE = "x-convener-action-result"
RESULT_MIME = "application/vnd.convener.action-result+json"

ActionKind = Literal["transfer", "hangup", "dtmf", "collect"]
Status = Literal["done", "refused", "failed"]
_DIGITS = re.compile(r"^[0-9*#A-D]{1,32}$")


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str = ""  # transfer
    digits: str = ""  # dtmf
    max_digits: int = 16  # collect
    terminator: str = "#"  # collect ("" = none)
    timeout: float = 10.0  # collect: seconds from the prompt's end to the last key


@dataclass(frozen=True)
class Refusal:
    action: str
    reason: str  # an OFP special token: @unknownTarget, @badRequest, @unknownAction
    detail: str


def parse_action(features: Mapping[str, Feature], targets: Collection[str]) -> Action | Refusal | None:
    """The action an utterance carries (None: none), checked against the configured targets."""
    f = features.get(ACTION_FEATURE)
    if f is None:
        return None
    raw: Any = f.tokens[0].value if f.tokens else None
    if not isinstance(raw, Mapping):
        return Refusal("", "@badRequest", "the action token's value must be a JSON object")
    kind = raw.get("action")
    if kind == "transfer":
        target = raw.get("target")
        if not isinstance(target, str) or not target:
            return Refusal("transfer", "@badRequest", "transfer needs a target name")
        if target not in targets:
            return Refusal("transfer", "@unknownTarget",
                           f"{target!r} is not a configured transfer target")
        return Action("transfer", target=target)
    if kind == "hangup":
        return Action("hangup")
    if kind == "dtmf":
        digits = raw.get("digits")
        if not isinstance(digits, str) or not _DIGITS.match(digits):
            return Refusal("dtmf", "@badRequest", "digits must be 1 to 32 of 0-9 * # A-D")
        return Action("dtmf", digits=digits)
    if kind == "collect":
        max_digits, terminator, timeout = raw.get("max_digits", 16), raw.get("terminator", "#"), \
            raw.get("timeout", 10)
        if isinstance(max_digits, bool) or not isinstance(max_digits, int) or not 1 <= max_digits <= 32:
            return Refusal("collect", "@badRequest", "max_digits must be an integer in [1, 32]")
        if not isinstance(terminator, str) or terminator not in ("", "#", "*"):
            return Refusal("collect", "@badRequest", 'terminator must be "#", "*" or ""')
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 60:
            return Refusal("collect", "@badRequest", "timeout must be in [1, 60] seconds")
        return Action("collect", max_digits=max_digits, terminator=terminator, timeout=float(timeout))
    return Refusal(str(kind or ""), "@unknownAction", f"unknown action {kind!r}")


def result_feature(action: str, status: Status, reason: str = "", detail: str = "") -> Feature:
    value: dict[str, Any] = {"action": action, "status": status}
    if reason:
        value["reason"] = reason
    if detail:
        value["detail"] = detail
    return Feature(RESULT_MIME, [Token(value=value)])


def result_text(action: str, status: Status, reason: str = "", detail: str = "") -> str:
    """The plain-text side of a result (the ``text`` feature every utterance must carry)."""
    what = action or "action"
    if status == "done":
        return f"convener: {what} done."
    return f"convener: {what} {status} {reason}".rstrip() + (f": {detail}" if detail else "") + "."


@dataclass
class DigitCollector:
    """Keys pressed by the caller after a ``collect``: ``press`` returns the digits when done."""

    max_digits: int = 16
    terminator: str = "#"
    digits: str = ""
    ended_by: str = ""

    def press(self, key: str) -> str | None:
        if self.ended_by:
            return None
        if self.terminator and key == self.terminator:
            self.ended_by = "terminator"
            return self.digits
        self.digits += key
        if len(self.digits) >= self.max_digits:
            self.ended_by = "max_digits"
            return self.digits
        return None

    def time_out(self) -> str | None:
        if self.ended_by:
            return None
        self.ended_by = "timeout"
        return self.digits
