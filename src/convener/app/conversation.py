"""The spoken conversation: caller audio → turns → text → the floor → agents → speech.

``RoomConversation`` (one per room) holds the Open Floor session (the same ``FloorSession``
that ``convener chat`` uses), the room's voice leg and a ``Speaker``. ``CallerVoice`` (one per
call, a CallFeature) listens to one caller, detects turns with the VAD, recognises them, hands
the text to the room's conversation and stops the room's reply when the caller barges in.

Every turn records its timing marks (``convener.timings``): end of caller speech, ASR final,
envelope sent, reply received, first TTS chunk, first audio frame out. The last turns are kept
in ``ConvenerApp.turns`` and logged, so benchmarks and users see where time goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from convener.app.listener import CallerListener
from convener.app.room_policy import may_interrupt
from convener.app.rooms import Room
from convener.app.services import ConversationServices
from convener.app.speaker import Speaker, Utterance
from convener.app.speculation import should_speculate
from convener.app.voice import PrivateVoice
from convener.ari import events as ev
from convener.audio import AudioFrame
from convener.config import Config
from convener.media.turns import SpeechStarted, TurnDetector, TurnEnded, TurnPaused
from convener.ops import metrics
from convener.speech.correction import correct_text
from convener.speech.turns.decision import wait_unrouted
from convener.speech.turns.flux import Cancel, Final, FluxTurnGate, Prepare
from convener.timings import TurnTimings

if TYPE_CHECKING:
    from convener.app.actions.runner import CallActions
    from convener.app.call import Call
    from convener.ofp.floor_state import FloorState
    from convener.ofp.session import AgentReply, FloorSession
    from convener.speech.asr import AsrProvider, FinalTranscript
    from convener.speech.bias import BiasContext
    from convener.speech.tts import TtsProvider
    from convener.speech.turns import TurnCompletion

log = logging.getLogger(__name__)

STATE_KEY = "conversation"


class Speech:
    """The process's speech providers, built once and warmed at start."""

    def __init__(self, config: Config) -> None:
        from convener.speech.registry import build_asr, build_tts
        from convener.speech.tts_cache import cached
        from convener.speech.turns import build_completion

        s = config.speech
        self.settings = s
        self.media_format = config.media.format
        self.asr: AsrProvider = build_asr(s)
        self.tts: TtsProvider = cached(build_tts(s), s.tts_cache_mb)
        # End of turn by completion (None: the fixed hang-over); see convener.speech.turns.
        self.turns: TurnCompletion | None = build_completion(config.media,
                                                             transcripts=hasattr(self.asr, "transcribe_pcm"))

    async def warm(self) -> None:
        await asyncio.gather(self.asr.warm(), self.tts.warm())
        # The VAD's shared model (silero-batched: one ONNX session, ~100 ms to build) is made
        # now, not on the event loop when the first caller's turn detector asks for it.
        rate = 16000 if self.media_format == "slin16" else 8000
        await asyncio.to_thread(lambda: self.vad(rate).close())

    def vad(self, sample_rate: int) -> Any:
        from convener.speech.registry import build_vad

        return build_vad(self.settings, sample_rate)


