"""A local server speaking the OpenAI chat-completions wire protocol, for tests and benchmarks.

Real aiohttp server on 127.0.0.1 (random port), ``POST /v1/chat/completions``:

* ``"stream": false`` → ``{"id", "object": "chat.completion", "choices": [{"message":
  {"role": "assistant", "content"}, "finish_reason": "stop"}], "usage"}``.
* ``"stream": true`` → ``text/event-stream``: ``data: {"object": "chat.completion.chunk",
  "choices": [{"delta": {"role"|"content"}, "finish_reason"}]}`` lines, then ``data: [DONE]``.
  The first content token comes after ``first_token_delay`` seconds, then ``tokens_per_second``
  (a token is a word with its trailing space).
* Errors as the service sends them: ``{"error": {"message", "type", "code"}}`` with the status;
  a wrong or missing key (when ``api_key`` is set) → 401; ``rate_limit`` requests → 429 with
  ``Retry-After: retry_after``.

What it answers: ``reply`` (a string, or a function of the request body returning one).
Faults on demand: ``status`` (answer every request with that error), ``cut_after_tokens``
(close the connection mid-stream, no ``[DONE]``), ``garbage`` (a non-JSON body or chunk),
``stall_after_tokens`` (stop sending but keep the connection open). Every request is kept
in ``requests`` (body and headers) so tests can check what the client sent.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_TOKEN = re.compile(r"\S+\s*|\s+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class FakeOpenAI:
    def __init__(self, reply: str | Callable[[dict[str, Any]], str] = "Hello there. How can I help?", *,
                 first_token_delay: float = 0.0, tokens_per_second: float = 0.0,
                 api_key: str = "") -> None:
        self.reply = reply
        self.first_token_delay = first_token_delay
        self.tokens_per_second = tokens_per_second  # 0 = as fast as possible
        self.api_key = api_key
        self.status = 0  # e.g. 500, 503, 400: every request gets that error
        self.rate_limit = 0  # this many requests get 429 first
        self.retry_after = "1"
        self.cut_after_tokens: int | None = None
        self.stall_after_tokens: int | None = None
        self.garbage = False
        self.requests: list[Request] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._streams: set[web.StreamResponse] = set()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @staticmethod
    def _error(status: int, message: str, etype: str, code: str | None = None,
               headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    def text_for(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self.requests.append(Request(body, dict(request.headers)))
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if self.rate_limit > 0:
            self.rate_limit -= 1
            return self._error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded",
                               headers={"Retry-After": self.retry_after})
        if self.status:
            kind = "server_error" if self.status >= 500 else "invalid_request_error"
            return self._error(self.status, f"The server had an error ({self.status})", kind)
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            return self._error(400, "'messages' and 'model' are required", "invalid_request_error")
        text = self.text_for(body)
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if not body.get("stream"):
            await asyncio.sleep(self.first_token_delay + self._duration(len(tokens(text))))
            if self.garbage:
                return web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(tokens(text)), "total_tokens": 10},
            })
        return await self._stream(request, body, cid, text)

    def _duration(self, n: int) -> float:
        return n / self.tokens_per_second if self.tokens_per_second > 0 else 0.0

    async def _stream(self, request: web.Request, body: dict[str, Any], cid: str, text: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            doc = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(doc)}\n\n".encode()

        await resp.write(chunk({"role": "assistant", "content": ""}))
        await asyncio.sleep(self.first_token_delay)
        gap = 1 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
        start = time.monotonic()
        for i, tok in enumerate(tokens(text)):
            if self.cut_after_tokens is not None and i >= self.cut_after_tokens:
                await asyncio.sleep(0.05)  # what was sent is read before the drop
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-answer
                return resp
            if self.stall_after_tokens is not None and i >= self.stall_after_tokens:
                await asyncio.sleep(3600)
            if self.garbage and i == 1:
                await resp.write(b"data: {not json at all\n\n")
                continue
            if i and gap:  # keep the rate on the clock, not the sum of sleeps
                await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
            await resp.write(chunk({"content": tok}))
        await resp.write(chunk({}, "stop"))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
