"""ARI REST: one aiohttp session, typed wrappers for what convener uses, errors as exceptions.

Every method raises a subclass of ``AriError`` carrying the HTTP status and Asterisk's message.
``gone_ok`` wraps a cleanup call so that 404 (already gone) is not an error.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp

from convener.ari.errors import AriError, AriNotFound, AriUnreachable, error_for_status
from convener.ari.models import Application, Bridge, Channel, LiveRecording, Playback

log = logging.getLogger(__name__)
T = TypeVar("T")


def ssl_context(verify: bool, ca_file: str = "") -> ssl.SSLContext | bool:
    """TLS settings for https/wss: certificates verified by default, optional private CA."""
    if not verify:
        return False
    ctx = ssl.create_default_context(cafile=ca_file or None)
    return ctx


def basic_auth_header(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {token}"


def _params(**kw: Any) -> dict[str, str]:
    out = {}
    for k, v in kw.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out[k] = str(v)
    return out


class AriClient:
    """REST half of ARI. Create with the base URL (``http://host:8088/ari``) and credentials."""

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 5.0,
                 verify_tls: bool = True, ca_file: str = "") -> None:
        self.base = url.rstrip("/")
        self.headers = {"Authorization": basic_auth_header(user, password)}
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.ssl = ssl_context(verify_tls, ca_file) if self.base.startswith("https") else None
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, s: Any) -> AriClient:
        return cls(s.url, s.user, s.password, timeout=s.request_timeout,
                   verify_tls=s.verify_tls, ca_file=s.ca_file)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None) -> Any:
        url = f"{self.base}{path}"
        kwargs: dict[str, Any] = {"params": params or None}
        if body is not None:
            kwargs["json"] = body
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        try:
            async with self.session.request(method, url, **kwargs) as r:
                text = await r.text()
                if r.status >= 400:
                    raise error_for_status(r.status, _message(text, r.reason), method, path)
                if not text:
                    return None
                try:
                    return json.loads(text)
                except ValueError:
                    return text
        except AriError:
            raise
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
            raise AriUnreachable(0, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__,
                                 method, path) from None

    # -- asterisk / applications ----------------------------------------------------------------

    async def asterisk_info(self) -> dict[str, Any]:
        return await self.request("GET", "/asterisk/info")

    async def application(self, name: str) -> Application:
        return Application.from_json(await self.request("GET", f"/applications/{name}"))

    async def applications(self) -> list[Application]:
        return [Application.from_json(a) for a in await self.request("GET", "/applications")]

    async def subscribe(self, app: str, event_source: str) -> None:
        await self.request("POST", f"/applications/{app}/subscription",
                           params=_params(eventSource=event_source))

    # -- channels -------------------------------------------------------------------------------

    async def channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params=_params(reason=reason))

    async def continue_in_dialplan(self, channel_id: str, context: str | None = None,
                                   extension: str | None = None, priority: int | None = None,
                                   label: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue", params=_params(
            context=context, extension=extension, priority=priority, label=label))

    async def get_variable(self, channel_id: str, variable: str) -> str:
        r = await self.request("GET", f"/channels/{channel_id}/variable",
                               params=_params(variable=variable))
        return str((r or {}).get("value", ""))

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable",
                           params=_params(variable=variable, value=value))

    async def send_dtmf(self, channel_id: str, dtmf: str, duration: int = 100) -> None:
        await self.request("POST", f"/channels/{channel_id}/dtmf",
                           params=_params(dtmf=dtmf, duration=duration))

    async def originate(self, endpoint: str, *, app: str, app_args: str = "",
                        channel_id: str | None = None, other_channel_id: str | None = None,
                        caller_id: str | None = None, timeout: int = 30,
                        variables: dict[str, str] | None = None,
                        formats: str | None = None) -> Channel:
        body = {"variables": variables} if variables else None
        r = await self.request("POST", "/channels", params=_params(
            endpoint=endpoint, app=app, appArgs=app_args or None, channelId=channel_id,
            otherChannelId=other_channel_id, callerId=caller_id, timeout=timeout,
            formats=formats), body=body)
        return Channel.from_json(r)

    async def create_channel(self, endpoint: str, *, app: str, channel_id: str,
                             formats: str | None = None, app_args: str = "") -> Channel:
        """A channel in our application that is not dialled yet (``dial`` rings it)."""
        r = await self.request("POST", "/channels/create", params=_params(
            endpoint=endpoint, app=app, channelId=channel_id, formats=formats,
            appArgs=app_args or None))
        return Channel.from_json(r)

    async def dial(self, channel_id: str, *, timeout: int = 30, caller: str | None = None) -> None:
        """Ring a channel made by ``create_channel``; ``Dial`` events tell how it goes."""
        await self.request("POST", f"/channels/{channel_id}/dial", params=_params(
            timeout=timeout, caller=caller))

    async def snoop(self, channel_id: str, *, app: str, snoop_id: str, spy: str = "in",
                    whisper: str = "none", app_args: str = "") -> Channel:
        r = await self.request("POST", f"/channels/{channel_id}/snoop", params=_params(
            app=app, spy=spy, whisper=whisper, snoopId=snoop_id, appArgs=app_args or None))
        return Channel.from_json(r)

    async def external_media(self, *, app: str, channel_id: str, external_host: str | None = None,
                             format: str = "ulaw", encapsulation: str = "rtp",
                             transport: str = "udp", connection_type: str | None = None,
                             direction: str = "both", data: str | None = None,
                             variables: dict[str, str] | None = None) -> Channel:
        body = {"variables": variables} if variables else None
        r = await self.request("POST", "/channels/externalMedia", params=_params(
            app=app, channelId=channel_id, external_host=external_host, format=format,
            encapsulation=encapsulation, transport=transport, connection_type=connection_type,
            direction=direction, data=data), body=body)
        return Channel.from_json(r)

    async def play(self, channel_id: str, media: str, *, playback_id: str | None = None,
                   lang: str | None = None) -> Playback:
        path = f"/channels/{channel_id}/play" + (f"/{playback_id}" if playback_id else "")
        r = await self.request("POST", path, params=_params(media=media, lang=lang))
        return Playback.from_json(r)

    async def record(self, channel_id: str, name: str, *, format: str = "wav",
                     max_duration: int = 0, max_silence: int = 0, if_exists: str = "overwrite",
                     beep: bool = False, terminate_on: str = "none") -> LiveRecording:
        r = await self.request("POST", f"/channels/{channel_id}/record", params=_params(
            name=name, format=format, maxDurationSeconds=max_duration,
            maxSilenceSeconds=max_silence, ifExists=if_exists, beep=beep,
            terminateOn=terminate_on))
        return LiveRecording.from_json(r)

    # -- bridges --------------------------------------------------------------------------------

    async def bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges")]

    async def bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.request("GET", f"/bridges/{bridge_id}"))

    async def create_bridge(self, bridge_id: str, *, type: str = "mixing", name: str = "") -> Bridge:
        r = await self.request("POST", f"/bridges/{bridge_id}",
                               params=_params(type=type, name=name or None))
        return Bridge.from_json(r)

    async def add_channel(self, bridge_id: str, channel_id: str, *, role: str | None = None,
                          absorb_dtmf: bool | None = None, mute: bool | None = None) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params=_params(
            channel=channel_id, role=role, absorbDTMF=absorb_dtmf, mute=mute))

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel",
                           params=_params(channel=channel_id))

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def record_bridge(self, bridge_id: str, name: str, *, format: str = "wav",
                            if_exists: str = "overwrite") -> LiveRecording:
        """Record the bridge's mix until the bridge is destroyed (or the recording stopped)."""
        r = await self.request("POST", f"/bridges/{bridge_id}/record", params=_params(
            name=name, format=format, ifExists=if_exists, beep=False, terminateOn="none"))
        return LiveRecording.from_json(r)

    async def play_bridge(self, bridge_id: str, media: str, *,
                          playback_id: str | None = None) -> Playback:
        path = f"/bridges/{bridge_id}/play" + (f"/{playback_id}" if playback_id else "")
        return Playback.from_json(await self.request("POST", path, params=_params(media=media)))

    # -- playbacks / recordings -----------------------------------------------------------------

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def stored_recordings(self) -> list[str]:
        """Names of the recordings Asterisk has stored."""
        return [str(r.get("name", "")) for r in await self.request("GET", "/recordings/stored") or []]

    async def stored_recording_file(self, name: str) -> tuple[bytes, str]:
        """The stored recording's file and its content type (raises AriNotFound when absent)."""
        path = f"/recordings/stored/{name}/file"
        kwargs: dict[str, Any] = {"ssl": self.ssl} if self.ssl is not None else {}
        try:
            async with self.session.get(f"{self.base}{path}", **kwargs) as r:
                body = await r.read()
                if r.status >= 400:
                    raise error_for_status(r.status, _message(body.decode(errors="replace"), r.reason), "GET", path)
                return body, r.headers.get("Content-Type", "application/octet-stream")
        except AriError:
            raise
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
            raise AriUnreachable(0, f"{type(e).__name__}: {e}", "GET", path) from None

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")


async def gone_ok(aw: Awaitable[T]) -> T | None:
    """Await a cleanup call; a resource that is already gone (404) is not an error."""
    try:
        return await aw
    except AriNotFound:
        return None


def _message(text: str, reason: str | None) -> str:
    try:
        d = json.loads(text)
        if isinstance(d, dict) and d.get("message"):
            return str(d["message"])
    except ValueError:
        pass
    return text.strip()[:300] or (reason or "")
