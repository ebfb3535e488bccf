"""Does the caller ask for a real person? Pure: plain common wordings, no model.

``wants_person("I'd like to speak to a real person")`` is True; so are "operator", "can I talk
to someone", "get me a human", "transfer me to a representative", "live agent please". It is
False for requests that only mention people ("a table for two people", "one person, economy"),
for AI agents by name ("let me talk to the weather agent"), for negations ("I don't want to
talk to a person") and for a person described by a task the agents may do ("a person who can
book flights": the flights agent is asked; "a real person who can..." still transfers).
"""

from __future__ import annotations

import re

# Who: nouns that mean a human at the company. "agent" only with real/live/human before it.
_REAL = r"(?:real|live|actual|human|proper)"
_NOUN = (r"(?:(?:" + _REAL + r"\s+)?(?:person|human(?:\s+being)?|operator|representative|rep|"
         r"receptionist|attendant|staff(?:\s+member)?|employee|customer\s+service(?:\s+rep(?:resentative)?)?)"
         r"|someone|somebody|anyone|anybody|a\s+human|" + _REAL + r"\s+(?:agent|people|someone|somebody))")
_ART = r"(?:(?:a|an|the|some|your|one\s+of\s+your)\s+)?"
# How: reach a human. "speak/talk/chat (to|with)", "put me through/connect/transfer/pass me to".
_VERB = (r"(?:speak|talk|chat|get\s+through|be\s+put\s+through|put\s+me\s+through|put\s+me|"
         r"connect\s+me|transfer\s+me|switch\s+me|pass\s+me|hand\s+me|send\s+me|forward\s+me|"
         r"redirect\s+me|get\s+me\s+through)")
_REACH = re.compile(r"\b" + _VERB + r"\s+(?:(?:over|back|directly|right\s+now|now)\s+)*(?:to|with)\s+"
                    + _ART + _NOUN + r"\b")
# Wanting one: "I want / need / would like / get me / give me (a) human".
_WANT = re.compile(r"\b(?:want|need|like|prefer|get\s+me|give\s+me|find\s+me|request|ask\s+for|"
                   r"is\s+there|are\s+there|can\s+i\s+have|could\s+i\s+have|may\s+i\s+have)\s+"
                   + _ART + _NOUN + r"\b")
# The whole turn is the request: "operator", "a human please", "real person!".
_BARE = re.compile(r"^(?:(?:hi|hello|yes|ok|okay|um|uh|er)\s+)*(?:an?\s+|the\s+)?" + _NOUN
                   + r"(?:\s+(?:please|now|right\s+now|thanks|thank\s+you))*$")
_NEGATION = re.compile(r"\b(?:don'?t|do\s+not|doesn'?t|no\s+need|not|never|without|rather\s+not|"
                       r"no\s+thanks)\b")
# A human described by a task: "a person who can book flights", "someone to help with hotels".
_TASK_AFTER = re.compile(r"^\s*(?:who|that|which|to)\s+(?:can|could|will|would|is\s+able\s+to|"
                         r"help|book|check|tell|find|reserve|get|do|make)\b")
_EXPLICIT_REAL = re.compile(r"\b" + _REAL + r"\s+(?:person|human|agent|people|someone|somebody|operator)\b")


def _normal(text: str) -> str:
    t = text.lower().replace("’", "'")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    t = re.sub(r"\bi'd\b", "i would", t)
    return re.sub(r"\s+", " ", t).strip()


def wants_person(text: str) -> bool:
    """True when ``text`` asks to be handed to a real person (see the module docstring)."""
    t = _normal(text)
    if not t:
        return False
    # A sentence that is only the request: "Operator please. Operator please." (a recogniser
    # may repeat it; a caller may say it twice).
    if any(_BARE.match(_normal(sentence)) for sentence in re.split(r"[.!?;]+", text) if sentence.strip()):
        return True
    for pattern in (_REACH, _WANT):
        for m in pattern.finditer(t):
            before = t[max(0, m.start() - 30):m.start()]
            if _NEGATION.search(before + " " + t[m.start():m.start() + 12]):
                continue  # "I don't want to talk to a person"
            after = t[m.end():]
            if _TASK_AFTER.match(after) and not _EXPLICIT_REAL.search(m.group(0)):
                continue  # "a person who can book flights": the agents are asked
            return True
    return False
