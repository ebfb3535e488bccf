"""A caller without a phone: places calls into the dialplan through ARI and watches them.

The mission's ``channel originate Local/100@from-internal ...`` done over ARI: the Local
channel's ``;2`` leg runs the dialplan (and so enters ``Stasis(convener)``), the ``;1`` leg enters
the caller-side Stasis application owned here, which can play audio into the call, record what
the caller hears, send DTMF and hang up. The caller application subscribes to the ``;2`` leg's
events, so it sees that leg's dialplan steps and its entry into convener's conference bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from convener.ari import events as ev
from convener.ari.errors import AriBadRequest, AriConflict
from convener.ari.rest import AriClient, gone_ok
from convener.ari.stream import EventStream
from convener.media.pacer import Pacer, PacerCore, PlaybackReport
from convener.media.rtp_transport import RtpTransport
from convener.media.settings import MediaSettings


def call_outcome(var: str, caller_hung_up_at: float | None, ended_at: float | None) -> dict[str, str | None]:
    """``{"kind", "target"}`` from what convener set on the call (``CONVENER_OUTCOME``) and
    who ended it: ``transferred`` (target: the configured target's name), ``continued`` (back
    to the dialplan: DTMF 0, a failed setup), ``hung_up_by_convener``, ``caller_hung_up``."""
    kind, _, target = var.partition(":")
    if kind in ("transferred", "continued", "hung_up_by_convener"):
        return {"kind": kind, "target": target or None}
    if ended_at is not None and (caller_hung_up_at is None or ended_at < caller_hung_up_at):
        return {"kind": "hung_up_by_convener", "target": None}  # without saying so: an error, a shutdown
    return {"kind": "caller_hung_up", "target": None}


@dataclass
class CallerLeg:
    """One test call: ``local_id`` is the caller's side, ``remote_id`` the leg convener gets."""

    caller: TestCaller
    local_id: str
    remote_id: str
    placed_at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    in_bridge_at: float | None = None
    bridge_id: str | None = None
    ended_at: float | None = None
    dialplan: list[tuple[str, str]] = field(default_factory=list)
    media: CallerMedia | None = None
    outcome_var: str = ""  # CONVENER_OUTCOME as convener set it on the leg it got
    hung_up_by_caller_at: float | None = None
    events: asyncio.Queue[ev.Event] = field(default_factory=asyncio.Queue)
    _answered: asyncio.Event = field(default_factory=asyncio.Event)
    _bridged: asyncio.Event = field(default_factory=asyncio.Event)
    _ended: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, event: ev.Event) -> None:
        now = time.monotonic()
        self.events.put_nowait(event)
        cid = event.channel_id
        if isinstance(event, ev.StasisStart) and cid == self.local_id:
            self.answered_at = self.answered_at or now
            self._answered.set()
        elif isinstance(event, ev.ChannelEnteredBridge) and cid == self.remote_id:
            self.bridge_id = event.bridge.id
            self.in_bridge_at = self.in_bridge_at or now
            self._bridged.set()
        elif isinstance(event, ev.ChannelDialplan) and cid == self.remote_id:
            self.dialplan.append((event.dialplan_app, event.dialplan_app_data))
        elif isinstance(event, ev.ChannelVarset) and cid == self.remote_id \
                and event.variable == "CONVENER_OUTCOME":
            self.outcome_var = event.value
        elif isinstance(event, ev.ChannelDestroyed) and cid in (self.local_id, self.remote_id):
            self.ended_at = self.ended_at or now
            self._ended.set()
            if self.media is not None:
                # The far end hung up (convener, the dialplan): the caller's mouth and ear go
                # with the call. Left alone they stayed in Asterisk until someone hung them up.
                self.caller.close_later(self.media)
        elif isinstance(event, ev.ChannelDestroyed) and self.media is not None and cid == self.media.media_id:
            self.media.gone.set()

    async def wait_answered(self, timeout: float = 10.0) -> float:
        await asyncio.wait_for(self._answered.wait(), timeout)
        assert self.answered_at is not None
        return self.answered_at - self.placed_at

    async def wait_in_bridge(self, timeout: float = 10.0) -> str:
        """The bridge convener put the caller's leg in. Bridge events are not delivered for a
        channel subscription, so the bridges are polled (every 20 ms) as well."""
        deadline = time.monotonic() + timeout
        while not self._bridged.is_set():
            for b in await self.caller.ari.bridges():
                if self.remote_id in b.channels:
                    self.bridge_id = b.id
                    self.in_bridge_at = self.in_bridge_at or time.monotonic()
                    self._bridged.set()
                    break
            else:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.remote_id} not in a bridge after {timeout}s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bridged.wait(), 0.02)
        assert self.bridge_id is not None
        return self.bridge_id

    async def wait_ended(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ended.wait(), timeout)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def send_dtmf(self, digits: str) -> None:
        await self.caller.ari.send_dtmf(self.local_id, digits)

    async def play(self, media: str) -> None:
        await self.caller.ari.play(self.local_id, media)

    def outcome(self) -> dict[str, str | None]:
        """How the call ended for the caller (``convener call --json``'s ``outcome``)."""
        return call_outcome(self.outcome_var, self.hung_up_by_caller_at, self.ended_at)

    async def hangup(self) -> None:
        if self.hung_up_by_caller_at is None and not self.ended:
            self.hung_up_by_caller_at = time.monotonic()
        if self.media is not None:
            await self.media.close()
        await gone_ok(self.caller.ari.hangup(self.local_id))

    async def record_heard(self, name: str, max_seconds: int = 60) -> str:
        """Record what the caller hears, silences included, as ``NAME.wav`` in Asterisk's
        recording folder. A snoop (spy=in) on the caller's leg runs on its own 20 ms clock, so
        gaps in what reaches the caller stay gaps in the file. Returns the snoop's id."""
        snoop_id = f"{self.local_id}-ear"
        ari = self.caller.ari
        await ari.snoop(self.local_id, app=self.caller.app, snoop_id=snoop_id, spy="in")
        for _ in range(50):  # the snoop must be in the application before it can record
            try:
                await ari.record(snoop_id, name, format="wav", max_duration=max_seconds)
                return snoop_id
            except AriConflict:
                await asyncio.sleep(0.02)
        raise TimeoutError(f"snoop {snoop_id} never entered {self.caller.app}")

    async def stop_recording(self, name: str) -> None:
        await gone_ok(self.caller.ari.stop_recording(name))

    async def open_media(self, media: MediaSettings | None = None) -> CallerMedia:
        """A mouth and an ear for this caller: an RTP external media channel bridged with the
        caller's leg. What we send is what the caller says; what we receive is what the
        caller hears (timestamps on our own monotonic clock, so latencies need no clock sync)."""
        # Its own port range, so a caller and convener on one machine never compete for ports.
        m = replace(media or MediaSettings(), transport="rtp", format="ulaw", rtp_port_min=21000,
                    rtp_port_max=21999)
        rtp = RtpTransport(m)
        await rtp.start()
        ari, app = self.caller.ari, self.caller.app
        media_id, bridge_id = f"{self.local_id}-media", f"{self.local_id}-bridge"
        cm = CallerMedia(self, rtp, media_id, bridge_id)
        try:
            ch = await ari.external_media(app=app, channel_id=media_id,
                                          external_host=rtp.external_host, format="ulaw")
            rtp.set_remote(ch.channelvars["UNICASTRTP_LOCAL_ADDRESS"],
                           ch.channelvars["UNICASTRTP_LOCAL_PORT"])
            await ari.create_bridge(bridge_id, type="mixing")
            for cid in (self.local_id, media_id):
                for _ in range(100):  # a new channel must be in the application to be bridged
                    try:
                        await ari.add_channel(bridge_id, cid)
                        break
                    except (AriConflict, AriBadRequest):
                        await asyncio.sleep(0.02)
                else:
                    raise TimeoutError(f"{cid} never entered {app}")
            cm.start()
        except BaseException:
            await cm.close()
            raise
        self.media = cm
        return cm


