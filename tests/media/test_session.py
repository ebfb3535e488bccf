"""CallMedia end to end on loopback RTP: caller audio in, reply out, barge-in."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from media_helpers import EnergyVad, open_fds, silence, tone

from convener.audio import pcm16_to_ulaw
from convener.media.rtp import build_rtp, parse_rtp
from convener.media.rtp_transport import PortAllocator, RtpTransport
from convener.media.session import CallMedia
from convener.media.settings import MediaSettings
from convener.media.turns import SpeechStarted, TurnEnded

BASE = 47000 + (os.getpid() % 100) * 20


async def test_turn_reply_and_barge_in_over_rtp() -> None:
    # Packets are sent faster than real time: lift the flood guard, which is not under test here
    # (with it, the trailing silence could be dropped and the turn would never end).
    settings = MediaSettings(rtp_port_min=BASE, rtp_port_max=BASE + 9, inbound_max_pps=100000,
                             inbound_burst_packets=10000)
    ast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ast.bind(("127.0.0.1", 0))
    ast.setblocking(False)
    loop = asyncio.get_running_loop()
    before = open_fds()
    barged = []
    firsts = []
    transport = RtpTransport(settings, allocator=PortAllocator(BASE, BASE + 9))
    try:
        async with CallMedia(transport, EnergyVad(), settings, on_barge_in=barged.append,
                             on_first_audio=lambda rid, t: firsts.append(rid)) as media:
            transport.set_remote(*ast.getsockname())
            dest = ("127.0.0.1", transport.local_port)
            caller = silence(400) + tone(400) + silence(700)
            for i in range(0, len(caller), 320):  # 20 ms packets (sent fast: not timed)
                seq = i // 320
                ast.sendto(build_rtp(0, seq, seq * 160, 77, pcm16_to_ulaw(caller[i:i + 320])),
                           dest)
                await asyncio.sleep(0.001)
            events = []
            async with asyncio.timeout(10):
                async for ev in media.events():
                    events.append(ev)
                    if isinstance(ev, TurnEnded):
                        break
            assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
            assert events[1].preroll_ms == pytest.approx(300.0)
            assert barged == []  # nothing was playing

            media.say("reply-1", tone(2000, rate=24000), 24000)
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(ast, 2048), 2.0)
            first = parse_rtp(data)
            assert first.marker and first.payload_type == 0 and firsts == ["reply-1"]
            await asyncio.sleep(0.1)
            # the caller talks over the reply
            for k in range(10):
                seq = 100 + k
                ast.sendto(build_rtp(0, seq, seq * 160, 77, pcm16_to_ulaw(tone(20))), dest)
                await asyncio.sleep(0.001)
            async with asyncio.timeout(10):
                async for ev in media.events():
                    if isinstance(ev, SpeechStarted):
                        break
            assert len(barged) == 1
            played = barged[0].replies["reply-1"]
            assert played.interrupted and 0 < played.played_ms < 1000
            assert not media.pacer.is_playing
            assert media.pacer.stats.frames_sent * 160 == played.played_samples
    finally:
        ast.close()
    assert open_fds() == before - 1  # only `ast` (opened before counting) is gone too
