"""The UDP transport on real loopback sockets."""

from __future__ import annotations

import asyncio
import os
import socket

import numpy as np
import pytest
from media_helpers import open_fds, tone

from convener.audio import pcm16_to_ulaw, ulaw_to_pcm16
from convener.media.formats import leg_format
from convener.media.rtp import build_rtp, parse_rtp
from convener.media.rtp_transport import PortAllocator, RtpSender, RtpTransport, TokenBucket
from convener.media.settings import MediaSettings
from convener.media.transport import MediaTransport

BASE = 40000 + (os.getpid() % 200) * 50  # a private range per test process


@pytest.fixture
def allocator() -> PortAllocator:
    return PortAllocator(BASE, BASE + 9)


@pytest.fixture
def settings() -> MediaSettings:
    return MediaSettings(rtp_port_min=BASE, rtp_port_max=BASE + 9)


@pytest.fixture
def asterisk():
    """A UDP socket standing in for Asterisk's RTP socket."""
    socks = []

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
        return s

    yield make
    for s in socks:
        s.close()


def ulaw_packet(seq: int, ssrc: int = 1234, payload: bytes | None = None, pt: int = 0) -> bytes:
    payload = payload if payload is not None else bytes([seq & 0xFF]) * 160
    return build_rtp(pt, seq & 0xFFFF, seq * 160, ssrc, payload)


async def collect(t: RtpTransport, n: int, timeout: float = 1.0) -> list:
    out = []
    it = t.frames().__aiter__()
    try:
        while len(out) < n:
            out.append(await asyncio.wait_for(it.__anext__(), timeout))
    except (TimeoutError, StopAsyncIteration):
        pass
    return out


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.005)


async def test_conforms_to_the_transport_protocol(settings, allocator) -> None:
    t = RtpTransport(settings, allocator=allocator)
    assert isinstance(t, MediaTransport)


async def test_inbound_ulaw_decoded_in_order_with_monotonic_timestamps(
    settings, allocator, asterisk
) -> None:
    ast = asterisk()
    async with RtpTransport(settings, allocator=allocator) as t:
        assert BASE <= t.local_port <= BASE + 9
        assert t.external_host == f"127.0.0.1:{t.local_port}"
        t.set_remote(*ast.getsockname())
        for seq in (10, 11, 13, 12, 14):  # one reordering
            ast.sendto(ulaw_packet(seq), ("127.0.0.1", t.local_port))
        frames = await collect(t, 5)
        assert [f.pcm for f in frames] == [ulaw_to_pcm16(bytes([s]) * 160) for s in range(10, 15)]
        assert all(f.sample_rate == 8000 and f.samples == 160 for f in frames)
        stamps = [f.timestamp for f in frames]
        assert stamps == sorted(stamps) and len(set(stamps)) == 5
        assert t.stats.reordered == 1 and t.stats.lost == 0


async def test_lost_packet_concealed_after_max_wait(settings, allocator, asterisk) -> None:
    ast = asterisk()
    settings.jitter_depth_packets = 5
    async with RtpTransport(settings, allocator=allocator) as t:
        t.set_remote(*ast.getsockname())
        for seq in (1, 2, 4):
            ast.sendto(ulaw_packet(seq), ("127.0.0.1", t.local_port))
        frames = await collect(t, 4, timeout=0.5)  # 3 arrives never: released by the timer
        assert len(frames) == 4
        assert frames[2].pcm == frames[1].pcm  # "repeat" concealment
        assert t.stats.lost == 1


async def test_packets_from_other_ports_and_garbage_are_ignored(
    settings, allocator, asterisk
) -> None:
    ast, intruder = asterisk(), asterisk()
    async with RtpTransport(settings, allocator=allocator) as t:
        dest = ("127.0.0.1", t.local_port)
        t.set_remote(*ast.getsockname())
        for seq in range(100, 120):
            intruder.sendto(ulaw_packet(seq), dest)
        rnd = np.random.default_rng(1)
        for size in (0, 1, 11, 12, 13, 172, 1400):
            ast.sendto(rnd.bytes(size), dest)
        ast.sendto(b"\x80" + bytes(11), dest)  # valid header, empty payload
        ast.sendto(bytes([0x80, 200]) + bytes(30), dest)  # RTCP
        await settle()
        assert t.stats.dropped_foreign == 20
        assert t.stats.dropped_garbage >= 6
        for seq in range(1, 4):
            ast.sendto(ulaw_packet(seq), dest)
        frames = await collect(t, 3)
        assert [f.pcm[:2] for f in frames] == [ulaw_to_pcm16(bytes([s]))[:2] for s in (1, 2, 3)]


async def test_second_ssrc_and_wrong_payload_type_ignored(settings, allocator, asterisk) -> None:
    ast = asterisk()
    async with RtpTransport(settings, allocator=allocator) as t:
        dest = ("127.0.0.1", t.local_port)
        t.set_remote(*ast.getsockname())
        ast.sendto(ulaw_packet(1, ssrc=111), dest)
        ast.sendto(ulaw_packet(2, ssrc=222), dest)
        ast.sendto(ulaw_packet(3, ssrc=111, pt=8), dest)
        ast.sendto(ulaw_packet(2, ssrc=111), dest)
        frames = await collect(t, 2)
        assert len(frames) == 2
        assert t.receiver.ssrc == 111
        assert t.stats.dropped_other_ssrc == 2


