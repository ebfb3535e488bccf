"""The telephony actions on one call, through ARI: the thin shell around ``transfer``.

``CallActions`` belongs to one caller. The caller's voice feature creates it (it needs the
room's conversation and the speech providers); the ``Call`` feeds it every ARI event of the
call first (``Call.hooks``), so it keeps seeing the dialled person's channel after the
caller's listener has stopped (once connected).

A warm transfer: the person's channel is created in our application (``channels/create``),
put in a bridge of its own and dialled; when it answers a voice leg in that bridge speaks the
one-sentence summary; then the caller leaves the room (their listener and private voice
stop) and joins the bridge. Everything is in the call's ledger, so whoever hangs up first, the
call's release frees the person's channel and the bridge. Busy, no answer, a failed dial: the
channel and bridge go at once, the caller is told and stays in the room with the agents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from convener.app.actions.agent_actions import (
    Action,
    DigitCollector,
    Refusal,
    Status,
    result_feature,
    result_text,
)
from convener.app.actions.person import wants_person
from convener.app.actions.transfer import Failure, Step, TransferMachine, summary_sentence
from convener.app.speaker import Speaker, Utterance
from convener.ari import events as ev
from convener.ari.errors import AriError
from convener.ari.rest import gone_ok

if TYPE_CHECKING:
    from convener.app.call import Call
    from convener.app.conversation import RoomConversation
    from convener.speech.tts import TtsProvider

log = logging.getLogger(__name__)

OUTCOME_VAR = "CONVENER_OUTCOME"  # what `convener call` reads: transferred:NAME, hung_up_by_convener, continued


async def set_outcome(call: Call, value: str) -> None:
    with contextlib.suppress(AriError):
        await call.ari.set_variable(call.id, OUTCOME_VAR, value)


class CallActions:
    def __init__(self, call: Call, conv: RoomConversation, tts: TtsProvider,
                 speak: Any, speaker_uri: str | None) -> None:
        self.call = call
        self.conv = conv
        self.tts = tts
        self.speak = speak  # Utterance -> Utterance: to this caller (their private speaker)
        self.speaker_uri = speaker_uri
        self.settings = call.app.config.transfer
        self.machine: TransferMachine | None = None
        self.peer_id = ""
        self.bridge_id = ""
        self.transfers = 0
        self._peer_events: asyncio.Queue[ev.Event] = asyncio.Queue()
        self._collector: DigitCollector | None = None
        self._collect_for: str | None = None
        self._collect_timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        call.hooks.append(self.on_event)
        # Lives as long as the call, not its voice: a transfer outlives the caller's listener.
        call.ledger.add("actions", call.id, self.close)

    # -- state ------------------------------------------------------------------------------

    @property
    def transferring(self) -> bool:
        """A transfer is ringing or connected: the caller's turns no longer go to agents."""
        return self.machine is not None and self.machine.state in ("dialling", "answered", "connected",
                                                                   "continued")

    def person_request(self, text: str) -> bool:
        return bool(self.settings.person_target) and wants_person(text)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    # -- events (from Call._handle, before the features) ------------------------------------

    def on_event(self, event: ev.Event) -> bool:
        """Returns True when the event is consumed (a DTMF key being collected)."""
        cid = event.channel_id
        if self.peer_id and cid == self.peer_id:
            if isinstance(event, ev.Dial | ev.ChannelDestroyed | ev.ChannelHangupRequest):
                self._peer_events.put_nowait(event)
                if self.machine is not None and self.machine.state == "connected" \
                        and isinstance(event, ev.ChannelDestroyed | ev.ChannelHangupRequest):
                    self._spawn(self._peer_left_after_connect(event))
            return False
        if cid == self.call.id and isinstance(event, ev.ChannelDtmfReceived):
            if self.machine is not None and self.machine.state == "connected":
                return True  # keys are for the person now, not for convener's DTMF 0
            if self._collector is not None:
                digits = self._collector.press(event.digit)
                if digits is not None:
                    self._finish_collect(digits)
                return True
        return False

    # -- agents' actions --------------------------------------------------------------------

    def run_agent_action(self, action: Action | Refusal, agent_uri: str, spoken: Utterance | None) -> None:
        """An agent's ``x-convener-action``, after its utterance (``spoken``) has been played."""
        if isinstance(action, Refusal):
            log.info("call %s: action %s from %s refused: %s %s", self.call.id, action.action or "?",
                     agent_uri, action.reason, action.detail)
            self.tell_agent(agent_uri, action.action, "refused", action.reason, action.detail)
            return
        if self.transferring:
            self.tell_agent(agent_uri, action.kind, "refused", "@busy", "a transfer is under way")
            return
        self._spawn(self._agent_action(action, agent_uri, spoken))

    async def _agent_action(self, action: Action, agent_uri: str, spoken: Utterance | None) -> None:
        if action.kind in ("hangup", "transfer", "collect") and spoken is not None:
            await self._played(spoken)
        if action.kind == "hangup":
            log.info("call %s: hang-up asked by %s", self.call.id, agent_uri)
            await set_outcome(self.call, "hung_up_by_convener")
            await self.call.hangup()
        elif action.kind == "transfer":
            # The agent's own words ("connecting you to sales") stand for "please hold".
            await self._transfer(action.target, requested_by=agent_uri,
                                 announce=spoken is None or not spoken.text.strip())
        elif action.kind == "dtmf":
            try:
                await self.call.ari.send_dtmf(self.call.id, action.digits)
                self.tell_agent(agent_uri, "dtmf", "done")
            except AriError as e:
                self.tell_agent(agent_uri, "dtmf", "failed", "@error", str(e))
        elif action.kind == "collect":
            self._start_collect(action, agent_uri)

    async def _played(self, utt: Utterance, timeout: float = 60.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(utt.done.wait(), timeout)
        await asyncio.sleep(0.25)  # the last frames leave the pacer and the jitter buffer

    def tell_agent(self, agent_uri: str, action: str, status: Status, reason: str = "",
                   detail: str = "") -> None:
        self.conv.session.tell_agent(agent_uri, result_text(action, status, reason, detail),
                                     {"x-convener-action-result": result_feature(action, status, reason, detail)})

    def _start_collect(self, action: Action, agent_uri: str) -> None:
        self._collector = DigitCollector(action.max_digits, action.terminator)
        self._collect_for = agent_uri
        self._collect_timer = self._spawn(self._collect_timeout(action.timeout))
        log.info("call %s: collecting up to %d digits for %s", self.call.id, action.max_digits, agent_uri)

    async def _collect_timeout(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._collector is not None:
            digits = self._collector.time_out()
            if digits is not None:
                self._finish_collect(digits, from_timer=True)

    def _finish_collect(self, digits: str, from_timer: bool = False) -> None:
        collector, self._collector = self._collector, None
        if self._collect_timer is not None and not from_timer:
            self._collect_timer.cancel()
        ended_by = collector.ended_by if collector else ""
        log.info("call %s: digits %r collected (%s)", self.call.id, digits, ended_by)
        if not digits:
            if self._collect_for:
                self.tell_agent(self._collect_for, "collect", "failed", "@timedOut", "no digits pressed")
            return
        self._spawn(self.conv.digits_turn(digits, self.speaker_uri))

    # -- transfer ---------------------------------------------------------------------------

    def transfer_to(self, name: str, requested_by: str | None = None, announce: bool = True) -> asyncio.Task[None]:
        """Start a transfer in a task of the call's actions (it outlives the caller's voice)."""
        return self._spawn(self._transfer(name, requested_by, announce))

    async def _transfer(self, name: str, requested_by: str | None = None, announce: bool = True) -> None:
        s = self.settings
        target = s.targets.get(name)
        if target is None:  # agents' and the person target's names were checked already
            log.warning("call %s: no transfer target %r", self.call.id, name)
            return
        label = s.label(name)
        self.transfers += 1
        m = self.machine = TransferMachine(name, kind=target.kind, summary=target.summary)
        step = m.start()
        if announce:
            await self._played(self.speak(Utterance(text=s.say_connecting.format(label=label),
                                                    label="convener")))
        if step.action == "continue":
            log.info("call %s: transfer to %s (dialplan %s,%s,%d)", self.call.id, name,
                     target.context, target.extension, target.priority)
            await set_outcome(self.call, f"transferred:{name}")
            await self.call.continue_in_dialplan(target.context, target.extension, target.priority)
            return
        try:
            await self._dial(target.endpoint, s.ring_seconds(name))
        except AriError as e:
            log.warning("call %s: dialling %s failed: %s", self.call.id, name, e)
            step = m._fail("failed")
            await self._returned(name, label, step.failure, requested_by)
            return
        loop = asyncio.get_running_loop()
        rings_out = loop.time() + s.ring_seconds(name) - 0.5
        deadline = rings_out + 5.5
        while m.state in ("dialling", "answered"):
            step = await self._next_step(m, deadline, rings_out)
            if step.action == "play_summary":
                await self._play_summary(name)
                step = self._peer_gone_meanwhile(m) or m.summary_played()
            if step.action == "connect":
                if requested_by:  # now: once the caller leaves, the room's floor may close
                    self.tell_agent(requested_by, "transfer", "done")
                await self._connect(name)
            elif step.action == "tell_caller":
                await self._returned(name, label, step.failure, requested_by)

    async def _dial(self, endpoint: str, ring: float) -> None:
        call, app = self.call, self.call.app
        self.peer_id = call.new_resource_id("peer")
        self.bridge_id = call.new_resource_id("xfer")
        await call.ari.create_bridge(self.bridge_id, type="mixing")
        call.ledger.add("bridge", self.bridge_id, lambda b=self.bridge_id: gone_ok(call.ari.destroy_bridge(b)))
        in_stasis = app.expect_stasis(self.peer_id)
        call.ledger.add("channel", self.peer_id, lambda p=self.peer_id: gone_ok(call.ari.hangup(p)))
        await call.ari.create_channel(endpoint, app=app.app_name, channel_id=self.peer_id, formats="ulaw")
        await asyncio.wait_for(in_stasis, 5.0)
        await call.ari.add_channel(self.bridge_id, self.peer_id)
        log.info("call %s: dialling %s (%s) for %.0f s", call.id, endpoint, self.peer_id, ring)
        await call.ari.dial(self.peer_id, timeout=max(1, round(ring)))

    async def _next_step(self, m: TransferMachine, deadline: float, rings_out: float) -> Step:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            event = await asyncio.wait_for(self._peer_events.get(), max(0.0, remaining))
        except TimeoutError:
            return m.timed_out()
        log.debug("call %s: %s: %s", self.call.id, self.peer_id, event)
        if isinstance(event, ev.Dial):
            return m.dial_status(event.dialstatus)
        cause = event.cause if isinstance(event, ev.ChannelDestroyed | ev.ChannelHangupRequest) else 0
        return m.peer_gone(cause, rang_out=asyncio.get_running_loop().time() >= rings_out)

    def _peer_gone_meanwhile(self, m: TransferMachine) -> Step | None:
        while not self._peer_events.empty():
            event = self._peer_events.get_nowait()
            if isinstance(event, ev.ChannelDestroyed | ev.ChannelHangupRequest):
                return m.peer_gone(event.cause)
        return None

    async def _play_summary(self, name: str) -> None:
        """The one-sentence summary, spoken into the transfer bridge (only the person is there)."""
        from convener.app.voice import RoomVoice

        call, app = self.call, self.call.app
        text = summary_sentence(self.conv.transcript, caller=self._caller_label())
        voice_id = call.new_resource_id("xvoice")
        voice = RoomVoice(call.ari, app.config, self.bridge_id, voice_id, app.expect_stasis(voice_id))
        speaker: Speaker | None = None
        try:
            await voice.open()
            speaker = Speaker(voice, self.tts, call.ari, self.bridge_id)
            utt = speaker.say(Utterance(text=text, label="convener"))
            await self._played(utt, timeout=30.0)
            log.info("call %s: summary for %s: %s", call.id, name, text)
            self.conv._log("convener", f"(to {name}) {text}")
        except (AriError, OSError, TimeoutError) as e:
            log.warning("call %s: summary not played (%s); connecting anyway", call.id, e)
        finally:
            if speaker is not None:
                await speaker.close()
            await voice.close()

    def _caller_label(self) -> str:
        return self.call.channel.caller.name or "caller"

    async def _connect(self, name: str) -> None:
        call = self.call
        await call.stop_features()  # the caller's listener and private voice: they leave the room
        # Shielded: if the caller hangs up now, the call's release must not cut the room's
        # clean-up (its voice leg and anchor) in the middle.
        call.ledger.forget("room", call.room)
        await asyncio.shield(call.app.rooms.leave(call.room, call.id))
        await call.ari.add_channel(self.bridge_id, call.id)
        await set_outcome(call, f"transferred:{name}")
        call.end_reason = f"transferred to {name}"
        log.info("call %s: connected to %s in bridge %s", call.id, name, self.bridge_id)

    async def _peer_left_after_connect(self, event: ev.Event) -> None:
        m = self.machine
        if m is None or m.peer_gone(getattr(event, "cause", 0)).action != "clean_up":
            return
        log.info("call %s: %s hung up; ending the call", self.call.id, m.target)
        await self.call.hangup()

    async def _returned(self, name: str, label: str, failure: Failure | None,
                        requested_by: str | None) -> None:
        call = self.call
        for kind, rid, release in (("channel", self.peer_id, call.ari.hangup),
                                   ("bridge", self.bridge_id, call.ari.destroy_bridge)):
            if rid:
                await gone_ok(release(rid))
                call.ledger.forget(kind, rid)
        self.peer_id = self.bridge_id = ""
        s = self.settings
        say = {"busy": s.say_busy, "no_answer": s.say_no_answer}.get(failure or "", s.say_failed)
        log.info("call %s: transfer to %s %s; the caller stays with the agents", call.id, name, failure)
        self.speak(Utterance(text=say.format(label=label), label="convener"))
        self.conv._log("convener", say.format(label=label))
        if requested_by:
            reason = {"busy": "@busy", "no_answer": "@noAnswer"}.get(failure or "", "@failed")
            self.tell_agent(requested_by, "transfer", "failed", reason, f"{name}: {failure}")

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.call.hooks.remove(self.on_event)
        for t in list(self._tasks):
            if t is not asyncio.current_task():
                t.cancel()
