"""The chan_websocket client against a local aiohttp server speaking the documented protocol."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from aiohttp import WSMsgType, web
from hypothesis import given, settings
from hypothesis import strategies as st

from convener.audio import pcm16_to_ulaw
from convener.media.settings import MediaSettings
from convener.media.transport import MediaTransport
from convener.media.ws_transport import (
    WebSocketTransport,
    format_command,
    media_url,
    parse_control,
)

AUTH = ("convener", "secret")


class FakeChanWebsocket:
    """Mimics Asterisk's /media/<connection id> endpoint (plain-text or JSON control)."""

    def __init__(self, *, json_control: bool = False, fmt: str = "slin16",
                 send_media_start: bool = True) -> None:
        self.json_control = json_control
        self.fmt = fmt
        self.send_media_start = send_media_start
        self.inbound: list[bytes] = []  # binary messages to send after MEDIA_START
        self.binary: list[bytes] = []
        self.text: list[str] = []
        self.protocols: list[str | None] = []
        self.ws: web.WebSocketResponse | None = None
        self.got_binary = asyncio.Event()
        self.got_text = asyncio.Event()

    async def handler(self, request: web.Request) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
        if request.headers.get("Authorization") != expected:
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse(protocols=("media",))
        await ws.prepare(request)
        self.ws = ws
        self.protocols.append(ws.ws_protocol)
        cid = request.match_info["cid"]
        size = 640 if self.fmt == "slin16" else 160
        if self.send_media_start:
            if self.json_control:
                await ws.send_str(json.dumps({
                    "event": "MEDIA_START", "connection_id": cid,
                    "channel": f"WebSocket/{cid}/0x1", "channel_id": "1761245643.1",
                    "format": self.fmt, "optimal_frame_size": size, "ptime": 20,
                    "channel_variables": {"MEDIA_WEBSOCKET_CONNECTION_ID": cid}}))
            else:
                await ws.send_str(
                    f"MEDIA_START connection_id:{cid} channel:WebSocket/{cid}/0x1 "
                    f"channel_id:1761245643.1 format:{self.fmt} optimal_frame_size:{size} ptime:20"
                )
        for chunk in self.inbound:
            await ws.send_bytes(chunk)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                self.binary.append(msg.data)
                self.got_binary.set()
            elif msg.type == WSMsgType.TEXT:
                self.text.append(msg.data)
                self.got_text.set()
        return ws


@pytest.fixture
async def server():
    servers = []

    async def start(fake: FakeChanWebsocket) -> str:
        app = web.Application()
        app.router.add_get("/media/{cid}", fake.handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        servers.append(runner)
        port = runner.addresses[0][1]
        return media_url(f"http://127.0.0.1:{port}/ari", "abc-123")

    yield start
    for runner in servers:
        await runner.cleanup()


async def collect(t: WebSocketTransport, n: int, timeout: float = 1.0) -> list:
    out = []
    it = t.frames().__aiter__()
    try:
        while len(out) < n:
            out.append(await asyncio.wait_for(it.__anext__(), timeout))
    except (TimeoutError, StopAsyncIteration):
        pass
    return out


def test_parse_plain_media_start() -> None:
    msg = parse_control("MEDIA_START connection_id:e226 channel:WebSocket/e226/0x5 "
                        "channel_id:1761.1 format:slin16 optimal_frame_size:640 ptime:20\n")
    assert msg.event == "MEDIA_START" and not msg.json
    assert msg.fields == {"connection_id": "e226", "channel": "WebSocket/e226/0x5",
                          "channel_id": "1761.1", "format": "slin16",
                          "optimal_frame_size": 640, "ptime": 20}


def test_parse_other_notifications() -> None:
    assert parse_control("MEDIA_XOFF").event == "MEDIA_XOFF"
    assert parse_control("MEDIA_BUFFERING_COMPLETED r42").fields == {"correlation_id": "r42"}
    assert parse_control("MEDIA_MARK_PROCESSED m1").fields == {"correlation_id": "m1"}
    assert parse_control("DTMF_END digit:5 channel_id:1.2").fields["digit"] == "5"
    st_ = parse_control("STATUS channel_id:1.2 queue_length:43 xon_level:800 xoff_level:900 "
                        "queue_full:false bulk_media:true media_paused:false")
    assert st_.fields["queue_length"] == 43 and st_.fields["bulk_media"] == "true"
    err = parse_control("ERROR channel_id:1.2 error_text:FLUSH_MEDIA not supported in passthrough")
    assert err.fields["error_text"] == "FLUSH_MEDIA not supported in passthrough"
    js = parse_control('{"event":"MEDIA_XON","channel_id":"1.2"}')
    assert js.event == "MEDIA_XON" and js.json and js.fields == {"channel_id": "1.2"}


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_parse_control_never_raises(text: str) -> None:
    msg = parse_control(text)
    assert isinstance(msg.event, str)


def test_commands_and_url() -> None:
    assert format_command("FLUSH_MEDIA", False) == "FLUSH_MEDIA"
    assert format_command("STOP_MEDIA_BUFFERING", False, "r1") == "STOP_MEDIA_BUFFERING r1"
    assert json.loads(format_command("STOP_MEDIA_BUFFERING", True, "r1")) == {
        "command": "STOP_MEDIA_BUFFERING", "correlation_id": "r1"}
    assert media_url("http://h:8088/ari/", "x") == "ws://h:8088/media/x"
    assert media_url("https://h:8089", "x") == "wss://h:8089/media/x"


async def test_slin16_in_and_out(server) -> None:
    fake = FakeChanWebsocket()
    pcm = np.arange(960, dtype="<i2").tobytes()  # 60 ms of slin16
    fake.inbound = [pcm[:1280], pcm[1280:]]  # a 40 ms message and a 20 ms one
    url = await server(fake)
    t = WebSocketTransport(url, auth=AUTH, settings=MediaSettings(format="slin16"))
    assert isinstance(t, MediaTransport)
    async with t:
        assert fake.protocols == ["media"]
        assert t.media_start is not None and t.optimal_frame_size == 640
        assert t.media_start.fields["channel_id"] == "1761245643.1"
        frames = await collect(t, 3)
        assert b"".join(f.pcm for f in frames) == pcm  # little-endian as-is
        assert all(f.sample_rate == 16000 and f.samples == 320 for f in frames)
        stamps = [f.timestamp for f in frames]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        t.send(pcm[:640])
        await asyncio.wait_for(fake.got_binary.wait(), 1.0)
        assert fake.binary == [pcm[:640]]
        assert t.stats.frames_out == 1


async def test_ulaw_leg(server) -> None:
    fake = FakeChanWebsocket(fmt="ulaw")
    fake.inbound = [bytes(range(160))]
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="ulaw") as t:
        frames = await collect(t, 1)
        assert frames[0].sample_rate == 8000 and frames[0].samples == 160
        pcm = np.full(160, 1000, dtype="<i2").tobytes()
        t.send(pcm)
        await asyncio.wait_for(fake.got_binary.wait(), 1.0)
        assert fake.binary == [pcm16_to_ulaw(pcm)]


