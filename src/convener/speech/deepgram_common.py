"""What the Deepgram clients share: URLs, the auth header, error mapping, key redaction.

The API key travels only in the ``Authorization: Token <key>`` header. It is never part of a
URL, an exception message or a log record; :class:`RedactKeyFilter` is installed on the
``convener.speech`` loggers as a second line of defence.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from convener.speech.asr import AsrAuthError, AsrError
from convener.speech.settings import DeepgramSettings

log = logging.getLogger("convener.speech.deepgram")


class RedactKeyFilter(logging.Filter):
    """Replaces a secret in log messages and arguments with ``<redacted>``."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and len(self.secret) >= 4:
            msg = record.getMessage()
            if self.secret in msg:
                record.msg = msg.replace(self.secret, "<redacted>")
                record.args = None
        return True


_installed: set[str] = set()


def install_redaction(secret: str) -> None:
    """Redact ``secret`` from every record of the ``convener.speech`` loggers (idempotent)."""
    if not secret or secret in _installed:
        return
    _installed.add(secret)
    logging.getLogger("convener.speech").addFilter(RedactKeyFilter(secret))
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("convener.speech."):
            logging.getLogger(name).addFilter(RedactKeyFilter(secret))


def api_key(settings: DeepgramSettings) -> str:
    key = settings.resolved_api_key()
    if not key:
        raise AsrAuthError("no Deepgram API key (speech.deepgram.api_key or DEEPGRAM_API_KEY)")
    install_redaction(key)
    return key


def auth_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}"}


def _base(settings: DeepgramSettings, websocket: bool) -> tuple[str, str]:
    parts = urlsplit(settings.base_url.rstrip("/"))
    scheme = parts.scheme
    if websocket:
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
    else:
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return scheme, parts.netloc + parts.path


def url(settings: DeepgramSettings, path: str, params: dict[str, object], websocket: bool) -> str:
    """``params``: None is left out; a list repeats the key (``keyterm=a&keyterm=b``, as Deepgram
    documents); spaces are encoded as ``%20``."""
    scheme, rest = _base(settings, websocket)
    pairs: list[tuple[str, str]] = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, list | tuple):
            pairs.extend((k, _q(x)) for x in v)
        else:
            pairs.append((k, _q(v)))
    query = urlencode(pairs, quote_via=quote)
    return urlunsplit((scheme, rest, path, query, ""))


def _q(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def handshake_error(status: int, detail: str = "") -> AsrError:
    """Map a refused WebSocket upgrade / HTTP error to our errors (no key in the message)."""
    text = f"Deepgram refused the request: HTTP {status}" + (f" ({detail})" if detail else "")
    if status in (401, 403):
        return AsrAuthError(text)
    return AsrError(text)
