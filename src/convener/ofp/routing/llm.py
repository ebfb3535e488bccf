"""The LLM convener's decision, pure: the prompt it is given and the strict check of its answer.

The model sees the agents' manifests (name, synopsis, descriptions, keyphrases), who holds the
floor, the recent dialog and what the caller just said, and must answer with one JSON object:

    {"action": "invite", "agent": "Flights"}                    connect an agent (then: optional
    {"action": "invite", "agent": "Flights", "then": "Hotels"}  second agent for a 2nd request)
    {"action": "handover", "agent": "Hotels"}                   move the floor to another agent
    {"action": "ask", "agents": ["Flights", "RentRight"], "question": "A flight, or a car?"}
    {"action": "stay"}                                          the agent holding the floor answers
    {"action": "none"}                                          no agent fits

``parse_decision`` accepts exactly that (an object, optionally inside one Markdown code fence,
as local models like to write it): known actions, only the keys of that action, agent names of
the manifests (case does not matter), two different agents to ask about, a question of at most
``MAX_QUESTION_WORDS`` words. Anything else raises ``InvalidDecision``, and the embedded router
decides. The answer becomes the router's ``Decision``, so the convener policy acts on either
in the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from convener.ofp.dialog import DialogEvent
from convener.ofp.manifest import Manifest
from convener.ofp.routing.decision import Decision

ACTIONS: dict[str, set[str]] = {
    "invite": {"action", "agent", "then"},
    "handover": {"action", "agent"},
    "ask": {"action", "agents", "question"},
    "stay": {"action"},
    "none": {"action"},
}
REQUIRED: dict[str, set[str]] = {"invite": {"agent"}, "handover": {"agent"}, "ask": {"agents"}}
MAX_QUESTION_WORDS = 25
MAX_ANSWER_CHARS = 2000
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.S)

SYSTEM = """You are the convener of a telephone line. Callers speak; AI agents answer them.
You decide who answers what the caller just said. The agents:
{agents}

Answer with ONE JSON object and nothing else, one of:
{{"action": "invite", "agent": "<name>"}} - connect the agent that fits the request
{{"action": "invite", "agent": "<name>", "then": "<name>"}} - two requests: the first agent now, the second after
{{"action": "handover", "agent": "<name>"}} - another agent should take over from the one holding the floor
{{"action": "ask", "agents": ["<name>", "<name>"], "question": "<short question>"}} - two agents fit: ask which
{{"action": "stay"}} - the agent holding the floor should answer (follow-ups, answers to its questions)
{{"action": "none"}} - no agent can help
Use only the agent names above. Prefer "stay" when an agent holds the floor and the caller answers it."""


def _describe(m: Manifest) -> str:
    ident = m.identification
    parts = [ident.synopsis.strip()] if ident.synopsis else []
    for cap in m.capabilities:
        parts += [d.strip() for d in cap.descriptions if d.strip()]
        if cap.keyphrases:
            parts.append("keyphrases: " + ", ".join(cap.keyphrases))
    return f"- {ident.conversational_name}: " + " ".join(parts)


def prompt(text: str, manifests: Sequence[Manifest], history: Sequence[DialogEvent],
           names: dict[str, str], focal: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chat messages for one decision. ``names``: speakerUri → who (callers "Caller")."""
    agents = "\n".join(_describe(m) for m in manifests if m.identification.conversational_name)
    holder = ", ".join(names.get(u, u) for u in focal) or "nobody"
    lines = [f"{names.get(de.speaker_uri or '', 'Caller')}: {de.text}" for de in history if de.text.strip()]
    user = (f"Agent holding the floor: {holder}\n"
            f"Recent dialog:\n{chr(10).join(lines) or '(none)'}\n"
            f"The caller just said: {json.dumps(text)}")
    return [{"role": "system", "content": SYSTEM.format(agents=agents)}, {"role": "user", "content": user}]


class InvalidDecision(ValueError):
    """The model's answer is not one valid decision."""


def _object(raw: str) -> dict[str, Any]:
    text = raw.strip()
    if len(text) > MAX_ANSWER_CHARS:
        raise InvalidDecision("answer too long")
    fence = _FENCE.match(text)
    if fence:
        text = fence.group(1).strip()
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidDecision(f"not JSON: {raw[:60]!r}") from None
    if not isinstance(doc, dict):
        raise InvalidDecision("not a JSON object")
    return doc


def _agent(name: Any, by_name: dict[str, Manifest]) -> Manifest:
    if not isinstance(name, str) or name.strip().lower() not in by_name:
        raise InvalidDecision(f"unknown agent {name!r}")
    return by_name[name.strip().lower()]


def parse_decision(raw: str, manifests: Sequence[Manifest], focal: Sequence[str] = ()) -> Decision:
    """The router ``Decision`` the answer means, or ``InvalidDecision``."""
    doc = _object(raw)
    action = doc.get("action")
    if action not in ACTIONS:
        raise InvalidDecision(f"unknown action {action!r}")
    extra = set(doc) - ACTIONS[action]
    if extra:
        raise InvalidDecision(f"unexpected keys for {action}: {', '.join(sorted(extra))}")
    missing = REQUIRED.get(action, set()) - set(doc)
    if missing:
        raise InvalidDecision(f"{action} needs {', '.join(sorted(missing))}")
    by_name = {m.identification.conversational_name.lower(): m for m in manifests
               if m.identification.conversational_name}
    if action in ("invite", "handover"):
        target = _agent(doc["agent"], by_name)
        if target.identification.speaker_uri in focal:
            return Decision("stay", why=f"llm: {action} {target.identification.conversational_name}, "
                                        "who holds the floor")
        then = _agent(doc["then"], by_name) if doc.get("then") is not None else None
        if then is target:
            then = None
        return Decision("invite", (target,), f"llm: {action} {target.identification.conversational_name}",
                        then=then)
    if action == "ask":
        names = doc["agents"]
        if not isinstance(names, list) or len(names) != 2:
            raise InvalidDecision("ask needs two agents")
        a, b = (_agent(n, by_name) for n in names)
        if a is b:
            raise InvalidDecision("ask needs two different agents")
        question = doc.get("question") or ""
        if not isinstance(question, str) or len(question.split()) > MAX_QUESTION_WORDS:
            raise InvalidDecision("question must be a short string")
        return Decision("ask", (a, b), "llm: ask", question=question.strip())
    if action == "stay":
        return Decision("stay" if focal else "none", why="llm: stay")
    return Decision("stay" if focal else "none", why="llm: none")
