"""Speak agents' replies into a room, one at a time, and stop at once on barge-in.

Each reply is synthesised sentence by sentence (the TTS yields the first sentence first) and
fed to the room's pacer as chunks arrive, so the caller hears the first words while the rest is
still being made. Audio URLs in a reply are played by Asterisk directly on the room's bridge.
``interrupt()`` flushes the pacer, cancels synthesis and drops what is queued, and returns how
much of each reply the caller actually heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from convener.app.voice import PrivateVoice, RoomVoice
from convener.ari.errors import AriError
from convener.ari.rest import AriClient
from convener.audio import trim_silence_edges
from convener.media.pacer import PlaybackReport
from convener.speech.text import strip_ssml
from convener.speech.tts import TtsProvider
from convener.timings import TurnTimings

log = logging.getLogger(__name__)


@dataclass
class Utterance:
    """Something to say: text (or SSML), optional audio URLs, and the turn's timing record."""

    text: str
    ssml: str | None = None
    audio_urls: tuple[str, ...] = ()
    label: str = ""  # who is speaking (agent name), for logs and transcripts
    reply_for: str | None = None  # speakerUri of the caller whose turn this answers
    event_id: str = ""  # the OFP dialog event it speaks ("" for convener's own words)
    timings: TurnTimings | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    done: asyncio.Event = field(default_factory=asyncio.Event)
    report: PlaybackReport | None = None
    synthesized_ms: float = 0.0

    def heard_text(self) -> str:
        """The words the caller heard before an interruption (proportional estimate)."""
        if self.report is None or not self.report.interrupted or self.synthesized_ms <= 0:
            return self.text
        share = min(1.0, self.report.played_ms / self.synthesized_ms)
        words = self.text.split()
        return " ".join(words[: round(len(words) * share)])


class Speaker:
    def __init__(self, voice: RoomVoice | PrivateVoice, tts: TtsProvider, ari: AriClient,
                 bridge_id: str, channel_id: str | None = None) -> None:
        self.voice = voice
        self.tts = tts
        self.ari = ari
        self.bridge_id = bridge_id
        # Set for a private speaker: audio URLs are played on this caller's channel only.
        self.channel_id = channel_id
        self._queue: asyncio.Queue[Utterance] = asyncio.Queue()
        self._current: Utterance | None = None
        self._cancel = asyncio.Event()
        self._by_id: dict[str, Utterance] = {}
        self.on_spoken: list[Callable[[Utterance], None]] = []
        voice.on_first_frame.append(self._first_frame)
        voice.on_reply_done.append(self._reply_done)
        self._task = asyncio.create_task(self._run(), name=f"speaker-{bridge_id}")

    @property
    def current(self) -> Utterance | None:
        """The utterance being spoken now (None between utterances)."""
        return self._current

    @property
    def speaking(self) -> bool:
        return self._current is not None or not self._queue.empty()

    def say(self, utt: Utterance) -> Utterance:
        self._by_id[utt.id] = utt
        self._queue.put_nowait(utt)
        return utt

    def interrupt(self) -> list[Utterance]:
        """Barge-in: stop now; returns the utterances that were cut (with what was heard)."""
        cut: list[Utterance] = []
        reports = self.voice.pacer.flush() if self.voice.pacer else {}
        if self._current is not None:
            self._cancel.set()
            cut.append(self._current)
        while not self._queue.empty():
            u = self._queue.get_nowait()
            u.done.set()
            cut.append(u)
        for u in cut:
            rep = reports.get(u.id)
            if rep is not None:
                u.report = rep
        return cut

    def _first_frame(self, reply_id: str, t: float) -> None:
        u = self._by_id.get(reply_id)
        if u is not None and u.timings is not None:
            u.timings.mark("first_audio_out", t)

    def _reply_done(self, report: PlaybackReport) -> None:
        u = self._by_id.get(report.reply_id)
        if u is not None:
            u.report = report
            u.done.set()

    async def _run(self) -> None:
        while True:
            utt = await self._queue.get()
            self._current = utt
            self._cancel = asyncio.Event()
            try:
                await self._speak(utt)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("speaking %r failed", utt.text[:60])
            finally:
                utt.done.set()
                self._current = None
                self._by_id.pop(utt.id, None)
                for cb in self.on_spoken:
                    cb(utt)

    async def _speak(self, utt: Utterance) -> None:
        for url in utt.audio_urls:
            try:
                if self.channel_id:
                    await self.ari.play(self.channel_id, f"sound:{url}")
                else:
                    await self.ari.play_bridge(self.bridge_id, f"sound:{url}")
            except AriError as e:
                log.warning("audio %s not played: %s", url, e)
        text = utt.ssml if (utt.ssml and self.tts.supports_ssml) else strip_ssml(utt.ssml or utt.text)
        if not text.strip():
            return
        pacer = self.voice.pacer
        assert pacer is not None
        async for chunk in self.tts.synthesize(text, cancel=self._cancel):
            if self._cancel.is_set():
                break
            if utt.timings is not None:
                utt.timings.mark("tts_first_chunk")
            # Sentences come padded with silence: none before the first word of a reply, a
            # natural pause (150 ms) after each sentence.
            pcm = trim_silence_edges(chunk.pcm, chunk.sample_rate,
                                     keep_lead_ms=20 if utt.synthesized_ms == 0 else 100)
            utt.synthesized_ms += len(pcm) / 2 / chunk.sample_rate * 1000
            pacer.feed(utt.id, pcm, chunk.sample_rate)
        if self._cancel.is_set():
            return
        pacer.end_reply(utt.id)
        cancelled = asyncio.create_task(self._cancel.wait())
        finished = asyncio.create_task(utt.done.wait())
        try:
            await asyncio.wait({cancelled, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (cancelled, finished):
                t.cancel()

    async def close(self) -> None:
        self.interrupt()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
