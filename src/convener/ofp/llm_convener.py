"""The LLM convener's thin shell: ask the model of ``[llm]`` for a decision, within a budget.

``LlmConvener.ask(...)`` returns the model's raw answer, or None when it failed, was late
(``llm.convener_budget_ms``, 600 ms by default) or is paused. The session starts it while the
turn ends (with the speculative transcript) and as the turn begins, next to the router's own
preparation, and hands the answer to the convener policy, which checks it
(``convener.ofp.routing.llm.parse_decision``) and acts on it, or lets the embedded router
decide. So a slow, dead or confused model costs the caller at most the budget, never the call;
after ``PAUSE_AFTER`` failures in a row the model is not asked for ``PAUSE_S`` seconds at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from convener.llm.client import ChatClient, LlmError
from convener.llm.settings import LlmSettings
from convener.ofp.dialog import DialogEvent
from convener.ofp.manifest import Manifest
from convener.ofp.routing.llm import prompt

log = logging.getLogger(__name__)

PAUSE_AFTER = 3
PAUSE_S = 30.0
MAX_TOKENS = 80


class LlmConvener:
    def __init__(self, settings: LlmSettings, client: ChatClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.client = client or ChatClient(settings, model=settings.convener_model or None)
        self.budget = settings.convener_budget_ms / 1000
        self.clock = clock
        self.asked = 0
        self.failed = 0
        self.skipped = 0
        self.last_ms: float | None = None
        self._in_a_row = 0
        self._paused_until = 0.0

    async def ask(self, text: str, manifests: Sequence[Manifest], history: Sequence[DialogEvent],
                  names: dict[str, str], focal: Sequence[str] = ()) -> str | None:
        if self.clock() < self._paused_until:
            self.skipped += 1
            return None
        self.asked += 1
        messages = prompt(text, manifests, history[-self.settings.convener_history:] if
                          self.settings.convener_history else [], names, focal)
        t0 = self.clock()
        try:
            raw = await self.client.complete(messages, json_mode=True, max_tokens=MAX_TOKENS, timeout=self.budget)
        except LlmError as e:
            self.failed += 1
            self._in_a_row += 1
            self.last_ms = (self.clock() - t0) * 1000
            if self._in_a_row >= PAUSE_AFTER:
                self._paused_until = self.clock() + PAUSE_S
                log.warning("LLM convener: %d failures in a row (last: %s); the router decides alone for %.0f s",
                            self._in_a_row, e, PAUSE_S)
                self._in_a_row = 0
            else:
                log.info("LLM convener: %s; the router decides", e)
            return None
        self._in_a_row = 0
        self.last_ms = (self.clock() - t0) * 1000
        return raw

    async def close(self) -> None:
        await self.client.close()
