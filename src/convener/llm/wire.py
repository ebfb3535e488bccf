"""The OpenAI chat-completions wire protocol, pure (no I/O).

Request: ``POST {base_url}/chat/completions`` with ``{"model", "messages", "stream", ...}``.
Answer without streaming: ``{"choices": [{"message": {"content": "..."}}]}``. With
``"stream": true`` the answer is server-sent events, one ``data: {...}`` line per chunk whose
``choices[0].delta.content`` carries the next piece of text, and ``data: [DONE]`` at the end.
Errors: a non-2xx status with ``{"error": {"message", "type", "code"}}`` (some servers send a
plain string or text); 429 with ``Retry-After`` (seconds, or an HTTP date); an ``error`` object
may also arrive as a chunk in the middle of a stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

MAX_ERROR_CHARS = 300


class WireError(ValueError):
    """The server's answer does not follow the protocol (garbage)."""


@dataclass(frozen=True)
class Chunk:
    """One parsed SSE event: text (maybe ""), the end marker, or an error reported in-stream."""

    text: str = ""
    done: bool = False
    finish_reason: str | None = None
    error: str | None = None


def chat_body(model: str, messages: list[dict[str, str]], *, stream: bool, max_tokens: int,
              temperature: float, json_mode: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model, "messages": messages, "stream": stream,
        "max_tokens": max_tokens, "temperature": temperature,
    }
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    return body


def completion_text(doc: Any) -> str:
    """The assistant's text of a non-streamed answer."""
    try:
        content = doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise WireError("answer has no choices[0].message.content") from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise WireError("choices[0].message.content is not a string")
    return content


def parse_sse_line(line: str) -> Chunk | None:
    """One line of the event stream; None for lines that carry nothing (blank, comments, ids)."""
    line = line.rstrip("\r\n")
    if not line or line.startswith(":"):
        return None
    field, _, value = line.partition(":")
    if field != "data":
        return None  # event:, id:, retry: carry nothing for chat completions
    value = value[1:] if value.startswith(" ") else value
    if value.strip() == "[DONE]":
        return Chunk(done=True)
    try:
        doc = json.loads(value)
    except ValueError:
        raise WireError(f"stream chunk is not JSON: {value[:60]!r}") from None
    if not isinstance(doc, dict):
        raise WireError("stream chunk is not a JSON object")
    if "error" in doc:
        return Chunk(error=error_message(doc) or "error in stream")
    choices = doc.get("choices")
    if not isinstance(choices, list):
        raise WireError("stream chunk has no choices")
    if not choices:
        return None  # e.g. a usage chunk
    choice = choices[0]
    if not isinstance(choice, dict):
        raise WireError("stream chunk choice is not an object")
    delta = choice.get("delta") or {}
    if not isinstance(delta, dict):
        raise WireError("stream chunk delta is not an object")
    text = delta.get("content") or ""
    if not isinstance(text, str):
        raise WireError("delta.content is not a string")
    reason = choice.get("finish_reason")
    return Chunk(text=text, finish_reason=reason if isinstance(reason, str) else None)


def error_message(doc: Any) -> str:
    """The message of an error body (``{"error": {"message": ...}}``, ``{"error": "..."}``)."""
    if isinstance(doc, dict):
        err = doc.get("error", doc)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("type") or err.get("code") or ""
            return str(msg)[:MAX_ERROR_CHARS]
        if isinstance(err, str):
            return err[:MAX_ERROR_CHARS]
    return ""


def error_text(body: bytes) -> str:
    """What a failed request said, for the log: the error message, or the start of the body."""
    try:
        msg = error_message(json.loads(body))
    except ValueError:
        msg = ""
    return msg or body[:MAX_ERROR_CHARS].decode("utf-8", "replace").strip()


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None:
        import time

        now = time.time()
    return max(0.0, when.timestamp() - now)
