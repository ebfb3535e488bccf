"""Who may interrupt a reply in a room with several callers (``[voice] barge_in_room``).

- ``addressee``: only the caller whose turn the reply answers (and anyone for a reply that
  answers no caller: an agent speaking on its own). Another caller who speaks meanwhile does
  not cut it; their turn is heard and answered after it. The default: in a room, people talk
  to each other, and one caller's "mm-hm" must not cut the answer another caller is waiting for.
- ``anyone``: whoever speaks stops the reply (a room of one behaves the same either way).
"""

from __future__ import annotations

POLICIES = ("addressee", "anyone")


def may_interrupt(policy: str, reply_for: str | None, speaker: str | None) -> bool:
    """May ``speaker`` (a speakerUri) cut the reply meant for ``reply_for`` (None: the room)?"""
    if policy == "anyone" or reply_for is None:
        return True
    return speaker == reply_for
