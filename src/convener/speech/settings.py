"""Settings of the speech providers (section ``[speech]``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SpeechSettings:
    asr: str = "whisper"
    tts: str = "hibari"
    deepgram_api_key: str = ""
