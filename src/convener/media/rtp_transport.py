"""RTP over UDP to Asterisk's externalMedia channel: one socket per call.

How Asterisk (22.x, ``POST /channels/externalMedia?external_host=HOST:PORT&format=ulaw``,
encapsulation ``rtp``, transport ``udp``) uses it:

- it sends the caller's audio as RTP to ``HOST:PORT`` (our socket): one packet per 20 ms,
  ulaw = 160 payload bytes with PT 0, slin16 = 640 bytes big-endian with dynamic PT 118;
- the reply's channel variables ``UNICASTRTP_LOCAL_ADDRESS`` / ``UNICASTRTP_LOCAL_PORT`` name
  Asterisk's own RTP socket: it sends from there and expects our RTP back there.

So: ``start()`` binds a port from ``[rtp_port_min, rtp_port_max]`` (``local_port`` goes into
``external_host``), then ``set_remote(address, port)`` with the two channel variables. Until
then packets are held (a few, replayed when the remote is known) or dropped; afterwards only
packets from exactly that address and port are accepted, and only the first SSRC seen with the
expected payload type. Everything else (garbage, other ports, a second SSRC, RTCP, a flood above
``inbound_max_pps``) is dropped and counted, never raised. A new SSRC from Asterisk's address
is adopted only after the current one was silent ``rtp_ssrc_switch_ms`` (Asterisk changes SSRC
when the bridged source changes). Inbound packets go through a small
reorder buffer (``convener.media.jitter``) and are decoded to PCM16 ``AudioFrame``s.

Outbound, ``send(pcm)`` encodes one 20 ms PCM16 frame, wraps it in RTP with our own random
SSRC, a sequence number +1 per packet and a timestamp + samples per packet; the marker bit is
set on the first packet of each talk-spurt (first packet, and the first after a pause of more
than two frames, where the timestamp also jumps by the pause's duration as RFC 3551 §4.1 asks).
Pacing is not done here: ``convener.media.pacer`` calls ``send`` every 20 ms.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Self

from convener.audio import AudioFrame
from convener.media.formats import LegFormat, leg_format
from convener.media.jitter import JitterBuffer
from convener.media.rtp import RtpError, build_rtp_fast, parse_rtp
from convener.media.settings import MediaSettings
from convener.media.transport import FrameQueue, TransportStats

log = logging.getLogger(__name__)

Addr = tuple[str, int]


# --- port allocation -------------------------------------------------------------------------


class PortAllocator:
    """Hands out UDP ports of a range, never the same one twice while it is in use.

    ``allocate()`` returns a bound, non-blocking socket; ``release(port)`` frees the port. Ports
    are taken round-robin from a moving cursor, so a port just released is the last to be
    reused (stale packets of an ended call do not reach the next call). Ports another process
    holds are skipped. Single-threaded use (one event loop) is assumed.
    """

    def __init__(self, port_min: int, port_max: int) -> None:
        if not 1 <= port_min <= port_max <= 65535:
            raise ValueError("bad port range")
        self.port_min = port_min
        self.port_max = port_max
        self._in_use: set[int] = set()
        self._cursor = port_min

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    def allocate(self, host: str) -> tuple[int, socket.socket]:
        size = self.port_max - self.port_min + 1
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(size):
            port = self._cursor
            self._cursor = self.port_min if port >= self.port_max else port + 1
            if port in self._in_use:
                continue
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                # Room for bursts (a flood from elsewhere must not crowd out Asterisk's packets
                # in the kernel's queue before we get to drop it).
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                sock.setblocking(False)
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            self._in_use.add(port)
            return port, sock
        raise OSError(f"no free UDP port in {self.port_min}-{self.port_max} on {host}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)


_allocators: dict[tuple[int, int], PortAllocator] = {}


def shared_port_allocator(port_min: int, port_max: int) -> PortAllocator:
    """The process-wide allocator of a port range (all calls must share it)."""
    key = (port_min, port_max)
    if key not in _allocators:
        _allocators[key] = PortAllocator(port_min, port_max)
    return _allocators[key]


# --- pure pieces -----------------------------------------------------------------------------


class TokenBucket:
    """Rate limiter: ``rate`` tokens/s, at most ``burst`` saved up."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None

    def take(self, now: float) -> bool:
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return not host


