"""convener's own thin asyncio ARI layer: REST client, typed events, supervised event stream."""

from convener.ari.errors import (
    AriAuthError,
    AriBadRequest,
    AriConflict,
    AriError,
    AriNotFound,
    AriUnreachable,
    MalformedEvent,
)
from convener.ari.rest import AriClient, gone_ok
from convener.ari.stream import EventStream, StreamState

__all__ = [
    "AriAuthError",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriError",
    "AriNotFound",
    "AriUnreachable",
    "EventStream",
    "MalformedEvent",
    "StreamState",
    "gone_ok",
]
