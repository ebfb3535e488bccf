"""The Stasis application: routes ARI events to calls, resyncs after reconnects, shuts down clean.

Routing: every event that names a channel goes to the call that owns the channel (the caller's
own channel, or a snoop / external media channel the call created with an id from
``Call.new_resource_id``). A StasisStart for a channel nobody owns starts a new call. After a
reconnect the application compares what Asterisk has with what it tracks: calls whose caller is
gone are released, our channels and bridges that no live call owns are torn down, and callers
still in the application that no call owns are adopted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from convener.app.call import Call, FeatureFactory
from convener.app.rooms import Room, Rooms, parse_room
from convener.app.voice import RoomVoice
from convener.ari import events as ev
from convener.ari.backoff import Backoff
from convener.ari.errors import AriError
from convener.ari.rest import AriClient, gone_ok
from convener.ari.stream import EventStream, StreamState
from convener.config import Config
from convener.ops.console.feed import LiveFeed
from convener.ops.console.live import turn_view
from convener.timings import TurnTimings

if TYPE_CHECKING:
    from convener.app.conversation import Speech

log = logging.getLogger(__name__)

ROOM_VAR = "CONVENER_ROOM"


class ConvenerApp:
    def __init__(self, config: Config, feature_factories: list[FeatureFactory] | None = None,
                 ari: AriClient | None = None) -> None:
        self.config = config
        s = config.ari
        self.ari = ari or AriClient.from_settings(s)
        self.app_name = s.app
        self.resource_prefix = f"convener-{s.app}-"
        self.rooms = Rooms(self.ari, s.app, config.calls.bridge_type, config.calls.allowed_rooms,
                           config=config, expect_stasis=self.expect_stasis)
        self.calls: dict[str, Call] = {}
        self.owners: dict[str, Call] = {}
        self.feature_factories: list[FeatureFactory] = list(feature_factories or [])
        self.stream = EventStream(
            s.events_url, s.app, s.user, s.password, on_event=self.on_event,
            on_connect=self.on_connect, on_disconnect=self._on_disconnect,
            ping_interval=s.ping_interval,
            backoff=Backoff(s.reconnect_initial, s.reconnect_max),
            verify_tls=s.verify_tls, ca_file=s.ca_file)
        self.errors = 0
        self.calls_total = 0
        self.setup_times: collections.deque[float] = collections.deque(maxlen=10000)
        self.resyncs = 0
        self.barge_ins = 0
        self.setup_failures = 0  # callers handed back to the dialplan because setup failed
        from convener.ofp.endpoint import SessionRegistry

        self.ofp_sessions = SessionRegistry()  # live conversations, for the OFP endpoint
        self.transcripts: Any = None  # ops TranscriptWriter when transcripts are kept
        self.feed = LiveFeed()  # transcript lines and turns as they happen, for the console
        self.turns: collections.deque[tuple[TurnTimings, str]] = collections.deque(maxlen=1000)
        self.on_call_started: list[Callable[[Call], None]] = []
        self._resync_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stasis_waiters: dict[str, asyncio.Future[None]] = {}

    def enable_voice(self, speech: Speech) -> None:
        """Run the spoken conversation on every call (speech providers built and warmed)."""
        from convener.app.conversation import CallerVoice, close_room_conversation

        self.feature_factories.append(lambda call: CallerVoice(self, speech))
        self.rooms.on_room_closing.append(close_room_conversation)

    def agents_health(self) -> dict[str, Any]:
        """Health of the configured agents as the live conversations see them (for /health)."""
        out: dict[str, Any] = {n: {"state": "unknown", "url": a.url}
                               for n, a in self.config.ofp.agents.items()}
        for room in self.rooms.rooms.values():
            conv = room.state.get("conversation")
            directory = getattr(getattr(conv, "session", None), "directory", None)
            for entry in getattr(directory, "entries", []):
                h = entry.health
                out[entry.name] = {"state": h.state, "url": entry.url, "last_error": h.last_error,
                                   "last_latency_ms": h.last_latency_ms}
        return out

    def record_turn(self, timings: TurnTimings, text: str) -> None:
        from convener.ops import metrics

        metrics.observe_turn(timings)
        self.turns.append((timings, text))
        self.feed.publish({"type": "turn", **turn_view(timings, text)})
        log.info("turn %s %r: %s", timings.turn_id, text[:60], timings.breakdown_ms())

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> StreamState:
        """Run until ``stop()`` (or until another client takes the application name)."""
        try:
            return await self.stream.run()
        finally:
            await self.shutdown()

    async def stop(self) -> None:
        await self.stream.stop()

    async def shutdown(self) -> None:
        calls = list(self.calls.values())
        if calls:
            log.info("shutting down: releasing %d call(s)", len(calls))
        await asyncio.gather(*(c.shutdown() for c in calls), return_exceptions=True)
        for t in list(self._tasks):
            t.cancel()
        await self.ari.close()

    @property
    def ready(self) -> bool:
        return self.stream.state is StreamState.CONNECTED

    # -- event routing --------------------------------------------------------------------------

    def expect_stasis(self, channel_id: str) -> asyncio.Future[None]:
        """A future resolved when ``channel_id`` enters our application (StasisStart).

        Register it before creating the channel: a channel can be added to a bridge only once
        it is in the application, and external media channels get there asynchronously.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stasis_waiters[channel_id] = fut
        fut.add_done_callback(lambda _f: self._stasis_waiters.pop(channel_id, None))
        return fut

    async def room_voice(self, room: Room) -> RoomVoice:
        """The room's voice leg (opened on first use)."""
        return await self.rooms.voice(room, self.config, self.expect_stasis)

    def on_event(self, event: ev.Event) -> None:
        cid = event.channel_id
        if isinstance(event, ev.StasisStart) and cid in self._stasis_waiters:
            waiter = self._stasis_waiters[cid]
            if not waiter.done():
                waiter.set_result(None)
        owner = self.owners.get(cid) if cid else None
        if owner is not None:
            owner.post(event)
            return
        if isinstance(event, ev.StasisStart) and event.application == self.app_name:
            if event.channel.id in self.rooms.channel_ids:
                return  # a room's voice leg entering the application
            if event.channel.id.startswith(self.resource_prefix):
                # A resource channel whose call already ended (a race with hangup): drop it.
                self._spawn(gone_ok(self.ari.hangup(event.channel.id)))
                return
            self._start_call(event.channel, event.args)

    def _start_call(self, channel, args: tuple[str, ...], *, adopted: bool = False) -> Call | None:
        room = parse_room(args, self.config.calls.default_room)
        try:
            self.rooms.check_name(room)
        except ValueError as e:
            log.warning("call %s rejected: %s; handing it back to the dialplan", channel.id, e)
            self._spawn(gone_ok(self.ari.continue_in_dialplan(channel.id)))
            return None
        call = Call(self, channel, room, adopted=adopted)
        self.calls[call.id] = call
        self.owners[call.id] = call
        self.calls_total += 1
        call.start()
        for cb in self.on_call_started:
            cb(call)
        return call

    def forget(self, call: Call) -> None:
        self.calls.pop(call.id, None)
        for rid in [k for k, v in self.owners.items() if v is call]:
            del self.owners[rid]

    def _spawn(self, aw: Awaitable[object]) -> None:
        async def guarded() -> None:
            try:
                await aw
            except AriError as e:
                log.info("background ARI request failed: %s", e)

        t = asyncio.create_task(guarded())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _on_disconnect(self) -> None:
        if self.stream.state in (StreamState.STOPPED, StreamState.REPLACED) or self.stream._stop.is_set():
            return
        log.warning("ARI events disconnected; %d call(s) waiting for the reconnect", len(self.calls))

    # -- resync ---------------------------------------------------------------------------------

    async def on_connect(self, first: bool) -> None:
        """After every (re)connect: make our books and Asterisk agree."""
        async with self._resync_lock:
            try:
                await self._resync(first)
            except AriError as e:
                log.warning("resync after connect failed: %s", e)

    async def _resync(self, first: bool) -> None:
        self.resyncs += 1
        channels = {c.id: c for c in await self.ari.channels()}
        bridges = {b.id: b for b in await self.ari.bridges()}
        app = await self.ari.application(self.app_name)
        # 1. Calls whose caller vanished while we were away: release them.
        for call in list(self.calls.values()):
            if call.id not in channels:
                log.info("resync: caller of call %s is gone", call.id)
                call.end("caller gone during ARI outage")
        await self.rooms.forget_missing(set(bridges))
        # 2. Our channels that no live call owns: hang up.
        for cid in channels:
            if cid.startswith(self.resource_prefix) and cid not in self.owners \
                    and cid not in self.rooms.channel_ids:
                log.info("resync: hanging up orphan channel %s", cid)
                await gone_ok(self.ari.hangup(cid))
        # 3. Our bridges that no live call or room owns: destroy.
        for bid in bridges:
            if bid.startswith(self.resource_prefix) and bid not in self.owners \
                    and not self.rooms.owns(bid):
                log.info("resync: destroying orphan bridge %s", bid)
                await gone_ok(self.ari.destroy_bridge(bid))
        # 4. Callers still in our application that no call owns (e.g. convener restarted): adopt.
        adopted_rooms: set[str] = set()
        for cid in app.channel_ids:
            ch = channels.get(cid)
            if ch is None or cid.startswith(self.resource_prefix) or cid in self.owners:
                continue
            room = ""
            with contextlib.suppress(AriError):
                room = await self.ari.get_variable(cid, ROOM_VAR)
            log.info("resync: adopting caller %s (room %s)", cid, room or "default")
            args = (f"room={room}",) if room else ()
            adopted_rooms.add(parse_room(args, self.config.calls.default_room))
            self._start_call(ch, args, adopted=True)
        # 5. After a start: stored conversations of rooms nobody was adopted into are over.
        if first and self.transcripts is not None and hasattr(self.transcripts, "end_unresumed"):
            self.transcripts.end_unresumed(adopted_rooms)