class RtpReceiver:
    """Inbound RTP → ``AudioFrame``s (pure: no sockets; the clock value is passed in).

    ``feed(data, addr, now)`` returns the frames that became ready. The source filter, SSRC
    lock, flood limit, reorder buffer, concealment and timestamps live here.
    """

    def __init__(self, fmt: LegFormat, settings: MediaSettings, stats: TransportStats) -> None:
        self.format = fmt
        self.settings = settings
        self.stats = stats
        self.remote: Addr | None = None
        self._match_any_host = False
        self.ssrc: int | None = None
        self._ssrc_seen = float("-inf")
        self._ssrc_switch_s = settings.rtp_ssrc_switch_ms / 1000.0
        self._bucket = TokenBucket(settings.inbound_max_pps, settings.inbound_burst_packets)
        self._jitter: JitterBuffer[bytes] = JitterBuffer(
            settings.jitter_depth_packets, settings.jitter_max_wait_ms / 1000.0
        )
        self._held: deque[tuple[bytes, Addr, float]] = deque()
        self._frame_s = fmt.ptime_ms / 1000.0
        self._silence = bytes(fmt.pcm_frame_bytes)
        self._last_pcm: bytes | None = None
        self._concealed_run = 0
        self._anchor: tuple[int, float] | None = None  # (ext seq, monotonic first-sample time)
        self._last_ts = float("-inf")
        self._prev_now: float | None = None

    # -- remote --------------------------------------------------------------------------
    def set_remote(self, host: str, port: int, now: float) -> list[AudioFrame]:
        """Accept packets from ``host:port`` only; replay the held packets that match.

        An unspecified host (``0.0.0.0``/``::``/empty) matches any host on that port; the
        first such packet's host is then locked in.
        """
        self._match_any_host = _unspecified(host)
        self.remote = (host, port)
        held, self._held = self._held, deque()
        out: list[AudioFrame] = []
        for data, addr, at in held:
            if self._accepts(addr):
                out.extend(self.feed(data, addr, at))
            else:
                self.stats.dropped_foreign += 1
        return out

    def _accepts(self, addr: Addr) -> bool:
        remote = self.remote
        if remote is None:
            return False
        if addr[1] != remote[1]:
            return False
        if self._match_any_host:
            self.remote = (addr[0], remote[1])
            self._match_any_host = False
            return True
        return addr[0] == remote[0]

    # -- inbound -------------------------------------------------------------------------
    def feed(self, data: bytes, addr: Addr, now: float) -> list[AudioFrame]:
        stats = self.stats
        if self.remote is None:
            if len(self._held) < self.settings.pre_remote_hold_packets:
                self._held.append((bytes(data), addr, now))
            else:
                stats.dropped_before_remote += 1
            return []
        if not self._accepts(addr):
            stats.dropped_foreign += 1
            return []
        if not self._bucket.take(now):
            stats.dropped_flood += 1
            return []
        try:
            pkt = parse_rtp(data)
        except RtpError:
            stats.dropped_garbage += 1
            return []
        if pkt.payload_type != self.format.payload_type or not pkt.payload:
            stats.dropped_other_ssrc += 1
            if pkt.payload and not stats.extra.get("unexpected_pt"):
                log.warning("RTP payload type %d from Asterisk, expected %d (%s): dropped",
                            pkt.payload_type, self.format.payload_type, self.format.name)
            stats.extra["unexpected_pt"] = stats.extra.get("unexpected_pt", 0) + 1
            return []
        if self.ssrc is None:
            self.ssrc = pkt.ssrc
        elif pkt.ssrc != self.ssrc:
            if now - self._ssrc_seen < self._ssrc_switch_s:
                stats.dropped_other_ssrc += 1
                return []
            # The old stream has been silent long enough: Asterisk changed its source.
            log.info("RTP SSRC changed %08x -> %08x", self.ssrc, pkt.ssrc)
            self.ssrc = pkt.ssrc
            self._jitter.reset()
            self._anchor = None
            stats.extra["ssrc_changes"] = stats.extra.get("ssrc_changes", 0) + 1
        self._ssrc_seen = now
        jstats = self._jitter.stats
        before = (jstats.lost, jstats.late, jstats.duplicate, jstats.reordered)
        ready = self._jitter.push(pkt.sequence, pkt.payload, now)
        self._sync_stats(before)
        return self._frames(ready, now)

    def poll(self, now: float) -> list[AudioFrame]:
        """Give up on gaps that waited too long (call when ``next_poll()`` is due)."""
        jstats = self._jitter.stats
        before = (jstats.lost, jstats.late, jstats.duplicate, jstats.reordered)
        ready = self._jitter.poll(now)
        self._sync_stats(before)
        return self._frames(ready, now)

    def next_poll(self) -> float | None:
        return self._jitter.oldest_wait_deadline()

    def _sync_stats(self, before: tuple[int, int, int, int]) -> None:
        j = self._jitter.stats
        s = self.stats
        s.lost += j.lost - before[0]
        s.late += j.late - before[1]
        s.duplicate += j.duplicate - before[2]
        s.reordered += j.reordered - before[3]

    def _frames(self, ready: list[tuple[int, bytes | None]], now: float) -> list[AudioFrame]:
        if not ready:
            return []
        out: list[AudioFrame] = []
        fmt = self.format
        conceal = self.settings.jitter_conceal
        rate = fmt.sample_rate
        newest = ready[-1][0]
        # Concealment never outruns the clock: at most as many frames as real time allows since
        # the previous batch (a flood with sequence gaps must not be amplified into frames).
        elapsed = 0.0 if self._prev_now is None else max(0.0, now - self._prev_now)
        budget = 1 + round(elapsed / self._frame_s) - sum(1 for _, p in ready if p is not None)
        self._prev_now = now
        for ext, payload in ready:
            if payload is None:
                if conceal == "none":
                    continue
                if budget <= 0:
                    self.stats.extra["conceal_skipped"] = (
                        self.stats.extra.get("conceal_skipped", 0) + 1
                    )
                    continue
                budget -= 1
                if conceal == "repeat" and self._concealed_run == 0 and self._last_pcm:
                    pcm = self._last_pcm
                else:
                    pcm = self._silence
                self._concealed_run += 1
            else:
                pcm = fmt.decode(payload)
                self._last_pcm = pcm
                self._concealed_run = 0
            # First-sample time: the newest packet of this batch just arrived complete, so it
            # started one frame ago; older ones are one frame earlier each. Re-anchor when the
            # seq-based estimate drifts more than 100 ms from arrival (pauses, clock skew).
            est_now = now - self._frame_s * (newest - ext + 1)
            if self._anchor is None:
                self._anchor = (ext, est_now)
            ts = self._anchor[1] + (ext - self._anchor[0]) * self._frame_s
            if abs(ts - est_now) > 0.1:
                self._anchor = (ext, est_now)
                ts = est_now
            if ts <= self._last_ts:
                ts = self._last_ts + 1e-6
            self._last_ts = ts
            out.append(AudioFrame(pcm, rate, ts))
        return out