async def test_xoff_holds_frames_until_xon(server) -> None:
    fake = FakeChanWebsocket()
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="slin16") as t:
        await fake.ws.send_str("MEDIA_XOFF")
        for _ in range(50):
            if t.xoff:
                break
            await asyncio.sleep(0.01)
        assert t.xoff
        for i in range(3):
            t.send(bytes([i]) * 640)
        await asyncio.sleep(0.1)
        assert fake.binary == []
        await fake.ws.send_str("MEDIA_XON")
        for _ in range(100):
            if len(fake.binary) == 3:
                break
            await asyncio.sleep(0.01)
        assert fake.binary == [bytes([i]) * 640 for i in range(3)]


async def test_clear_output_sends_flush_media_and_drops_pending(server) -> None:
    fake = FakeChanWebsocket()
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="slin16") as t:
        t.xoff = True  # hold frames locally
        t.send(bytes(640))
        t.send(bytes(640))
        t.clear_output()
        await asyncio.wait_for(fake.got_text.wait(), 1.0)
        assert fake.text == ["FLUSH_MEDIA"]
        t.xoff = False
        t.send(b"\x01" * 640)
        await asyncio.wait_for(fake.got_binary.wait(), 1.0)
        assert fake.binary == [b"\x01" * 640]
        assert t.stats.extra["flushed_frames"] == 2


async def test_json_control_format_is_followed(server) -> None:
    fake = FakeChanWebsocket(json_control=True)
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="slin16") as t:
        assert t.json_control and t.optimal_frame_size == 640
        t.send_command("MARK_MEDIA", "m1")
        await asyncio.wait_for(fake.got_text.wait(), 1.0)
        assert json.loads(fake.text[0]) == {"command": "MARK_MEDIA", "correlation_id": "m1"}


async def test_bad_auth_fails_cleanly(server) -> None:
    fake = FakeChanWebsocket()
    url = await server(fake)
    t = WebSocketTransport(url, auth=("convener", "wrong"))
    with pytest.raises(Exception, match="401"):
        await t.start()
    frames = await collect(t, 1, timeout=0.2)
    assert frames == []


async def test_no_media_start_times_out(server) -> None:
    fake = FakeChanWebsocket(send_media_start=False)
    url = await server(fake)
    t = WebSocketTransport(url, auth=AUTH, settings=MediaSettings(ws_connect_timeout_s=0.2))
    with pytest.raises(TimeoutError):
        await t.start()
    t.send(bytes(320))
    assert t.stats.dropped_out == 1


async def test_remote_close_ends_frames(server) -> None:
    fake = FakeChanWebsocket()
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="slin16") as t:
        await fake.ws.close()
        frames = [f async for f in t.frames()]
        assert frames == []
        t.send(bytes(640))
        assert t.stats.dropped_out >= 1


async def test_no_leaked_fds_over_connect_close_cycles(server) -> None:
    from media_helpers import open_fds

    fake = FakeChanWebsocket()
    url = await server(fake)
    async with WebSocketTransport(url, auth=AUTH, format="slin16"):
        pass  # warm aiohttp's lazily opened resources
    await asyncio.sleep(0.05)
    before = open_fds()
    for _ in range(10):
        async with WebSocketTransport(url, auth=AUTH, format="slin16") as t:
            t.send(bytes(640))
    for _ in range(20):
        await asyncio.sleep(0.02)
        if open_fds() <= before:
            break
    assert open_fds() <= before
