"""convener.media: the call's audio path between Asterisk and the conversation.

- transports (one interface, ``transport.MediaTransport``): ``RtpTransport`` (externalMedia
  RTP/UDP) and ``WebSocketTransport`` (chan_websocket);
- ``pacer``: 20 ms outbound pacing of TTS audio with barge-in ``flush()``;
- ``turns``: VAD-driven turn detection with pre-roll; ``bargein``: the policy glue;
- ``session.CallMedia``: all of it wired for one call; ``externalmedia``: ARI parameters.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: ``convener.config`` imports ``convener.media.settings``; that must not pull in
# aiohttp/soxr/numpy.
_EXPORTS = {
    "BargeIn": "bargein",
    "BargeInReport": "bargein",
    "CallMedia": "session",
    "MediaSettings": "settings",
    "MediaTransport": "transport",
    "Pacer": "pacer",
    "PacerCore": "pacer",
    "PlaybackReport": "pacer",
    "PortAllocator": "rtp_transport",
    "RtpTransport": "rtp_transport",
    "SpeechStarted": "turns",
    "TransportStats": "transport",
    "TurnDetector": "turns",
    "TurnEnded": "turns",
    "WebSocketTransport": "ws_transport",
    "media_url": "ws_transport",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'convener.media' has no attribute {name!r}")
    return getattr(importlib.import_module(f"convener.media.{module}"), name)


__all__ = [
    "BargeIn",
    "BargeInReport",
    "CallMedia",
    "MediaSettings",
    "MediaTransport",
    "Pacer",
    "PacerCore",
    "PlaybackReport",
    "PortAllocator",
    "RtpTransport",
    "SpeechStarted",
    "TransportStats",
    "TurnDetector",
    "TurnEnded",
    "WebSocketTransport",
    "media_url",
]