class RoomConversation:
    def __init__(self, app: ConversationServices, room: Room, session: FloorSession, speaker: Speaker) -> None:
        self.app = app
        self.room = room
        self.session = session
        self.speaker = speaker
        self.transcript: list[tuple[float, str, str]] = []  # (time, who, text)
        self.callers = 0
        # speakerUri -> that caller's private speaker (OFP private utterances, the greeting).
        self.private: dict[str, Speaker] = {}
        self._turns: asyncio.Lock = asyncio.Lock()
        self.last_reply_for: str | None = None  # the caller whose turn was answered last
        self.resumed: FloorState | None = None  # the stored state this conversation went on from
        # speakerUri -> that caller's telephony actions (transfer, hang-up, digits; app.actions).
        self.actions: dict[str, CallActions] = {}
        speaker.on_spoken.append(self._spoken)
        app.ofp_sessions.add(session)
        # Replies caused by envelopes external agents POST to our endpoint are spoken too.
        self._unsolicited = asyncio.create_task(self._speak_unsolicited())

    @classmethod
    async def open(cls, app: ConversationServices, room: Room, speech: Speech, *,
                   adopted: bool = False) -> RoomConversation:
        """The room's conversation: resumed from its stored floor state when its caller was
        adopted after a restart (``convener.ofp.floor_state``), else a new one."""
        from convener.ofp.session import FloorSession

        state = await _stored_state(app, room) if adopted else None
        voice = await app.room_voice(room)
        speaker = Speaker(voice, speech.tts, app.ari, room.bridge_id)
        session: FloorSession | None = None
        try:
            if state is not None:
                session = FloorSession.from_config(app.config, conversation_id=state.conversation_id)
                try:
                    await session.resume(state)
                    log.info("room %s: conversation %s resumed (floor: %s)", room.name,
                             state.conversation_id, state.floor_holder or "nobody")
                except Exception:
                    log.exception("room %s: resuming conversation %s failed; starting afresh", room.name,
                                  state.conversation_id)
                    await session.close()
                    session, state = None, None
            if session is None:
                session = FloorSession.from_config(app.config)
                await session.start(caller_name=app.config.voice.caller_name)
        except BaseException:
            await speaker.close()
            raise
        if app.transcripts is not None:
            app.transcripts.start_conversation(session.conversation_id, "", room.name)
        if app.config.ops.record_calls:
            await _record(app, room, session.conversation_id)
        conv = cls(app, room, session, speaker)
        conv.resumed = state
        conv.save_state()
        return conv

    def save_state(self) -> None:
        """Store the floor state (fire and forget: the writer's task does the I/O)."""
        writer = self.app.transcripts
        if writer is not None and hasattr(writer, "save_floor_state"):
            writer.save_floor_state(self.session.conversation_id, self.room.name,
                                    self.session.floor_state(self.room.name).to_json())

    def _log(self, who: str, text: str, floor_holder: str | None = None) -> None:
        at = time.time()
        self.transcript.append((at, who, text))
        writer = self.app.transcripts
        if writer is not None:
            writer.add_turn(self.session.conversation_id, who, text, at, floor_holder=floor_holder)
        feed = getattr(self.app, "feed", None)
        if feed is not None:
            feed.publish({"type": "line", "room": self.room.name, "conversation_id": self.session.conversation_id,
                          "who": who, "text": text, "at": at, "floor_holder": floor_holder})

    def _spoken(self, utt: Utterance) -> None:
        heard = utt.heard_text()
        if heard:
            self._log(utt.label or "convener", heard, floor_holder=utt.label or None)
        if utt.report is not None and utt.report.interrupted and utt.label:
            self.session.barge_in(heard)
            self.save_state()

    def bias(self) -> BiasContext | None:
        """What the recogniser should expect now: vocabulary, agents' names/keyphrases, last question."""
        s = self.app.config.speech
        if not s.bias:
            return None
        from convener.speech.bias import conversation_bias

        policy = self.session.policy
        return conversation_bias(self.session.directory.manifests(), policy.history, policy.humans, s.vocabulary)

    def say(self, text: str, label: str = "convener", timings: TurnTimings | None = None) -> Utterance:
        return self.speaker.say(Utterance(text=text, label=label, timings=timings))

    async def turn(self, text: str, speaker_uri: str | None, who: str, timings: TurnTimings) -> None:
        """One caller turn through the floor; replies are spoken as soon as each arrives."""
        self._log(who, text)
        self.last_reply_for = speaker_uri
        filler = asyncio.create_task(self._filler(timings))
        try:
            async with self._turns:
                first = True
                async for reply in self.session.user_turn(text, speaker_uri=speaker_uri):
                    if first:
                        if reply.envelope_sent:  # 0.0: convener's own reply, nothing was posted
                            timings.mark("envelope_sent", reply.envelope_sent)
                        timings.mark("reply_received", reply.reply_received or time.monotonic())
                        first = False
                    self._speak_reply(reply, timings, reply_for=speaker_uri)
                    timings = TurnTimings(timings.turn_id + "+")  # later replies: own record
        finally:
            filler.cancel()
            self.save_state()

    def _speak_reply(self, reply: AgentReply, timings: TurnTimings | None,
                     reply_for: str | None = None) -> None:
        utt: Utterance | None = Utterance(text=reply.text or "", ssml=reply.ssml,
                                          audio_urls=tuple(reply.audio_urls or ()),
                                          label=reply.agent_name, timings=timings,
                                          reply_for=reply_for, event_id=reply.event_id)
        if reply.private_to:
            # A private utterance is played on its caller's channel only; to someone not (or
            # no longer) in the room it is not spoken at all.
            private = self.private.get(reply.private_to)
            if private is None:
                log.info("private utterance to %s: not in room %s, not spoken", reply.private_to,
                         self.room.name)
                utt = None
            else:
                private.say(utt)
        else:
            self.speaker.say(utt)
        if reply.features and not reply.from_convener:
            self._agent_action(reply, utt, reply.private_to or reply_for)

    def _agent_action(self, reply: AgentReply, spoken: Utterance | None, caller: str | None) -> None:
        """An ``x-convener-action`` on an agent's utterance (docs/actions.md)."""
        from convener.app.actions.agent_actions import Refusal, parse_action

        action = parse_action(reply.features, self.app.config.transfer.targets)
        if action is None:
            return
        actions = self.actions.get(caller) if caller else None
        if actions is None and len(self.actions) == 1:
            actions = next(iter(self.actions.values()))  # one caller in the room: theirs
        if actions is None:
            log.info("action from %s: no caller to act on", reply.agent_name)
            self.session.tell_agent(reply.speaker_uri, "convener: action refused @noCaller.", {})
            return
        if isinstance(action, Refusal) or action.kind != "transfer" or self.callers <= 1 \
                or caller is not None:
            actions.run_agent_action(action, reply.speaker_uri, spoken)
        else:
            actions.run_agent_action(Refusal("transfer", "@ambiguous", "name the caller: several are in the room"),
                                     reply.speaker_uri, spoken)

    async def digits_turn(self, digits: str, speaker_uri: str | None) -> None:
        """Keys the caller pressed for an agent's ``collect``: the caller's next utterance."""
        timings = TurnTimings(f"dtmf-{int(time.monotonic() * 1000)}")
        try:
            await self.turn(digits, speaker_uri, "caller", timings)
        except Exception:
            log.exception("digits turn failed")

    async def _filler(self, timings: TurnTimings) -> None:
        wait = self.app.config.voice.filler_after_ms / 1000
        if not self.app.config.voice.filler or wait <= 0:
            return
        await asyncio.sleep(wait)
        if "first_audio_out" not in timings.marks and not self.speaker.speaking:
            self.say(self.app.config.voice.filler, label="")

    async def _speak_unsolicited(self) -> None:
        async for reply in self.session.unsolicited():
            if not self.session.streaming(reply):  # its stream was cut while it waited here
                log.info("follow-up of %s not spoken: the caller barged in", reply.agent_name)
                continue
            self._speak_reply(reply, None)
            self.save_state()

    async def close(self) -> None:
        self.app.ofp_sessions.remove(self.session)
        self._unsolicited.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._unsolicited
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.session.close(), 3.0)
        await self.speaker.close()
        if self.app.transcripts is not None:
            self.app.transcripts.end_conversation(self.session.conversation_id, None, "room closed")


