"""Logging: human lines or JSON lines, call and conversation ids, and no credentials, ever.

``setup_logging(settings, secrets=[...])`` installs one handler on the root logger. Every record
passing through it gets ``call_id`` and ``conversation_id`` from context variables (set by
``call_context(...)`` in the call's task, or by a ``LoggerAdapter`` extra), and is redacted:
the configured secrets (ARI password, Deepgram key, ops token, ...), ``Authorization:`` headers,
bearer tokens, ``api_key=``/``password=``/``token=`` parameters and ``user:password@`` in URLs are
replaced by ``***`` in the message, its arguments, the exception and the stack, before formatting.
The formatter redacts its output once more, so fields added by other code are covered too.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import IO, Any
from urllib.parse import quote, quote_plus

from convener.ops.settings import OpsSettings

MASK = "***"

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("convener_call_id", default="")
conversation_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("convener_conversation_id", default="")

_UNSET: Any = object()


@contextlib.contextmanager
def call_context(call_id: str | None = _UNSET, conversation_id: str | None = _UNSET) -> Iterator[None]:
    """Within the block, log records carry these ids (arguments left out keep their value)."""
    tokens = []
    if call_id is not _UNSET:
        tokens.append((call_id_var, call_id_var.set(call_id or "")))
    if conversation_id is not _UNSET:
        tokens.append((conversation_id_var, conversation_id_var.set(conversation_id or "")))
    try:
        yield
    finally:
        for var, tok in reversed(tokens):
            var.reset(tok)


def set_call_context(call_id: str | None = _UNSET, conversation_id: str | None = _UNSET) -> None:
    """Set the ids for the rest of the current task (a task has its own copy of the context)."""
    if call_id is not _UNSET:
        call_id_var.set(call_id or "")
    if conversation_id is not _UNSET:
        conversation_id_var.set(conversation_id or "")


# --- redaction --------------------------------------------------------------------------------

_SECRET_WORDS = r"(?:api[_-]?key|apikey|access[_-]?token|token|password|passwd|secret|client[_-]?secret)"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer xyz / Authorization: Basic xyz / 'Authorization': 'Token xyz'
    (re.compile(r"""(?i)(\bauthorization["']?\s*[:=]\s*["']?)[^"'\r\n,}]+"""), rf"\1{MASK}"),
    # "Bearer xyz" wherever it appears (Basic and Token schemes: only after "Authorization")
    (re.compile(r"(?i)\b(bearer)(\s+)(?!\*\*\*)[A-Za-z0-9\-._~+/]{6,}=*"), rf"\1\2{MASK}"),
    # password='xyz' / token="xyz" (keyword reprs such as aiohttp's BasicAuth)
    (re.compile(rf"""(?i)(\b{_SECRET_WORDS}=)(["'])[^"']*\2"""), rf"\1\2{MASK}\2"),
    # ?api_key=user:pass&... , password=..., token=... in URLs, forms and key=value logs
    (re.compile(rf"(?i)(\b{_SECRET_WORDS}=)(?!\*\*\*)[^&\s'\"<>]+"), rf"\1{MASK}"),
    # "api_key": "xyz" / 'password': 'xyz' (dict and JSON reprs)
    (re.compile(rf"""(?i)(["']{_SECRET_WORDS}["']\s*:\s*["'])[^"']+"""), rf"\1{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+@"), rf"\1{MASK}@"),
]


class Redactor:
    """Replaces known secrets and credential-shaped text by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for s in secrets:
            if s and len(s) >= 4:  # shorter values would mask ordinary words
                self._secrets.update({s, quote(s, safe=""), quote_plus(s)})
        if self._secrets:
            alts = sorted(self._secrets, key=len, reverse=True)
            self._literal = re.compile("|".join(re.escape(a) for a in alts))

    def __call__(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text


class RedactingFilter(logging.Filter):
    """Handler filter: redacts the message, its arguments, the exception and the stack in place."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = r(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = r(record.exc_text)
        record.exc_info = None  # the (unredacted) exception object must not be formatted again
        if record.stack_info:
            record.stack_info = r(record.stack_info)
        return True


class ContextFilter(logging.Filter):
    """Adds ``call_id`` and ``conversation_id`` (from the context unless the record has them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "call_id", ""):
            record.call_id = call_id_var.get()
        if not getattr(record, "conversation_id", ""):
            record.conversation_id = conversation_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-26 12:00:00,123 INFO convener.app [call=… conv=…]: message``"""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ctx)s: %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if getattr(record, "call_id", ""):
            parts.append(f"call={record.call_id}")
        if getattr(record, "conversation_id", ""):
            parts.append(f"conv={record.conversation_id}")
        record.ctx = f" [{' '.join(parts)}]" if parts else ""
        return self.redactor(super().format(record))


_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "ctx", "call_id", "conversation_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, call_id, conversation_id, exc, extras."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("call_id", "conversation_id"):
            if getattr(record, key, ""):
                out[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                out[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        return self.redactor(json.dumps(out, ensure_ascii=False, default=str))


_installed: list[logging.Handler] = []


def secrets_of(config: Any) -> list[str]:
    """The credentials in a convener Config (duck-typed) that must never be logged."""
    found: list[str] = []
    ari = getattr(config, "ari", None)
    if ari is not None:
        found.append(getattr(ari, "password", ""))
    speech = getattr(config, "speech", None)
    if speech is not None:
        found.append(getattr(speech, "deepgram_api_key", ""))
        dg = getattr(speech, "deepgram", None)
        if dg is not None:
            found.append(dg.resolved_api_key() if hasattr(dg, "resolved_api_key") else dg.api_key)
    llm = getattr(config, "llm", None)
    if llm is not None and hasattr(llm, "api_key"):
        found.append(llm.api_key())  # from the environment variable named by llm.api_key_env
    ops = getattr(config, "ops", None)
    if ops is not None:
        found.append(ops.resolved_token())
        url = getattr(ops, "transcripts_url", "")
        m = re.match(r"^[a-z][a-z0-9+.\-]*://[^/\s:@]*:([^/\s@]+)@", url or "")
        if m:
            found.append(m.group(1))
    return [s for s in found if s]


def setup_logging(settings: OpsSettings | None = None, secrets: Iterable[str] = (), verbosity: int = 0,
                  stream: IO[str] | None = None) -> Redactor:
    """Install one redacting handler on the root logger (replacing basicConfig's); returns its Redactor.

    ``verbosity`` (the CLI's ``-v`` count) lowers the level below ``settings.log_level``.
    Call it again to reconfigure (e.g. once the config is loaded and the secrets are known).
    """
    settings = settings or OpsSettings()
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(JsonFormatter(redactor) if settings.log_format == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    for h in list(root.handlers):
        # Ours from an earlier call, and logging.basicConfig's plain console handler, are replaced;
        # other handlers (files, test capture) are left alone.
        if h in _installed or type(h) is logging.StreamHandler:
            root.removeHandler(h)
            if h in _installed:
                _installed.remove(h)
                h.close()
    root.addHandler(handler)
    _installed.append(handler)
    level = logging.getLevelName(settings.log_level.upper())
    if verbosity >= 2:
        level = logging.DEBUG
    elif verbosity == 1:
        level = min(level, logging.INFO)
    root.setLevel(level)
    logging.captureWarnings(True)
    return redactor