class RtpSender:
    """Outbound PCM16 frames → RTP packets (pure; the clock is injectable)."""

    def __init__(self, fmt: LegFormat, clock: Callable[[], float] = time.monotonic) -> None:
        self.format = fmt
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self._clock = clock
        self._last_sent: float | None = None
        self._force_marker = True

    def mark_talkspurt(self) -> None:
        """The next packet starts a talk-spurt (marker bit set)."""
        self._force_marker = True

    def packet(self, pcm: bytes) -> bytes:
        fmt = self.format
        now = self._clock()
        marker = self._force_marker
        frame_s = fmt.ptime_ms / 1000.0
        if self._last_sent is not None:
            gap = now - self._last_sent
            if gap > 2.5 * frame_s:
                marker = True
                # RTP time keeps running during the pause (minus the frame we step below).
                self.timestamp += int((gap - frame_s) * fmt.sample_rate)
        self._force_marker = False
        self._last_sent = now
        data = build_rtp_fast(fmt.payload_type, self.sequence, self.timestamp, self.ssrc,
                              fmt.encode(pcm), marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + len(pcm) // 2) & 0xFFFFFFFF
        return data


# --- the I/O shell ---------------------------------------------------------------------------


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, owner: RtpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self.owner._on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc. after a send: count, never raise.
        self.owner.stats.extra["socket_errors"] = self.owner.stats.extra.get("socket_errors", 0) + 1


class RtpTransport:
    """One call's RTP leg over UDP (see the module docstring for the protocol facts)."""

    def __init__(
        self,
        settings: MediaSettings | None = None,
        *,
        format: str | None = None,
        allocator: PortAllocator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or MediaSettings()
        s = self.settings
        self.format = leg_format(format or s.format, "rtp", s.rtp_slin16_payload_type)
        self.stats = TransportStats()
        self._allocator = allocator or shared_port_allocator(s.rtp_port_min, s.rtp_port_max)
        self._clock = clock
        self.receiver = RtpReceiver(self.format, s, self.stats)
        self.sender = RtpSender(self.format, clock)
        self._queue = FrameQueue(s.inbound_queue_frames, self.stats)
        self._transport: asyncio.DatagramTransport | None = None
        self._port: int | None = None
        self._sock: socket.socket | None = None
        self._poll_handle: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def local_port(self) -> int:
        """Our UDP port (valid after ``start()``): put ``rtp_host:local_port`` in external_host."""
        if self._port is None:
            raise RuntimeError("RtpTransport not started")
        return self._port

    @property
    def external_host(self) -> str:
        """The ``external_host`` argument for ``POST /channels/externalMedia``."""
        return f"{self.settings.rtp_host}:{self.local_port}"

    @property
    def remote(self) -> Addr | None:
        return self.receiver.remote

    async def start(self) -> None:
        if self._transport is not None or self._closed:
            raise RuntimeError("RtpTransport can be started once")
        port, sock = self._allocator.allocate(self.settings.rtp_host)
        self._port = port
        self._sock = sock
        try:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(lambda: _Proto(self), sock=sock)
        except BaseException:
            sock.close()
            self._sock = None
            self._allocator.release(port)
            self._port = None
            raise
        self._transport = transport  # type: ignore[assignment]

    def set_remote(self, host: str, port: int | str) -> None:
        """Asterisk's RTP address: ``UNICASTRTP_LOCAL_ADDRESS`` / ``UNICASTRTP_LOCAL_PORT``."""
        for frame in self.receiver.set_remote(host, int(port), self._clock()):
            self._queue.put(frame)
        self._arm_poll()

    def _on_datagram(self, data: bytes, addr: Addr) -> None:
        if self._closed:
            return
        self.stats.packets_in += 1
        try:
            frames = self.receiver.feed(data, addr, self._clock())
        except Exception:  # never let one packet kill the leg; count and log it
            self.stats.extra["errors"] = self.stats.extra.get("errors", 0) + 1
            log.exception("RTP packet handling failed")
            return
        for frame in frames:
            self._queue.put(frame)
        if self.receiver.next_poll() is not None and self._poll_handle is None:
            self._arm_poll()

    def _arm_poll(self) -> None:
        due = self.receiver.next_poll()
        if due is None or self._closed:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - self._clock())
        self._poll_handle = loop.call_later(delay + 0.001, self._on_poll)

    def _on_poll(self) -> None:
        self._poll_handle = None
        if self._closed:
            return
        for frame in self.receiver.poll(self._clock()):
            self._queue.put(frame)
        self._arm_poll()

    def frames(self) -> AsyncIterator[AudioFrame]:
        return self._queue.iterate()

    def send(self, pcm_frame: bytes) -> None:
        """Send one 20 ms PCM16 LE frame at ``sample_rate`` as RTP to Asterisk (non-blocking)."""
        remote = self.receiver.remote
        if self._transport is None or remote is None or self._closed:
            self.stats.dropped_out += 1
            return
        data = self.sender.packet(pcm_frame)
        try:
            self._transport.sendto(data, remote)
        except OSError:
            self.stats.dropped_out += 1
            return
        self.stats.frames_out += 1
        self.stats.bytes_out += len(data)

    def clear_output(self) -> None:
        """Nothing of ours is queued in Asterisk for RTP; the next packet starts a talk-spurt."""
        self.sender.mark_talkspurt()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._poll_handle is not None:
            self._poll_handle.cancel()
            self._poll_handle = None
        self._queue.close()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()  # unregisters the fd now, closes the socket on the next tick
        if self._sock is not None:
            self._sock.close()  # close it now (asyncio's own later close is then a no-op)
            self._sock = None
        if self._port is not None:
            self._allocator.release(self._port)
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
