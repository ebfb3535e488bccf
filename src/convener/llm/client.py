"""The thin aiohttp shell around ``convener.llm.wire``: one chat-completions endpoint.

    client = ChatClient(settings)                       # or ChatClient(settings, http=session)
    text = await client.complete(messages, json_mode=True, timeout=0.6)
    async for piece in client.stream(messages):         # text as the tokens arrive
        ...
    await client.close()

Every failure is an ``LlmError`` with a ``kind``: ``unavailable`` (cannot connect, 5xx),
``timeout`` (no first token, a stalled stream, the whole answer too slow), ``rate_limited``
(429, after at most one retry when its Retry-After fits ``max_retry_after``), ``rejected``
(other 4xx: bad model, bad key) and ``garbage`` (not the protocol, or a stream cut before
``[DONE]``). The API key goes in the Authorization header only; it is never in a message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp

from convener.llm import wire
from convener.llm.settings import LlmSettings

log = logging.getLogger(__name__)

ErrorKind = Literal["unavailable", "timeout", "rate_limited", "rejected", "garbage"]
MAX_ANSWER_BYTES = 1024 * 1024


class LlmError(Exception):
    def __init__(self, kind: ErrorKind, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: ErrorKind = kind
        self.detail = detail
        self.retry_after = retry_after


class ChatClient:
    def __init__(self, settings: LlmSettings, *, http: aiohttp.ClientSession | None = None,
                 model: str | None = None) -> None:
        self.settings = settings
        self.model = model or settings.model
        self._http = http
        self._own_http = http is None
        self.url = settings.base_url.rstrip("/") + "/chat/completions"

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            from convener.ari.rest import ssl_context

            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                ssl=ssl_context(self.settings.verify_tls, self.settings.ca_file)))
            self._own_http = True
        return self._http

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if stream else "application/json"}
        key = self.settings.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    # --- requests ----------------------------------------------------------------------------

    async def _open(self, body: dict[str, Any], stream: bool, deadline: float) -> aiohttp.ClientResponse:
        """POST and return a 2xx response (the caller reads and releases it); one 429 retry."""
        s = self.settings
        payload = json.dumps(body).encode()
        for attempt in (1, 2):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LlmError("timeout", "no answer within the time allowed")
            timeout = aiohttp.ClientTimeout(total=None, connect=min(s.connect_timeout, left),
                                            sock_read=min(s.first_token_timeout, left))
            try:
                resp = await self._session().post(self.url, data=payload, headers=self._headers(stream),
                                                  timeout=timeout)
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise LlmError("timeout", f"no answer from {self.url}") from None
            except aiohttp.ClientError as e:
                raise LlmError("unavailable", f"{self.url}: {type(e).__name__}: {e}") from None
            if 200 <= resp.status < 300:
                return resp
            try:
                text = wire.error_text(await resp.content.read(64 * 1024))
            except (TimeoutError, aiohttp.ClientError):
                text = ""
            finally:
                resp.release()
            if resp.status == 429:
                wait = wire.retry_after(resp.headers.get("Retry-After"))
                fits = wait is not None and wait <= s.max_retry_after and time.monotonic() + wait < deadline
                if attempt == 1 and fits:
                    assert wait is not None
                    log.info("LLM rate limited; retrying in %.2f s as Retry-After asks", wait)
                    await asyncio.sleep(wait)
                    continue
                raise LlmError("rate_limited", f"429 {text}".strip(), retry_after=wait)
            kind: ErrorKind = "unavailable" if resp.status >= 500 else "rejected"
            raise LlmError(kind, f"HTTP {resp.status} {text}".strip())
        raise LlmError("rate_limited", "429")  # not reached

    def _body(self, messages: list[dict[str, str]], stream: bool, max_tokens: int | None,
              json_mode: bool, model: str | None) -> dict[str, Any]:
        s = self.settings
        return wire.chat_body(model or self.model, messages, stream=stream,
                              max_tokens=max_tokens or s.max_tokens, temperature=s.temperature,
                              json_mode=json_mode)

    async def complete(self, messages: list[dict[str, str]], *, json_mode: bool = False,
                       max_tokens: int | None = None, timeout: float | None = None,
                       model: str | None = None) -> str:
        """The whole answer (no streaming), within ``timeout`` (default ``total_timeout``)."""
        limit = timeout if timeout is not None else self.settings.total_timeout
        deadline = time.monotonic() + limit
        try:
            async with asyncio.timeout(limit):
                resp = await self._open(self._body(messages, False, max_tokens, json_mode, model), False, deadline)
                try:
                    raw = await _read_all(resp)
                finally:
                    resp.release()
        except TimeoutError:
            raise LlmError("timeout", f"no complete answer within {limit:.2f} s") from None
        except aiohttp.ClientError as e:
            raise LlmError("garbage", f"answer cut: {type(e).__name__}") from None
        try:
            return wire.completion_text(json.loads(raw))
        except (ValueError, wire.WireError) as e:
            raise LlmError("garbage", f"not a chat completion: {e}") from None

    async def stream(self, messages: list[dict[str, str]], *, max_tokens: int | None = None,
                     model: str | None = None) -> AsyncIterator[str]:
        """The answer's text pieces as they arrive (``data: [DONE]`` ends it)."""
        s = self.settings
        start = time.monotonic()
        deadline = start + s.total_timeout
        resp = await self._open(self._body(messages, True, max_tokens, False, model), True, deadline)
        first = True
        size = 0
        try:
            if "json" in (resp.content_type or "") and "event-stream" not in (resp.content_type or ""):
                # A server that ignores "stream": the whole answer at once.
                raw = await asyncio.wait_for(_read_all(resp), s.first_token_timeout)
                try:
                    yield wire.completion_text(json.loads(raw))
                except (ValueError, wire.WireError) as e:
                    raise LlmError("garbage", f"not a chat completion: {e}") from None
                return
            while True:
                wait = s.first_token_timeout - (time.monotonic() - start) if first else s.idle_timeout
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise LlmError("timeout", "no first token in time" if first else "answer too slow")
                try:
                    line = await asyncio.wait_for(resp.content.readline(), wait)
                except TimeoutError:
                    raise LlmError("timeout", "no first token in time" if first else "stream stalled") from None
                except aiohttp.ClientError as e:
                    raise LlmError("garbage", f"stream cut: {type(e).__name__}") from None
                if not line:
                    raise LlmError("garbage", "stream ended before [DONE]")
                size += len(line)
                if size > MAX_ANSWER_BYTES:
                    raise LlmError("garbage", "answer too large")
                try:
                    chunk = wire.parse_sse_line(line.decode("utf-8", "replace"))
                except wire.WireError as e:
                    raise LlmError("garbage", str(e)) from None
                if chunk is None:
                    continue
                if chunk.error is not None:
                    raise LlmError("unavailable", f"error in stream: {chunk.error}")
                if chunk.done:
                    return
                if chunk.text:
                    first = False
                    yield chunk.text
        finally:
            resp.release()


async def _read_all(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, at most MAX_ANSWER_BYTES (more is garbage)."""
    parts: list[bytes] = []
    size = 0
    while True:
        part = await resp.content.read(64 * 1024)
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > MAX_ANSWER_BYTES:
            raise LlmError("garbage", "answer too large")
        parts.append(part)
