"""ARI errors: every failure carries the HTTP status (0 when Asterisk was not reached)."""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed."""

    def __init__(self, status: int, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        where = f" {method} {path}" if method else ""
        super().__init__(f"ARI{where} -> {status or 'unreachable'}: {message}")


class AriUnreachable(AriError):
    """Asterisk did not answer (connection refused, timeout, DNS)."""


class AriAuthError(AriError):
    """401/403: the ARI user or password is wrong."""


class AriNotFound(AriError):
    """404: the channel, bridge or other resource does not exist (any more)."""


class AriConflict(AriError):
    """409: the resource is in the wrong state (e.g. channel not in a Stasis application)."""


class AriBadRequest(AriError):
    """400/422: a parameter is missing or invalid."""


class MalformedEvent(ValueError):
    """An event from the ARI WebSocket is not valid JSON or lacks what its type requires."""


def error_for_status(status: int, message: str, method: str, path: str) -> AriError:
    cls: type[AriError]
    if status in (401, 403):
        cls = AriAuthError
    elif status == 404:
        cls = AriNotFound
    elif status == 409:
        cls = AriConflict
    elif status in (400, 422):
        cls = AriBadRequest
    else:
        cls = AriError
    return cls(status, message, method, path)
