"""Settings of the spoken conversation (section ``[voice]``)."""

from __future__ import annotations

from dataclasses import dataclass

from convener.settings import ConfigError


@dataclass
class VoiceSettings:
    # Run the spoken conversation on every call (false: calls only join the conference).
    enabled: bool = True
    # Said when a caller joins ("" for none).
    greeting: str = "Hello! You can ask me to book a flight, find a hotel, or check the weather."
    # When no reply has started this long after the caller stopped speaking, say the filler.
    filler_after_ms: int = 1500
    filler: str = "One moment."
    # Stop a reply when the caller starts speaking over it: after barge_in_ms of continuous
    # speech with VAD probability >= barge_in_threshold (shorter than the turn detector's
    # minimum, so the reply stops quickly; stricter, so noise does not cut it).
    barge_in: bool = True
    barge_in_ms: int = 40
    barge_in_threshold: float = 0.35
    # In a room with several callers, who may interrupt a reply: "addressee" (only the caller
    # whose turn it answers; anyone for a reply to nobody in particular) or "anyone".
    barge_in_room: str = "addressee"
    # Start recognising after this much silence, before the turn's hang-over is over: if the
    # caller says nothing more, the text is ready when the turn ends (0 disables). With end of
    # turn by completion the transcript classifier waits for this text, so it starts before
    # [media] turn_stop_ms. Silero's speech probability already trails the voice by ~100 ms,
    # so 50 ms here is ~150 ms of real silence; a decode dropped because the caller went on
    # costs CPU only.
    speculate_after_ms: int = 50
    # Once a speculative decode was dropped because the caller went on (a pause between words),
    # the next one of the same utterance waits for this much silence (convener.app.speculation).
    # 0: as speculate_after_ms.
    speculate_retry_ms: int = 0
    # Speculative decodes also when every decoder is busy (they then queue in front of turns that
    # ended). false: only on idle decoders (convener.app.speculation).
    speculate_when_busy: bool = False
    # Caller identity towards agents: the number is never sent unless [ofp] caller_uri = "tel".
    caller_name: str = "Caller"

    def validate(self) -> None:
        from convener.app.room_policy import POLICIES

        if self.barge_in_room not in POLICIES:
            raise ConfigError(f"barge_in_room: must be one of {', '.join(POLICIES)}")
        if not 0 <= self.speculate_after_ms <= 5000:
            raise ConfigError("speculate_after_ms: must be between 0 and 5000")
        if not 0 <= self.speculate_retry_ms <= 5000:
            raise ConfigError("speculate_retry_ms: must be between 0 and 5000")
        if not 20 <= self.barge_in_ms <= 1000:
            raise ConfigError("barge_in_ms: must be between 20 and 1000")
        if not 0.0 < self.barge_in_threshold < 1.0:
            raise ConfigError("barge_in_threshold: must be between 0 and 1")
        if not 0 <= self.filler_after_ms <= 10000:
            raise ConfigError("filler_after_ms: must be between 0 and 10000")
