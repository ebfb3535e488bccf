"""External media channels: an Asterisk channel and our transport, opened as one.

RTP: bind our UDP port first, ask Asterisk for ``externalMedia`` towards it, then tell the
transport Asterisk's own RTP address from the reply's ``UNICASTRTP_LOCAL_ADDRESS`` /
``UNICASTRTP_LOCAL_PORT`` (packets from anywhere else are dropped).

chan_websocket: ask for ``externalMedia`` with ``transport=websocket``, ``connection_type=server``
and connect to ``/media/<MEDIA_WEBSOCKET_CONNECTION_ID>`` with the ARI credentials.

Whatever fails half-way, nothing is left behind: the caller gets an exception and both the
transport and the channel are gone.
"""

from __future__ import annotations

import asyncio
import contextlib

from convener.ari.errors import AriError
from convener.ari.rest import AriClient, gone_ok
from convener.config import AriSettings
from convener.media.audiosocket_transport import AudioSocketTransport
from convener.media.rtp_transport import RtpTransport
from convener.media.settings import MediaSettings
from convener.media.transport import MediaTransport
from convener.media.ws_transport import WebSocketTransport, media_url


class MediaLegError(RuntimeError):
    pass


STASIS_TIMEOUT = 5.0


async def open_external_media(ari: AriClient, ari_settings: AriSettings, media: MediaSettings,
                              channel_id: str,
                              in_stasis: asyncio.Future[None] | None = None) -> MediaTransport:
    """Create external media channel ``channel_id`` in our app and return its started transport.

    ``in_stasis`` (from ``ConvenerApp.expect_stasis``) is awaited before returning, so the
    channel can be bridged at once.
    """
    app = ari_settings.app
    transport = await _open(ari, ari_settings, media, channel_id, app)
    if in_stasis is not None:
        try:
            await asyncio.wait_for(in_stasis, STASIS_TIMEOUT)
        except BaseException:
            await transport.close()
            with contextlib.suppress(AriError):
                await gone_ok(ari.hangup(channel_id))
            raise
    return transport


async def _open(ari: AriClient, ari_settings: AriSettings, media: MediaSettings, channel_id: str,
                app: str) -> MediaTransport:
    if media.transport == "rtp":
        rtp = RtpTransport(media)
        await rtp.start()
        try:
            ch = await ari.external_media(app=app, channel_id=channel_id,
                                          external_host=rtp.external_host, format=media.format)
            host = ch.channelvars.get("UNICASTRTP_LOCAL_ADDRESS")
            port = ch.channelvars.get("UNICASTRTP_LOCAL_PORT")
            if not host or not port:
                raise MediaLegError(f"externalMedia {channel_id}: Asterisk did not announce its RTP "
                                    "address (UNICASTRTP_LOCAL_ADDRESS/PORT)")
            rtp.set_remote(host, port)
            return rtp
        except BaseException:
            await rtp.close()
            with contextlib.suppress(AriError):
                await gone_ok(ari.hangup(channel_id))
            raise
    if media.transport == "audiosocket":
        return await _open_audiosocket(ari, media, channel_id, app)
    ch = await ari.external_media(app=app, channel_id=channel_id, transport="websocket",
                                  encapsulation="none", connection_type="server",
                                  external_host="INCOMING", format=media.format)
    conn = ch.channelvars.get("MEDIA_WEBSOCKET_CONNECTION_ID")
    try:
        if not conn:
            raise MediaLegError(f"externalMedia {channel_id}: no MEDIA_WEBSOCKET_CONNECTION_ID "
                                "(chan_websocket needs Asterisk 22.6 or later)")
        ws = WebSocketTransport(media_url(ari_settings.url, conn), settings=media,
                                auth=(ari_settings.user, ari_settings.password))
        try:
            await ws.start()
        except BaseException:
            await ws.close()
            raise
        return ws
    except BaseException:
        with contextlib.suppress(AriError):
            await gone_ok(ari.hangup(channel_id))
        raise


async def _open_audiosocket(ari: AriClient, media: MediaSettings, channel_id: str, app: str) -> MediaTransport:
    """AudioSocket: listen, ask for ``externalMedia`` towards us, wait for Asterisk to connect."""
    sock = AudioSocketTransport(media)
    await sock.start()
    try:
        await ari.external_media(app=app, channel_id=channel_id, external_host=sock.external_host,
                                 format=sock.asterisk_format, encapsulation="audiosocket",
                                 transport="tcp", data=sock.uuid)
        try:
            await sock.wait_connected(STASIS_TIMEOUT)
        except TimeoutError:
            raise MediaLegError(f"externalMedia {channel_id}: Asterisk did not connect to AudioSocket "
                                f"{sock.external_host} (is chan_audiosocket loaded?)") from None
        return sock
    except BaseException:
        await sock.close()
        with contextlib.suppress(AriError):
            await gone_ok(ari.hangup(channel_id))
        raise