async def test_packets_before_set_remote_are_held_then_filtered(
    settings, allocator, asterisk
) -> None:
    ast, intruder = asterisk(), asterisk()
    async with RtpTransport(settings, allocator=allocator) as t:
        dest = ("127.0.0.1", t.local_port)
        ast.sendto(ulaw_packet(1), dest)
        intruder.sendto(ulaw_packet(50), dest)
        ast.sendto(ulaw_packet(2), dest)
        await settle()
        assert t.stats.frames_in == 0
        t.set_remote(*ast.getsockname())
        frames = await collect(t, 2)
        assert len(frames) == 2 and t.stats.dropped_foreign == 1


async def test_unspecified_remote_host_locks_on_first_sender(settings, allocator, asterisk) -> None:
    ast = asterisk()
    async with RtpTransport(settings, allocator=allocator) as t:
        t.set_remote("0.0.0.0", ast.getsockname()[1])
        ast.sendto(ulaw_packet(1), ("127.0.0.1", t.local_port))
        assert len(await collect(t, 1)) == 1
        assert t.remote == ("127.0.0.1", ast.getsockname()[1])


async def test_flood_is_bounded_and_the_stream_survives(settings, allocator, asterisk) -> None:
    ast, intruder = asterisk(), asterisk()
    settings.inbound_queue_frames = 50
    async with RtpTransport(settings, allocator=allocator) as t:
        dest = ("127.0.0.1", t.local_port)
        t.set_remote(*ast.getsockname())
        sent = 0
        t0 = asyncio.get_running_loop().time()
        # 20k packets from Asterisk's own address, 10k foreign. asyncio reads one datagram
        # per loop iteration, so yield enough iterations for the transport to see them all.
        for batch in range(1000):
            for i in range(20):
                seq = batch * 20 + i
                try:
                    ast.sendto(ulaw_packet(seq), dest)
                    if i % 2:
                        intruder.sendto(ulaw_packet(seq), dest)
                    sent += 1
                except BlockingIOError:
                    pass
            for _ in range(35):
                await asyncio.sleep(0)
        await settle()
        assert sent > 10000
        assert t.stats.packets_in > 15000  # the transport really saw the flood
        assert t.stats.dropped_flood > 10000  # rate limit engaged
        assert len(t._queue) <= 50  # inbound queue bounded
        elapsed = asyncio.get_running_loop().time() - t0
        accepted = settings.inbound_burst_packets + elapsed * settings.inbound_max_pps
        # Frames: the accepted packets plus concealment bounded by real time, nothing more.
        assert t.stats.frames_in <= accepted + elapsed * 50 + 10
        await asyncio.sleep(0.35)  # the bucket refills (150 packets/s)
        drained = await collect(t, 50, timeout=0.2)
        assert len(drained) <= 50
        for seq in range(20000, 20005):
            ast.sendto(ulaw_packet(seq), dest)
        # A gap since the flood's last accepted packet may be concealed first; then the stream.
        frames = await collect(t, 40, timeout=0.2)
        assert [f.pcm for f in frames[-5:]] == [
            ulaw_to_pcm16(bytes([s & 0xFF]) * 160) for s in range(20000, 20005)
        ]


async def test_outbound_ulaw_rtp(settings, allocator, asterisk) -> None:
    ast = asterisk()
    loop = asyncio.get_running_loop()
    async with RtpTransport(settings, allocator=allocator) as t:
        t.send(bytes(320))  # before set_remote: dropped, counted
        assert t.stats.dropped_out == 1
        t.set_remote(*ast.getsockname())
        pcm = tone(60)
        for i in range(3):
            t.send(pcm[i * 320:(i + 1) * 320])
        pkts = []
        for _ in range(3):
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(ast, 2048), 1.0)
            assert addr == ("127.0.0.1", t.local_port)
            pkts.append(parse_rtp(data))
        assert [p.payload_type for p in pkts] == [0, 0, 0]
        assert [p.marker for p in pkts] == [True, False, False]
        assert len({p.ssrc for p in pkts}) == 1
        assert [(p.sequence - pkts[0].sequence) & 0xFFFF for p in pkts] == [0, 1, 2]
        assert [(p.timestamp - pkts[0].timestamp) & 0xFFFFFFFF for p in pkts] == [0, 160, 320]
        assert b"".join(p.payload for p in pkts) == pcm16_to_ulaw(pcm)
        assert t.stats.frames_out == 3


