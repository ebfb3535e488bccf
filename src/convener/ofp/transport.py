"""HTTP transport: POST one envelope to one agent, never trusting what comes back.

``AgentClient.post`` bounds everything an agent can do to us: the whole exchange (connect,
send, headers, body) must finish within the agent's timeout, the body may not exceed
``max_bytes`` (checked while reading, so a 10 MB body or a slow drip costs at most the limit and
the timeout), redirects are not followed (an agent cannot make us POST elsewhere), and the answer
must be an envelope of the same conversation. Whatever goes wrong becomes a ``Fault`` with the
reason token the convener uses to uninvite the agent; nothing is raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from convener.ofp.envelope import Envelope
from convener.ofp.errors import ParseError
from convener.ofp.parse import decode_json, parse_envelope

log = logging.getLogger(__name__)

FaultKind = Literal[
    "timeout",
    "connection",
    "http_status",
    "too_large",
    "invalid_json",
    "not_envelope",
    "wrong_conversation",
]
_TOKENS: dict[str, str] = {
    "timeout": "@timedOut",
    "connection": "@error",
    "http_status": "@error",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    detail: str

    @property
    def token(self) -> str:
        """The reason token for ``uninvite``: @timedOut, @error or @brokenPolicy."""
        return _TOKENS.get(self.kind, "@brokenPolicy")

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class PostResult:
    url: str
    sent_at: float
    received_at: float
    envelope: Envelope | None = None
    fault: Fault | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return self.received_at - self.sent_at


class AgentClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        max_bytes: int = 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.max_bytes = max_bytes
        self.clock = clock

    async def post(
        self,
        url: str,
        payload: bytes,
        *,
        timeout: float,
        conversation_id: str | None,
        expect_sender: str | None = None,
    ) -> PostResult:
        """POST ``payload`` to ``url``; read and check the answer. Never raises for the agent's faults."""
        sent = self.clock()
        res = PostResult(url=url, sent_at=sent, received_at=sent)
        try:
            async with asyncio.timeout(timeout):
                body = await self._exchange(url, payload, res)
        except TimeoutError:
            res.fault = Fault("timeout", f"no complete answer within {timeout:g} s")
            body = None
        except aiohttp.ClientError as e:
            res.fault = Fault("connection", f"{type(e).__name__}: {e}")
            body = None
        except OSError as e:
            res.fault = Fault("connection", f"{type(e).__name__}: {e}")
            body = None
        res.received_at = self.clock()
        if res.fault is None and body is not None:
            self._read(body, res, conversation_id, expect_sender)
        if res.fault is not None:
            log.warning("agent at %s: %s", url, res.fault)
            from convener.ops import metrics

            if res.fault.kind == "timeout":
                metrics.agent_timeout(url)
            else:
                metrics.agent_error(url)
        return res

    async def _exchange(self, url: str, payload: bytes, res: PostResult) -> bytes | None:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        async with self.http.post(url, data=payload, headers=headers, allow_redirects=False) as resp:
            if resp.status not in (200, 201, 202, 204):
                res.fault = Fault("http_status", f"HTTP {resp.status}")
                return None
            if resp.content_length is not None and resp.content_length > self.max_bytes:
                res.fault = Fault("too_large", f"Content-Length {resp.content_length} > {self.max_bytes}")
                return None
            body = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > self.max_bytes:
                    res.fault = Fault("too_large", f"body larger than {self.max_bytes} bytes")
                    return None
            return bytes(body)

    def _read(
        self, body: bytes, res: PostResult, conversation_id: str | None, expect_sender: str | None
    ) -> None:
        if not body.strip():
            res.notes.append("empty body taken as an envelope without events")
            return
        try:
            doc = decode_json(body)
        except ParseError as e:
            res.fault = Fault("invalid_json", str(e)[:200])
            return
        try:
            env = parse_envelope(
                doc, default_conversation_id=conversation_id, default_sender=expect_sender, notes=res.notes
            )
        except ParseError as e:
            res.fault = Fault("not_envelope", str(e)[:200])
            return
        if conversation_id is not None and env.conversation.id != conversation_id:
            res.fault = Fault(
                "wrong_conversation", f"answered for conversation {env.conversation.id!r}"
            )
            return
        if expect_sender is not None and env.sender_uri != expect_sender:
            res.notes.append(f"sender {env.sender_uri!r} is not the agent posted to; taken as {expect_sender}")
            env.sender_uri = expect_sender
        if res.notes:
            log.info("repaired answer from %s: %s", res.url, "; ".join(res.notes))
        res.envelope = env
