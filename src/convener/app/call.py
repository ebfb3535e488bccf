"""One caller: the object that owns every Asterisk resource created for it.

A Call consumes its own event queue in its own task, so a slow call never stalls the event
reader or other calls. Whatever ends it (hangup, StasisEnd, continue to the dialplan, an error,
Asterisk vanishing, convener shutting down), ``release`` runs once and frees everything in the
ledger: features first (media, conversation), then the caller's place in the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from convener.app.resources import ResourceLedger
from convener.app.services import CallHost
from convener.ari import events as ev
from convener.ari.errors import AriError, AriNotFound
from convener.ari.models import Channel
from convener.ari.rest import AriClient, gone_ok
from convener.ops import metrics

log = logging.getLogger(__name__)


class CallFeature(Protocol):
    """Something a call runs once the caller is in the room (media, the conversation, ...)."""

    async def start(self, call: Call) -> None: ...

    def on_event(self, call: Call, event: ev.Event) -> None: ...

    async def stop(self, call: Call) -> None: ...


FeatureFactory = Callable[["Call"], CallFeature]


class Call:
    def __init__(self, app: CallHost, channel: Channel, room: str, *, adopted: bool = False) -> None:
        self.app = app
        # Found in our application by the resync (convener restarted or reconnected): the
        # conversation of its room may be resumed from the stored floor state.
        self.adopted = adopted
        self.ari: AriClient = app.ari
        self.channel = channel
        self.id = channel.id
        self.room = room
        self.log = logging.LoggerAdapter(log, {"call_id": self.id})
        self.ledger = ResourceLedger(f"call {self.id}")
        self.queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        self.features: list[CallFeature] = []
        self.task: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()
        self.hangup_seen = asyncio.Event()
        self.end_reason = ""
        self.stasis_start_at = time.monotonic()
        self.joined_at: float | None = None
        self._releasing = False
        # Called with every event of the call before the features; True consumes it (the
        # telephony actions: a transfer's dialled channel, DTMF keys being collected).
        self.hooks: list[Callable[[ev.Event], bool]] = []

    # -- identifiers ----------------------------------------------------------------------------

    def new_resource_id(self, kind: str) -> str:
        """An id for a channel or bridge this call creates; registered so events reach us."""
        rid = f"{self.app.resource_prefix}{kind}-{uuid.uuid4().hex[:12]}"
        self.app.owners[rid] = self
        return rid

    @property
    def setup_ms(self) -> float | None:
        if self.joined_at is None:
            return None
        return (self.joined_at - self.stasis_start_at) * 1000

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"call-{self.id}")

    def post(self, event: ev.Event | None) -> None:
        if isinstance(event, ev.StasisEnd | ev.ChannelHangupRequest | ev.ChannelDestroyed) \
                and event.channel_id == self.id:
            self.hangup_seen.set()  # known at once, even while the call task is busy setting up
        if not self.ended.is_set():
            self.queue.put_nowait(event)

    async def _run(self) -> None:
        try:
            await self._join()
            while not self._releasing:
                event = await self.queue.get()
                if event is None:
                    break
                await self._handle(event)
        except asyncio.CancelledError:
            self.end_reason = self.end_reason or "cancelled"
        except AriNotFound:
            self.end_reason = self.end_reason or "caller vanished"
        except Exception as e:
            if isinstance(e, AriError) and await self._caller_gone():
                # The caller hung up while the call was being set up: Asterisk then refuses to
                # bridge or snoop a channel that is going away (400 or 404). A normal end.
                self.end_reason = self.end_reason or "caller hung up during setup"
                self.log.info("call %s: caller hung up during setup (%s)", self.id, e)
            else:
                self.app.errors += 1
                self.end_reason = self.end_reason or f"error: {e}"
                self.log.exception("call %s failed", self.id)
        finally:
            await asyncio.shield(self._release())

    async def _caller_gone(self) -> bool:
        """Did the setup fail because the caller hung up? (its events may trail the error)"""
        if self.hangup_seen.is_set():
            return True
        try:
            await self.ari.channel(self.id)
        except AriNotFound:
            self.hangup_seen.set()  # known now: a second question need not ask Asterisk again
            return True
        except AriError:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hangup_seen.wait(), 3.0)
        return self.hangup_seen.is_set()

    async def _join(self) -> None:
        if self.channel.state != "Up":
            await self.ari.answer(self.id)
        await self.ari.set_variable(self.id, "CONVENER_ROOM", self.room)
        await self.app.rooms.join(self.room, self.id)
        self.ledger.add("room", self.room, lambda: self.app.rooms.leave(self.room, self.id))
        self.joined_at = time.monotonic()
        self.app.setup_times.append(self.setup_ms or 0.0)
        metrics.observe_call_setup((self.setup_ms or 0.0) / 1000)
        self.log.info("call %s (%s) joined room %s in %.1f ms", self.id, self.channel.caller.number,
                      self.room, self.setup_ms)
        for factory in self.app.feature_factories:
            feature = factory(self)
            self.features.append(feature)
            try:
                await feature.start(self)
            except AriError as e:
                if await self._caller_gone():
                    raise
                # The caller is still there but its media could not be set up (Asterisk refused a
                # snoop or lost a channel): rather than leave them in silence, hand them back to
                # the dialplan, which knows the fallback (an operator, voicemail).
                self.app.setup_failures += 1
                self.log.error("call %s: setup failed (%s); handing the caller back to the dialplan",
                               self.id, e)
                await self.continue_in_dialplan()
                return

    async def _handle(self, event: ev.Event) -> None:
        consumed = False
        for hook in list(self.hooks):
            try:
                consumed = hook(event) or consumed
            except Exception:
                self.app.errors += 1
                self.log.exception("hook %r failed on %s", hook, event.type)
        for f in self.features:
            try:
                f.on_event(self, event)
            except Exception:
                self.app.errors += 1
                self.log.exception("feature %r failed on %s", f, event.type)
        if event.channel_id != self.id:
            if isinstance(event, ev.ChannelDestroyed):
                self.ledger.forget("channel", event.channel_id or "")
            return
        if isinstance(event, ev.StasisEnd):
            self.end("left Stasis")
        elif isinstance(event, ev.ChannelHangupRequest | ev.ChannelDestroyed):
            self.end("caller hung up")
        elif isinstance(event, ev.ChannelDtmfReceived) and not consumed:
            digit = self.app.config.calls.dtmf_continue
            if digit and event.digit == digit:
                self.log.info("call %s: DTMF %s, back to the dialplan", self.id, digit)
                await gone_ok(self.ari.set_variable(self.id, "CONVENER_OUTCOME", "continued"))
                await self.continue_in_dialplan()

    def end(self, reason: str) -> None:
        """Ask the call to end; release happens in the call's own task."""
        if not self.end_reason:
            self.end_reason = reason
        self._releasing = True
        self.queue.put_nowait(None)

    async def continue_in_dialplan(self, context: str | None = None, extension: str | None = None,
                                   priority: int | None = None) -> None:
        """Hand the caller back to the dialplan: at the next priority (operator fallback), or
        at ``context``/``extension``/``priority`` (a dialplan transfer target)."""
        where = f"{context},{extension},{priority or 1}" if context else "the dialplan"
        self.end_reason = self.end_reason or f"continued to {where}"
        await self._stop_features()
        await self.ledger.release_all()
        await gone_ok(self.ari.continue_in_dialplan(self.id, context, extension,
                                                    priority if context else None))
        self.end(f"continued to {where}")

    async def hangup(self) -> None:
        self.end_reason = self.end_reason or "hung up by convener"
        await gone_ok(self.ari.hangup(self.id))
        self.end(self.end_reason)

    async def stop_features(self) -> None:
        """Stop what runs for the caller (media, voice) while the call itself goes on."""
        await self._stop_features()

    async def _stop_features(self) -> None:
        for f in reversed(self.features):
            try:
                await asyncio.wait_for(f.stop(self), 5.0)
            except Exception:
                self.log.exception("feature %r failed to stop", f)
        self.features.clear()

    async def _release(self) -> None:
        if self.ended.is_set():
            return
        self._releasing = True
        try:
            await self._stop_features()
            await self.ledger.release_all()
        except AriError as e:
            self.log.warning("call %s: release: %s", self.id, e)
        finally:
            self.ended.set()
            self.app.forget(self)
            self.log.info("call %s ended: %s", self.id, self.end_reason or "released")

    async def shutdown(self, continue_caller: bool = True) -> None:
        """convener is stopping: free everything and give the caller back to the dialplan."""
        self.end_reason = self.end_reason or "convener shutting down"
        if continue_caller and not self.ended.is_set():
            await self._stop_features()
            await self.ledger.release_all()
            with contextlib.suppress(AriError):
                await self.ari.continue_in_dialplan(self.id)
        self.end(self.end_reason)
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self.task), 10.0)