async def _record(app: ConversationServices, room: Room, conversation_id: str) -> None:
    """Start the room's recording (``ops.record_calls``); a refusal is logged, the call goes on."""
    from convener.ari.errors import AriError
    from convener.ops.console.recordings import recording_name

    name = recording_name(conversation_id)
    try:
        await app.ari.record_bridge(room.bridge_id, name)
        log.info("room %s: recording as %s", room.name, name)
    except AriError as e:
        log.warning("room %s: recording could not start (%s); the call goes on unrecorded", room.name, e)


class CallerVoice:
    """CallFeature: one caller's side of the spoken conversation."""

    def __init__(self, app: ConversationServices, speech: Speech) -> None:
        self.app = app
        self.speech = speech
        self.listener = CallerListener(on_frame=self._on_frame)
        self.conversation: RoomConversation | None = None
        self.speaker_uri: str | None = None
        self.detector: TurnDetector | None = None
        # (frame, time.monotonic() when it arrived): the lag of each frame is measured, and the
        # turn marks are put on the arrival clock, not on when the loop got round to the frame.
        self._frames: asyncio.Queue[tuple[AudioFrame, float] | None] = asyncio.Queue(maxsize=500)
        self._worker: asyncio.Task[None] | None = None
        self._turn_tasks: set[asyncio.Task[None]] = set()
        self._asr_session: Any = None
        self._vad: Any = None
        self._turn_no = 0
        self._voiced_s = 0.0  # continuous confident speech, for barge-in
        self.private_voice: PrivateVoice | None = None
        self.private_speaker: Speaker | None = None
        # A decode started during the hang-over: (speech_end it covers, task).
        self._spec: tuple[float, asyncio.Task[FinalTranscript]] | None = None
        self.speculative_hits = 0
        self._spec_dropped = 0  # speculations of this utterance dropped because the caller went on
        self._skew = 0.0  # real clock minus media time of the last frame
        self._flux: FluxTurnGate | None = None
        self._flux_wait: asyncio.Future[str] | None = None  # our VAD ended the turn: Flux's text
        self.actions: CallActions | None = None

    async def start(self, call: Call) -> None:
        room = self.app.rooms.rooms[call.room]
        conv = room.state.get(STATE_KEY)
        if conv is None:
            lock = room.state.setdefault("lock", asyncio.Lock())
            async with lock:
                conv = room.state.get(STATE_KEY)
                if conv is None:
                    conv = await RoomConversation.open(self.app, room, self.speech,
                                                       adopted=getattr(call, "adopted", False))
                    room.state[STATE_KEY] = conv
        self.conversation = conv
        name = call.channel.caller.name or self.app.config.voice.caller_name
        conv.callers += 1
        if conv.callers == 1 and conv.session.caller_uri is not None:
            self.speaker_uri = conv.session.caller_uri  # the human the session started with
        else:  # several humans in one room: each has a speakerUri of its own
            self.speaker_uri = conv.session.add_human(name=name, caller_id=call.channel.caller.number)
        call.speaker_uri = self.speaker_uri  # type: ignore[attr-defined]
        await self.listener.start(call)
        assert self.listener.transport is not None
        self.private_voice = PrivateVoice(self.listener.transport, self.app.config, call.id)
        self.private_speaker = Speaker(self.private_voice, self.speech.tts, self.app.ari,
                                       conv.room.bridge_id, channel_id=call.id)
        self.private_speaker.on_spoken.append(conv._spoken)
        conv.private[self.speaker_uri] = self.private_speaker
        from convener.app.actions.runner import CallActions

        self.actions = CallActions(call, conv, self.speech.tts, self.private_speaker.say, self.speaker_uri)
        conv.actions[self.speaker_uri] = self.actions
        rate = self.listener.transport.sample_rate
        self._vad = self.speech.vad(rate)
        if not hasattr(self.speech.asr, "transcribe_pcm"):
            self._asr_session = await self.speech.asr.open_session(rate, bias=conv.bias())
            if getattr(self._asr_session, "turn_events", False):  # Flux decides the end of turn
                self._flux = FluxTurnGate()
                self._spawn(self._follow_flux(call))
        self.detector = TurnDetector(self._vad, self.app.config.media,
                                     completion=self.speech.turns is not None or self._flux is not None)
        self._worker = asyncio.create_task(self._work(call), name=f"voice-{call.id}")
        if getattr(call, "adopted", False):
            self._welcome_back(conv)
        elif self.app.config.voice.greeting:
            if self.app.config.calls.room_anchor:
                # To the caller who joins only: the others in the room are mid-conversation.
                self.private_speaker.say(Utterance(text=self.app.config.voice.greeting,
                                                   label="convener"))
            else:  # a whisper needs softmix's steady frames to ride on: say it to the room
                conv.say(self.app.config.voice.greeting)

    def _welcome_back(self, conv: RoomConversation) -> None:
        """An adopted caller (convener restarted): one sentence, then the last question again."""
        from convener.ofp.floor_state import LOST_YOU, resume_prompt

        assert self.private_speaker is not None
        lines = resume_prompt(conv.resumed) if conv.resumed is not None else [(LOST_YOU, None)]
        if conv.resumed is None and self.app.config.voice.greeting:
            lines.append((self.app.config.voice.greeting, None))
        for text, uri in lines:
            ident = conv.session.floor.identification(uri) if uri else None
            label = ident.conversational_name if ident is not None and ident.conversational_name else "convener"
            utt = Utterance(text=text, label=label if uri else "convener")
            if self.app.config.calls.room_anchor:
                self.private_speaker.say(utt)
            else:
                conv.speaker.say(utt)
        log.info("call adopted into room %s: %s", conv.room.name, " / ".join(t for t, _ in lines))

    def _on_frame(self, frame: AudioFrame) -> None:
        try:
            self._frames.put_nowait((frame, time.monotonic()))
        except asyncio.QueueFull:
            log.warning("voice: frame queue full, dropping a frame")

    async def _work(self, call: Call) -> None:
        assert self.detector is not None and self.conversation is not None
        while True:
            item = await self._frames.get()
            if item is None:
                return
            frame, arrived = item
            metrics.voice_frame_lag(time.monotonic() - arrived)
            if self._asr_session is not None:
                await self._asr_session.feed(frame.pcm)
            events = self.detector.process(frame)
            # Frame times are estimated from RTP sequence numbers and may run up to 100 ms off
            # the clock; turn marks are put on the real clock (when the frame arrived) with this.
            self._skew = arrived - (frame.timestamp + frame.duration)
            v = self.app.config.voice
            if self.detector.last_probability >= v.barge_in_threshold:
                self._voiced_s += frame.duration
                if self._voiced_s * 1000 >= v.barge_in_ms and self._voiced_s - frame.duration < v.barge_in_ms / 1000:
                    self._barge_in(call, frame.timestamp + frame.duration - self._voiced_s)
            else:
                self._voiced_s = 0.0
            self._speculate()
            for event in events:
                if isinstance(event, SpeechStarted):
                    self._barge_in(call, event.at)
                elif isinstance(event, TurnPaused) and self.speech.turns is not None and self._flux is None:
                    self._spawn(self._decide(call, event))
                elif isinstance(event, TurnEnded):
                    self._ended(call, event, event.paused)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._turn_tasks.add(t)
        t.add_done_callback(self._turn_tasks.discard)

    def _ended(self, call: Call, event: TurnEnded, decided: TurnPaused | None = None,
               text: asyncio.Future[str] | None = None) -> None:
        self._turn_no += 1
        spec = self._spec
        self._spec = None
        self._spec_dropped = 0
        early = text or (spec[1] if spec is not None and abs(spec[0] - event.speech_end) < 1e-6 else None)
        if spec is not None and early is None:
            spec[1].cancel()
        self._spawn(self._turn(call, event, f"{call.id}-{self._turn_no}", early, self._skew, decided))

    async def _decide(self, call: Call, pause: TurnPaused) -> None:
        """Short VAD stop: has the caller finished? Yes → end the turn now; no → keep listening."""
        comp = self.speech.turns
        assert comp is not None and self.detector is not None
        spec = self._spec if self._spec is not None and abs(self._spec[0] - pause.speech_end) < 1e-6 else None

        async def audio() -> float | None:
            if comp.audio is None:
                return None
            return await asyncio.to_thread(comp.audio.probability, pause.audio, pause.sample_rate)

        async def text() -> FinalTranscript | None:
            if comp.text is None:
                return None
            task = spec[1] if spec is not None else self._speculate(force=True)
            return None if task is None else await asyncio.shield(task)

        try:
            audio_p, heard = await asyncio.gather(audio(), text())
        except asyncio.CancelledError:
            if (task := asyncio.current_task()) is not None and task.cancelling():
                raise
            return  # the speculation was dropped: the caller spoke again
        except Exception as e:
            log.warning("call %s: turn-completion decision failed (%s); waiting for silence", call.id, e)
            return
        transcript = heard.text if heard is not None else None
        decision = comp.decide(audio_p, transcript, look=pause.look,
                               confidence=heard.confidence if heard is not None else None,
                               last_word=heard.last_word_confidence if heard is not None else None)
        if transcript and comp.asks_routing(decision, pause.look) and await self._fits_nobody(call, transcript):
            decision = wait_unrouted(decision)
        log.debug("call %s: look %d after %r: %s", call.id, pause.look, transcript, decision.describe())
        if decision.complete and pause.look > 1 and self.detector.confirm_s > 0:
            self.detector.end_soon(pause)  # a later look: the turn ends after turn_confirm_ms more of silence
        elif decision.complete:
            ended = self.detector.end_now(pause)
            if ended is not None:
                self._ended(call, ended, pause)

    async def _fits_nobody(self, call: Call, transcript: str) -> bool:
        """Would these words, as the turn, be told "none of our agents can help"? (False on doubt.)"""
        if self.conversation is None:
            return False
        try:
            return await self.conversation.session.fits_nobody(self._correct(None, transcript))
        except Exception as e:  # a routing fault must not hold a turn: it ends as decided
            log.warning("call %s: could not check the routing of %r (%s)", call.id, transcript, e)
            return False

    def _barge_in(self, call: Call, onset: float) -> None:
        conv = self.conversation
        if conv is None or not self.app.config.voice.barge_in:
            return
        cut: list[Utterance] = []
        playing = {u.id for s in (conv.speaker, self.private_speaker) if s is not None and (u := s.current)}
        if self.private_speaker is not None and self.private_speaker.speaking:
            cut += self.private_speaker.interrupt()  # what only this caller hears
        current = conv.speaker.current
        if conv.speaker.speaking and may_interrupt(
                self.app.config.voice.barge_in_room,
                current.reply_for if current is not None else None, self.speaker_uri):
            cut += conv.speaker.interrupt()
        # What agents still stream of their replies is not spoken over the caller (who may cut
        # the reply of the last turn: barge_in_room), and the sentences that were queued but
        # never played leave the dialog history.
        answering = current.reply_for if current is not None else conv.last_reply_for
        if may_interrupt(self.app.config.voice.barge_in_room, answering, self.speaker_uri):
            conv.session.stop_streams([u.event_id for u in cut if u.event_id and u.id not in playing])
        if not cut:
            return
        self.app.barge_ins += 1
        metrics.barge_in()
        played = ", ".join(f"{u.label or 'convener'} {u.report.played_ms:.0f} ms"
                           for u in cut if u.report is not None)
        log.info("call %s: barge-in %.0f ms after speech onset (%s)", call.id,
                 (time.monotonic() - onset) * 1000, played or "nothing played yet")

    def _speculate(self, force: bool = False) -> asyncio.Task[FinalTranscript] | None:
        """Decode during the hang-over (offline recognisers); drop it if the caller goes on.

        ``force``: now, whatever the silence so far (the completion decision needs the words)."""
        d = self.detector
        after = self.app.config.voice.speculate_after_ms / 1000
        if d is None or (after <= 0 and not force) or not hasattr(self.speech.asr, "transcribe_pcm"):
            return None
        if d.state != "speech":
            self._spec_dropped = 0  # between utterances: the next one starts afresh
        if self._spec is not None and self._spec[0] != d.speech_end:
            self._spec[1].cancel()  # the caller spoke again: that text is outdated
            self._spec = None
            self._spec_dropped += 1
        retry = self.app.config.voice.speculate_retry_ms / 1000
        busy = bool(getattr(self.speech.asr, "busy", False)) and not self.app.config.voice.speculate_when_busy
        if self._spec is None and should_speculate(d.state == "speech", d.quiet_s, after, retry,
                                                   self._spec_dropped, force, busy):
            audio, rate = d.peek(), self.listener.transport.sample_rate if self.listener.transport else 8000
            self._spec = (d.speech_end, asyncio.create_task(self._transcribe(audio, rate)))
            metrics.speculative_decode()
        return self._spec[1] if self._spec is not None else None

    async def _transcribe(self, audio: bytes, rate: int) -> FinalTranscript:
        bias = self.conversation.bias() if self.conversation else None
        final = await self.speech.asr.transcribe_pcm(audio, rate, bias=bias)  # type: ignore[attr-defined]
        if self.conversation is not None and final.text.strip():
            # Route ahead: if this is the turn's text, its embedding is ready when the turn ends.
            self.conversation.session.prepare(self._correct(None, final.text))
            if final.refined is not None:  # and the beam's words, if they become the turn's
                final.refined.add_done_callback(self._prepare_refined)
        return final

    def _prepare_refined(self, task: asyncio.Future[FinalTranscript]) -> None:
        if task.cancelled() or task.exception() is not None or self.conversation is None:
            return
        if (text := task.result().text).strip():
            self.conversation.session.prepare(self._correct(None, text))

    def _correct(self, call: Call | None, text: str) -> str:
        """Near misses of ``[speech] vocabulary`` become the term (convener.speech.correction)."""
        s = self.app.config.speech
        fixed, changes = correct_text(text, s.vocabulary, s.vocabulary_min_similarity)
        if changes and call is not None:
            log.info("call %s: heard %s", call.id,
                     ", ".join(f"{c.heard!r} as {c.term!r} ({c.similarity:.2f})" for c in changes))
        return fixed

    async def _follow_flux(self, call: Call) -> None:
        """Flux's turn events: eager → the text is held ready; resumed → dropped; end → the turn.

        Nothing is sent on an eager end: the envelope goes out only after Flux's EndOfTurn (or
        our silence limit, with ForceEndTurn), so agents never act on a turn that goes on."""
        assert self._flux is not None and self.detector is not None
        try:
            async for event in self._asr_session.events():
                self._flux_event(call, event)
        except Exception as e:  # the recogniser gave up (AsrError): our VAD still ends turns
            log.warning("call %s: Flux events ended: %s", call.id, e)

    def _flux_event(self, call: Call, event: Any) -> None:
        assert self._flux is not None and self.detector is not None
        action = self._flux.on_event(event)
        if isinstance(action, Prepare):
            log.debug("call %s: Flux eager end of turn: %r prepared", call.id, action.text)
        elif isinstance(action, Cancel):
            log.debug("call %s: Flux turn resumed: %r dropped", call.id, action.text)
        elif isinstance(action, Final):
            waiter, self._flux_wait = self._flux_wait, None
            if waiter is not None and not waiter.done():
                waiter.set_result(action.text)
            elif action.text:  # Flux decided first: end our utterance with its text
                done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                done.set_result(action.text)
                ended = self.detector.end_current()
                if ended is None:  # our VAD heard no turn: keep the words all the same
                    now = time.monotonic() - self._skew
                    ended = TurnEnded(b"", 8000, now, now, now, 0.0)
                self._ended(call, ended, text=done)

    async def _turn(self, call: Call, ended: TurnEnded, turn_id: str,
                    early: asyncio.Future[str] | asyncio.Future[FinalTranscript] | None = None,
                    skew: float = 0.0, paused: TurnPaused | None = None) -> None:
        assert self.conversation is not None
        timings = TurnTimings(turn_id)
        timings.mark("speech_start", ended.speech_start + skew)
        timings.mark("speech_end", ended.speech_end + skew)
        if paused is not None:  # ended by the completion decision, just now
            timings.mark("turn_paused", paused.at + skew)
            timings.mark("end_of_turn")
        timings.mark("end_of_turn", ended.end_of_turn + skew)
        try:
            if early is not None:
                got = await early
                text = got if isinstance(got, str) else (await self._refined(call, got)).text
                if isinstance(early, asyncio.Task):  # not Flux's own text
                    self.speculative_hits += 1
                    metrics.speculative_decode(hit=True)
            else:
                text = await self._recognise(ended, call)
        except Exception as e:
            log.warning("call %s: recognition failed: %s", call.id, e)
            return
        timings.mark("asr_final")
        text = self._correct(call, text)
        if not text.strip():
            log.info("call %s: turn %s had no words", call.id, turn_id)
            return
        log.info("call %s: caller said %r", call.id, text)
        actions = self.actions
        if actions is not None and actions.transferring:
            log.info("call %s: turn %r not routed: a transfer is under way", call.id, text)
            return
        if actions is not None and actions.person_request(text):
            log.info("call %s: the caller asks for a person: transfer to %s", call.id,
                     self.app.config.transfer.person_target)
            self.conversation._log(call.channel.caller.name or "caller", text)
            actions.transfer_to(self.app.config.transfer.person_target)
            self.app.record_turn(timings, text)
            return
        try:
            await self.conversation.turn(text, self.speaker_uri, call.channel.caller.name or "caller",
                                         timings)
        except Exception:
            log.exception("call %s: turn failed", call.id)
            self.conversation.say("Sorry, something went wrong. Please say that again.")
        self.app.record_turn(timings, text)

    async def _refined(self, call: Call, final: FinalTranscript) -> FinalTranscript:
        """The better words a second decode is finding for this turn (``final.refined``), waited
        for at most ``speech.whisper.refine_wait_ms``; else, or on a fault, ``final`` itself."""
        if final.refined is None:
            return final
        wait = self.app.config.speech.whisper.refine_wait_ms / 1000
        try:
            better = await asyncio.wait_for(asyncio.shield(final.refined), wait)
        except TimeoutError:
            log.info("call %s: the beam's words came too late; the greedy ones stand", call.id)
            return final
        except Exception:  # logged by the recogniser
            return final
        if better.text != final.text:
            log.info("call %s: heard with doubt %r, the beam heard %r", call.id, final.text, better.text)
        return better

    async def _recognise(self, ended: TurnEnded, call: Call) -> str:
        asr = self.speech.asr
        if hasattr(asr, "transcribe_pcm"):
            bias = self.conversation.bias() if self.conversation else None
            final = await asr.transcribe_pcm(ended.audio, ended.sample_rate, bias=bias)
            return (await self._refined(call, final)).text
        from convener.speech.asr import EndOfTurn, FinalTranscript

        session = self._asr_session
        if self._flux is not None:  # the text arrives through _follow_flux
            self._flux_wait = asyncio.get_running_loop().create_future()
            await session.end_of_turn()
            return await asyncio.wait_for(self._flux_wait, 5.0)
        await session.end_of_turn()
        parts: list[str] = []
        async for e in session.events():
            if isinstance(e, FinalTranscript):
                parts.append(e.text)
            elif isinstance(e, EndOfTurn):
                return e.text or " ".join(parts)
        return " ".join(parts)

    def on_event(self, call: Call, event: ev.Event) -> None:
        pass

    async def stop(self, call: Call) -> None:
        conv = self.conversation
        if conv is not None and self.speaker_uri is not None:
            conv.private.pop(self.speaker_uri, None)
            conv.actions.pop(self.speaker_uri, None)
        if self.private_speaker is not None:
            await self.private_speaker.close()
        if self.private_voice is not None:
            await self.private_voice.close()
        if self._spec is not None:
            self._spec[1].cancel()
        for t in [self._worker, *self._turn_tasks]:
            if t is not None:
                t.cancel()
        for t in [self._worker, *self._turn_tasks]:
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        if self._asr_session is not None:
            with contextlib.suppress(Exception):
                await self._asr_session.close()
        if self._vad is not None:
            self._vad.close()  # back to the pool: one model per live call, not per call ever made
            self._vad = None


async def _stored_state(app: ConversationServices, room: Room) -> FloorState | None:
    """The stored floor state of ``room``'s conversation, if there is one that can be read."""
    from convener.ofp.errors import ParseError
    from convener.ofp.floor_state import floor_state_from_json

    writer = app.transcripts
    if writer is None or not hasattr(writer, "live_floor_state"):
        return None
    raw = await writer.live_floor_state(room.name)
    if raw is None:
        log.info("room %s: no stored floor state; a new conversation starts", room.name)
        return None
    try:
        return floor_state_from_json(raw)
    except ParseError as e:
        log.warning("room %s: stored floor state unreadable (%s); a new conversation starts", room.name, e)
        return None


async def close_room_conversation(room: Room) -> None:
    conv = room.state.pop(STATE_KEY, None)
    if conv is not None:
        await conv.close()
