"""Deepgram live streaming ASR (``/v1/listen``, Nova-3) over our own thin WebSocket client.

Query: model, encoding (mulaw at 8 kHz / linear16 at 16 kHz), sample_rate, channels=1,
interim_results, endpointing, utterance_end_ms, vad_events, smart_format, alternatives; and the
conversation's bias (:mod:`convener.speech.bias`), as Deepgram documents it: for Nova-3 one
``keyterm`` per term (multi-word terms allowed), for older models (Nova-2, Nova, Enhanced, Base)
``keywords=word:intensifier`` (single words). Set once per call, when the stream opens; the
last question an agent asks is not sent (keyterms are terms, not sentences).

Server messages → events:
  ``SpeechStarted``                      → :class:`SpeechStarted`
  ``Results`` is_final=false             → :class:`PartialTranscript` (turn so far + interim)
  ``Results`` is_final=true              → :class:`FinalTranscript` (n-best from alternatives)
  ``Results`` speech_final / from_finalize, ``UtteranceEnd`` → :class:`EndOfTurn`
  ``Metadata`` (answer to CloseStream), ``Error`` → recorded / logged.
Client messages: audio (binary), ``KeepAlive``, ``Finalize`` (our VAD's end of turn),
``CloseStream``.

Each ``end_of_turn()`` call yields exactly one EndOfTurn (from the Finalize answer, or after 2 s
without one). Server endpointing (speech_final, UtteranceEnd) also ends the turn when no
Finalize is pending, so a server EndOfTurn can be followed by an empty one when our VAD ends the
same turn a moment later: treat an empty EndOfTurn as "nothing more heard".
"""

from __future__ import annotations

from typing import Any

import aiohttp

from convener.speech.asr import Alternative, FinalTranscript, PartialTranscript, SpeechStarted
from convener.speech.bias import BiasContext
from convener.speech.deepgram_common import api_key
from convener.speech.deepgram_stream import DeepgramStreamSession
from convener.speech.settings import DeepgramSettings


def parse_alternatives(msg: dict[str, Any]) -> tuple[Alternative, ...]:
    alts = (msg.get("channel") or {}).get("alternatives") or []
    return tuple(Alternative(str(a.get("transcript", "")).strip(), float(a.get("confidence", 0.0))) for a in alts)


def uses_keyterm(model: str) -> bool:
    """Nova-3 (and Flux) take ``keyterm``; the older models take ``keywords``."""
    return model.startswith(("nova-3", "flux"))


def bias_params(model: str, bias: BiasContext | None) -> dict[str, object]:
    if not bias or not bias.terms:
        return {}
    if uses_keyterm(model):
        return {"keyterm": bias.keyterms()}
    return {"keywords": bias.keywords() or None}


class DeepgramLiveSession(DeepgramStreamSession):
    path = "/v1/listen"
    provider = "deepgram"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._speech_started = False

    def params(self) -> dict[str, object]:
        s = self.settings
        return {
            "model": s.model,
            "language": s.language,
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": s.interim_results,
            "endpointing": s.endpointing_ms if s.endpointing_ms > 0 else "false",
            "utterance_end_ms": s.utterance_end_ms if s.interim_results else None,
            "vad_events": s.vad_events,
            "smart_format": s.smart_format,
            "alternatives": s.alternatives if s.alternatives > 1 else None,
            **bias_params(s.model, self.bias),
        }

    def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "SpeechStarted":
            if not self._speech_started:
                self._speech_started = True
                self.emit(SpeechStarted())
        elif kind == "Results":
            self._on_results(msg)
        elif kind == "UtteranceEnd":
            if self.turn_texts and not self.finalize_pending:
                self._end_turn()

    def _on_results(self, msg: dict[str, Any]) -> None:
        alts = parse_alternatives(msg)
        best = alts[0] if alts else Alternative("", 0.0)
        if not msg.get("is_final"):
            if best.text:
                if not self._speech_started:
                    self._speech_started = True
                    self.emit(SpeechStarted())
                self.emit(PartialTranscript(" ".join([*self.turn_texts, best.text])))
            return
        self.ack_until(float(msg.get("start", 0.0)) + float(msg.get("duration", 0.0)))
        if best.text:
            self.turn_texts.append(best.text)
            self.emit(FinalTranscript(best.text, best.confidence, alts, provider=self.provider))
        if msg.get("from_finalize") and self.finalize_pending:
            self._end_turn()
        elif msg.get("speech_final") and self.turn_texts and not self.finalize_pending:
            self._end_turn()

    def _end_turn(self) -> None:
        self._speech_started = False
        self.emit_end_of_turn()


class DeepgramLiveAsr:
    """ASR provider ``deepgram`` (Nova-3 live streaming)."""

    name = "deepgram"
    session_class: type[DeepgramStreamSession] = DeepgramLiveSession

    def __init__(self, settings: DeepgramSettings | None = None) -> None:
        self.settings = settings or DeepgramSettings()
        self._http: aiohttp.ClientSession | None = None

    async def warm(self) -> None:
        api_key(self.settings)  # fails early without a key; the key is never logged
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()

    async def open_session(self, sample_rate: int = 8000, bias: BiasContext | None = None) -> DeepgramStreamSession:
        await self.warm()
        assert self._http is not None
        session = self.session_class(self.settings, self._http, api_key(self.settings), sample_rate)
        session.bias = bias
        await session.connect()
        return session

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
