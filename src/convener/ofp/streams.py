"""Streamed replies: which follow-up sentences of an agent may still be spoken. Pure, no I/O.

An agent answers a caller's turn with its first sentence (an utterance without ``previousId``:
the head of a stream) and POSTs the following sentences to our endpoint later, each an
utterance whose ``previousId`` is the id of the sentence before (docs/agents.md). A follow-up
is taken only when it continues the agent's current stream; a barge-in or the caller's next
turn cuts every stream, and what still arrives for a cut stream is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReplyStreams:
    # speakerUri -> the ids of the current stream's sentences, in order (the last is its end)
    _chains: dict[str, list[str]] = field(default_factory=dict)
    dropped: int = 0

    def head(self, agent: str, event_id: str) -> None:
        """An utterance without previousId: it starts the agent's stream."""
        self._chains[agent] = [event_id]

    def accepts(self, agent: str, previous_id: str) -> bool:
        """Whether a follow-up whose previousId is ``previous_id`` continues the current stream."""
        chain = self._chains.get(agent)
        return bool(chain) and chain[-1] == previous_id  # type: ignore[index]

    def follow(self, agent: str, previous_id: str, event_id: str) -> bool:
        """Take a follow-up (True) or drop it (False, counted)."""
        chain = self._chains.get(agent)
        if chain and chain[-1] == event_id:
            return True  # the same sentence, delivered to another caller of the room
        if not self.accepts(agent, previous_id):
            self.dropped += 1
            return False
        self._chains[agent].append(event_id)
        return True

    def current(self, agent: str, event_id: str) -> bool:
        """Whether ``event_id`` belongs to the agent's current (not cut) stream."""
        return event_id in self._chains.get(agent, ())

    def cut(self) -> list[str]:
        """Barge-in or a new caller turn: every stream ends; returns the agents that had one."""
        agents = list(self._chains)
        self._chains.clear()
        return agents