@dataclass
class HeardFrame:
    at: float  # time.monotonic() when it arrived
    pcm: bytes
    peak: int


class CallerMedia:
    """The test caller's audio: ``say()`` speaks paced 20 ms frames, ``heard`` collects what the
    caller hears. ``VOICE_PEAK`` is the level above which a heard frame counts as voice."""

    VOICE_PEAK = 600

    def __init__(self, leg: CallerLeg, rtp: RtpTransport, media_id: str, bridge_id: str) -> None:
        self.leg = leg
        self.rtp = rtp
        self.media_id = media_id
        self.bridge_id = bridge_id
        self.heard: list[HeardFrame] = []
        self.pacer = Pacer(PacerCore(rtp.sample_rate, warmup_ms=0), rtp.send,
                           on_reply_done=self._done)
        self._done_events: dict[str, asyncio.Event] = {}
        self._reports: dict[str, PlaybackReport] = {}
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self.gone = asyncio.Event()  # Asterisk destroyed the media channel
        self.said_at: float | None = None  # first frame of the last say() (monotonic)

    def start(self) -> None:
        self.pacer.start()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.rtp.frames():
            x = np.frombuffer(frame.pcm, dtype="<i2")
            self.heard.append(HeardFrame(time.monotonic(), frame.pcm, int(np.abs(x).max()) if len(x) else 0))

    def _done(self, report: PlaybackReport) -> None:
        self._reports[report.reply_id] = report
        ev_ = self._done_events.get(report.reply_id)
        if ev_ is not None:
            ev_.set()

    async def say(self, pcm: bytes, sample_rate: int) -> float:
        """Speak ``pcm`` into the call in real time; returns when its last frame left (monotonic)."""
        rid = uuid.uuid4().hex[:8]
        done = self._done_events[rid] = asyncio.Event()
        self.pacer.feed(rid, pcm, sample_rate)
        self.pacer.end_reply(rid)
        await asyncio.wait_for(done.wait(), len(pcm) / 2 / sample_rate + 10)
        rep = self._reports[rid]
        assert rep.first_frame_at is not None
        self.said_at = rep.first_frame_at
        return rep.first_frame_at + rep.played_samples / rep.sample_rate

    def first_voice_after(self, t: float) -> float | None:
        for f in self.heard:
            if f.at > t and f.peak >= self.VOICE_PEAK:
                return f.at
        return None

    def last_voice(self) -> float | None:
        for f in reversed(self.heard):
            if f.peak >= self.VOICE_PEAK:
                return f.at
        return None

    async def wait_voice_after(self, t: float, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.first_voice_after(t)
            if at is not None:
                return at
            await asyncio.sleep(0.01)
        return None

    async def wait_quiet(self, quiet: float, timeout: float, since: float = 0.0) -> bool:
        """Wait until nothing was heard for ``quiet`` seconds (after ``since``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_voice()
            ref = max(last or 0.0, since)
            if time.monotonic() - ref >= quiet:
                return True
            await asyncio.sleep(0.02)
        return False

    def audio_between(self, start: float, end: float) -> bytes:
        return b"".join(f.pcm for f in self.heard if start <= f.at <= end)

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self, wait_gone: float = 2.0) -> None:
        """Stop speaking and listening, hang up the media channel and destroy its bridge. Waits
        (up to ``wait_gone`` s) until Asterisk has destroyed the channel: a hangup request
        returns before that, and whoever looks at Asterisk next would still see it."""
        if self._closed:
            return
        self._closed = True
        await self.pacer.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.rtp.close()
        ari = self.leg.caller.ari
        await gone_ok(ari.hangup(self.media_id))
        await gone_ok(ari.destroy_bridge(self.bridge_id))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.gone.wait(), wait_gone)


class TestCaller:
    """Places test calls. Use as an async context manager."""

    __test__ = False  # not a pytest test class

    def __init__(self, url: str, user: str, password: str, app: str = "convener-caller") -> None:
        self.ari = AriClient(url, user, password)
        self.app = app
        self.legs: dict[str, CallerLeg] = {}
        events_url = url.rstrip("/").replace("http", "ws", 1) + "/events"
        self.stream = EventStream(events_url, app, user, password, on_event=self._on_event)
        self._task: asyncio.Task[object] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def _on_event(self, event: ev.Event) -> None:
        for key, leg in list(self.legs.items()):
            leg.observe(event)
            if leg.ended and (leg.media is None or leg.media.gone.is_set()):
                del self.legs[key]  # a soak places thousands of calls: keep only live ones

    def close_later(self, media: CallerMedia) -> None:
        """Close a call's media from an event callback (awaited at the latest on exit)."""
        if media.closed:
            return
        task = asyncio.get_running_loop().create_task(media.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def __aenter__(self) -> TestCaller:
        self._task = asyncio.create_task(self.stream.run())
        await asyncio.wait_for(self.stream.connected.wait(), 10.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for leg in list(self.legs.values()):
            if not leg.ended:
                await leg.hangup()
        # Close the event stream only once the calls' events have stopped flowing: Asterisk
        # 22.10's ARI websocket code was seen to deadlock when a client closed its socket in
        # the middle of a burst of events (no later connection for any app got through).
        for leg in list(self.legs.values()):
            with contextlib.suppress(TimeoutError):
                await leg.wait_ended(5.0)
            if leg.media is not None:
                await leg.media.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await asyncio.sleep(0.2)
        await self.stream.stop()
        if self._task:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5.0)
        await self.ari.close()

    async def place(self, extension: str = "100", context: str = "from-internal",
                    room: str | None = None, caller_id: str = "Test Caller <5551000>") -> CallerLeg:
        """Dial ``extension`` (or ``room-NAME`` when a room is given) from a Local channel.

        The Local pair is asked for ulaw, as a phone would offer: without ``formats`` Asterisk
        made it slin192, and a room's softmix then mixed at 192 kHz for every caller."""
        exten = f"room-{room}" if room else extension
        tag = uuid.uuid4().hex[:12]
        leg = CallerLeg(self, local_id=f"testcall-{tag}-1", remote_id=f"testcall-{tag}-2")
        self.legs[leg.local_id] = leg
        await self.ari.originate(f"Local/{exten}@{context}", app=self.app,
                                 channel_id=leg.local_id, other_channel_id=leg.remote_id,
                                 caller_id=caller_id, formats="ulaw")
        # Watch the leg convener gets (its dialplan steps, the bridge it enters). The dialplan's
        # Answer() waits 500 ms for media on a Local channel, so this comes before Stasis().
        await self.ari.subscribe(self.app, f"channel:{leg.remote_id}")
        return leg
