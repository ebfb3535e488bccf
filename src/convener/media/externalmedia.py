"""What the Asterisk wiring passes to ``POST /ari/channels/externalMedia`` and takes back.

Pure helpers (no HTTP here; the ARI client does the request):

RTP leg::

    t = RtpTransport(settings)                      # settings: MediaSettings
    await t.start()                                 # binds a port of the range
    channel = await ari.post("/channels/externalMedia", params=rtp_params(t, app="convener"))
    t.set_remote(*rtp_remote(channel))              # UNICASTRTP_LOCAL_ADDRESS / _PORT

chan_websocket leg::

    channel = await ari.post("/channels/externalMedia", params=websocket_params("convener"))
    t = WebSocketTransport(media_url(ari_http_base, ws_connection_id(channel)),
                           auth=(ari_user, ari_password), settings=settings, format="slin16")
    await t.start()                                 # waits for MEDIA_START

The returned channel is then bridged with the caller (or a snoop of it) by the ARI code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from convener.media.rtp_transport import RtpTransport


def _channelvars(channel: Mapping[str, Any]) -> Mapping[str, Any]:
    cv = channel.get("channelvars")
    if not isinstance(cv, Mapping):
        raise ValueError("externalMedia reply has no channelvars")
    return cv


def rtp_params(transport: RtpTransport, app: str, **extra: str) -> dict[str, str]:
    """Query parameters of ``POST /channels/externalMedia`` for an RTP/UDP leg."""
    params = {
        "app": app,
        "external_host": transport.external_host,
        "format": transport.format.name,
        "encapsulation": "rtp",
        "transport": "udp",
    }
    params.update(extra)
    return params


def rtp_remote(channel: Mapping[str, Any]) -> tuple[str, int]:
    """Asterisk's RTP address from the externalMedia reply (where it sends from/expects RTP)."""
    cv = _channelvars(channel)
    host = cv.get("UNICASTRTP_LOCAL_ADDRESS")
    port = cv.get("UNICASTRTP_LOCAL_PORT")
    if not host or port in (None, ""):
        raise ValueError("externalMedia reply lacks UNICASTRTP_LOCAL_ADDRESS/UNICASTRTP_LOCAL_PORT")
    try:
        port_num = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"UNICASTRTP_LOCAL_PORT is not a port: {port!r}") from None
    if not 0 < port_num < 65536:
        raise ValueError(f"UNICASTRTP_LOCAL_PORT out of range: {port_num}")
    return str(host), port_num


def websocket_params(app: str, format: str = "slin16", **extra: str) -> dict[str, str]:
    """Query parameters for a chan_websocket leg that convener connects to (server mode)."""
    params = {
        "app": app,
        "external_host": "INCOMING",
        "transport": "websocket",
        "encapsulation": "none",
        "connection_type": "server",
        "format": format,
    }
    params.update(extra)
    return params


def ws_connection_id(channel: Mapping[str, Any]) -> str:
    """``MEDIA_WEBSOCKET_CONNECTION_ID`` from the externalMedia reply."""
    cid = _channelvars(channel).get("MEDIA_WEBSOCKET_CONNECTION_ID")
    if not cid or not isinstance(cid, str):
        raise ValueError("externalMedia reply lacks MEDIA_WEBSOCKET_CONNECTION_ID")
    return cid