async def test_slin16_is_big_endian_on_rtp(settings, allocator, asterisk) -> None:
    ast = asterisk()
    loop = asyncio.get_running_loop()
    async with RtpTransport(settings, allocator=allocator, format="slin16") as t:
        assert t.sample_rate == 16000 and t.format.payload_type == 118
        t.set_remote(*ast.getsockname())
        pcm = np.arange(320, dtype="<i2").tobytes()
        t.send(pcm)
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(ast, 2048), 1.0)
        pkt = parse_rtp(data)
        assert pkt.payload_type == 118
        assert pkt.payload == np.arange(320, dtype=">i2").tobytes()
        ast.sendto(build_rtp(118, 1, 0, 5, pkt.payload), ("127.0.0.1", t.local_port))
        frames = await collect(t, 1)
        assert frames[0].pcm == pcm and frames[0].sample_rate == 16000


def test_sender_marks_talkspurts_and_advances_timestamp_over_pauses() -> None:
    now = [0.0]
    s = RtpSender(leg_format("ulaw", "rtp"), clock=lambda: now[0])
    p = [parse_rtp(s.packet(bytes(320)))]
    for _ in range(2):
        now[0] += 0.02
        p.append(parse_rtp(s.packet(bytes(320))))
    now[0] += 1.0  # a one-second pause
    p.append(parse_rtp(s.packet(bytes(320))))
    assert [x.marker for x in p] == [True, False, False, True]
    assert (p[3].timestamp - p[2].timestamp) & 0xFFFFFFFF == 8000
    s.mark_talkspurt()
    now[0] += 0.02
    assert parse_rtp(s.packet(bytes(320))).marker


def test_token_bucket() -> None:
    b = TokenBucket(rate=50, burst=5)
    assert sum(b.take(0.0) for _ in range(10)) == 5
    assert b.take(0.01) is False
    assert b.take(0.021) is True


async def test_ports_unique_while_in_use_and_released_on_close(settings) -> None:
    alloc = PortAllocator(BASE + 20, BASE + 21)
    a = RtpTransport(settings, allocator=alloc)
    b = RtpTransport(settings, allocator=alloc)
    await a.start()
    await b.start()
    assert {a.local_port, b.local_port} == {BASE + 20, BASE + 21}
    c = RtpTransport(settings, allocator=alloc)
    with pytest.raises(OSError, match="no free UDP port"):
        await c.start()
    port = a.local_port
    await a.close()
    await a.close()  # idempotent
    assert port not in alloc.in_use
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", port))  # re-bind works: the socket is really closed
    raw.close()
    await c.start()
    assert c.local_port == port
    await b.close()
    await c.close()
    assert not alloc.in_use


async def test_port_held_by_another_process_is_skipped(settings) -> None:
    alloc = PortAllocator(BASE + 30, BASE + 31)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", BASE + 30))
    try:
        async with RtpTransport(settings, allocator=alloc) as t:
            assert t.local_port == BASE + 31
    finally:
        squatter.close()


async def test_no_leaked_sockets_on_any_path(settings, allocator, asterisk) -> None:
    ast = asterisk()
    before = open_fds()
    for i in range(20):
        t = RtpTransport(settings, allocator=allocator)
        if i % 3 == 0:
            await t.close()  # never started
            continue
        try:
            async with t:
                t.set_remote(*ast.getsockname())
                ast.sendto(ulaw_packet(1), ("127.0.0.1", t.local_port))
                t.send(bytes(320))
                if i % 3 == 1:
                    raise RuntimeError("boom")
        except RuntimeError:
            pass
    await settle()
    assert open_fds() == before
    assert not allocator.in_use


async def test_frames_iterator_ends_on_close(settings, allocator) -> None:
    t = RtpTransport(settings, allocator=allocator)
    await t.start()

    async def consume() -> int:
        return len([f async for f in t.frames()])

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    await t.close()
    assert await asyncio.wait_for(task, 1.0) == 0


def test_ssrc_switch_only_after_the_old_stream_went_silent(settings) -> None:
    from convener.media.rtp_transport import RtpReceiver
    from convener.media.transport import TransportStats

    stats = TransportStats()
    rx = RtpReceiver(leg_format("ulaw", "rtp"), settings, stats)
    addr = ("127.0.0.1", 7000)
    rx.set_remote(*addr, 0.0)
    assert len(rx.feed(ulaw_packet(1, ssrc=1), addr, 0.00)) == 1
    assert rx.feed(ulaw_packet(500, ssrc=2), addr, 0.01) == []  # concurrent: ignored
    assert len(rx.feed(ulaw_packet(2, ssrc=1), addr, 0.02)) == 1
    assert rx.feed(ulaw_packet(501, ssrc=2), addr, 0.40) == []  # old silent only 380 ms
    frames = rx.feed(ulaw_packet(502, ssrc=2), addr, 0.60)  # silent 580 ms: new source
    assert len(frames) == 1 and rx.ssrc == 2 and stats.extra["ssrc_changes"] == 1
    assert frames[0].pcm == ulaw_to_pcm16(bytes([502 & 0xFF]) * 160)
    assert rx.feed(ulaw_packet(3, ssrc=1), addr, 0.62) == []  # the old one is now foreign
    assert stats.dropped_other_ssrc == 3
