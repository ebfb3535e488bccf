"""Deepgram Flux conversational ASR (``/v2/listen``, model flux-general-en), turn events.

Server ``TurnInfo`` messages carry ``event``:
  ``StartOfTurn``          → :class:`SpeechStarted`
  ``Update``               → :class:`PartialTranscript` (about every 0.25 s of audio)
  ``EagerEndOfTurn``       → :class:`PartialTranscript` + :class:`EagerEndOfTurn` (a likely
                             end: work may be prepared, nothing is sent; may be resumed)
  ``TurnResumed``          → :class:`TurnResumed` (the prepared work is void)
  ``EndOfTurn``            → :class:`FinalTranscript` + :class:`EndOfTurn`
also ``Connected``, ``Error``. Our VAD's end of turn sends ``ForceEndTurn``; close sends
``CloseStream``. Query: model, encoding, sample_rate, eot_threshold, eot_timeout_ms, eager_eot_threshold, and one
``keyterm`` per term of the conversation's bias (Flux documents ``keyterm``, not ``keywords``).
"""

from __future__ import annotations

from typing import Any

from convener.speech.asr import (
    Alternative,
    EagerEndOfTurn,
    FinalTranscript,
    PartialTranscript,
    SpeechStarted,
    TurnResumed,
)
from convener.speech.deepgram_live import DeepgramLiveAsr
from convener.speech.deepgram_stream import DeepgramStreamSession


class DeepgramFluxSession(DeepgramStreamSession):
    path = "/v2/listen"
    turn_events = True  # the recogniser decides the end of turn (convener.speech.turns.flux)
    provider = "deepgram-flux"

    def params(self) -> dict[str, object]:
        s = self.settings
        return {
            "model": s.flux_model,
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "eot_threshold": s.flux_eot_threshold,
            "eot_timeout_ms": s.flux_eot_timeout_ms,
            "keyterm": self.bias.keyterms() if self.bias and self.bias.terms else None,
        } | ({"eager_eot_threshold": s.flux_eager_eot_threshold} if s.flux_eager_eot_threshold > 0 else {})

    def finalize_message(self) -> dict[str, str]:
        return {"type": "ForceEndTurn"}

    def on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "TurnInfo":
            return  # Connected, ConfigureSuccess, ...
        event = msg.get("event")
        text = str(msg.get("transcript", "")).strip()
        if event == "StartOfTurn":
            self.emit(SpeechStarted())
            if text:
                self.emit(PartialTranscript(text))
        elif event in ("Update", "EagerEndOfTurn"):
            if text:
                self.emit(PartialTranscript(text))
            if event == "EagerEndOfTurn":
                self.emit(EagerEndOfTurn(text))
        elif event == "TurnResumed":
            self.emit(TurnResumed())
        elif event == "EndOfTurn":
            self.ack_until(float(msg.get("audio_window_end", 0.0)))
            words = msg.get("words") or []
            confs = [float(w.get("confidence", 0.0)) for w in words if isinstance(w, dict)]
            conf = sum(confs) / len(confs) if confs else float(msg.get("end_of_turn_confidence", 0))
            if text:
                self.turn_texts.append(text)
                self.emit(FinalTranscript(text, conf, (Alternative(text, conf),), provider=self.provider))
            self.emit_end_of_turn()


class DeepgramFluxAsr(DeepgramLiveAsr):
    """ASR provider ``deepgram-flux``."""

    name = "deepgram-flux"
    session_class = DeepgramFluxSession
