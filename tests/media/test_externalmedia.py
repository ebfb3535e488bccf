from __future__ import annotations

import pytest

from convener.media.externalmedia import rtp_params, rtp_remote, websocket_params, ws_connection_id
from convener.media.rtp_transport import PortAllocator, RtpTransport
from convener.media.settings import MediaSettings


async def test_rtp_params_and_remote() -> None:
    s = MediaSettings(rtp_port_min=46900, rtp_port_max=46909)
    async with RtpTransport(s, allocator=PortAllocator(46900, 46909)) as t:
        p = rtp_params(t, "convener")
        assert p["external_host"] == f"127.0.0.1:{t.local_port}" and p["format"] == "ulaw"
        assert p["encapsulation"] == "rtp" and p["transport"] == "udp" and p["app"] == "convener"
    channel = {"id": "1.2", "channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1",
                                            "UNICASTRTP_LOCAL_PORT": "17022"}}
    assert rtp_remote(channel) == ("127.0.0.1", 17022)


@pytest.mark.parametrize(
    "channel",
    [{}, {"channelvars": {}}, {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1"}},
     {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "x"}},
     {"channelvars": {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "0"}}],
)
def test_rtp_remote_rejects_incomplete_replies(channel: dict) -> None:
    with pytest.raises(ValueError):
        rtp_remote(channel)


def test_websocket_params_and_connection_id() -> None:
    p = websocket_params("convener")
    assert p["transport"] == "websocket" and p["encapsulation"] == "none"
    assert p["connection_type"] == "server" and p["format"] == "slin16"
    assert ws_connection_id({"channelvars": {"MEDIA_WEBSOCKET_CONNECTION_ID": "abc"}}) == "abc"
    with pytest.raises(ValueError):
        ws_connection_id({"channelvars": {}})
