from __future__ import annotations

import pytest

from convener.cli import main
from convener.speech.fallback_asr import FallbackAsr
from convener.speech.registry import build_asr, clear_cache
from convener.speech.settings import SpeechSettings
from convener.speech.whisper_asr import WhisperAsr


def test_speech_test_command_round_trip(whisper_model: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["speech", "test", "--tts", "hibari"]) == 0
    out, err = capsys.readouterr()
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    assert lines["said"].strip() == "Book a flight to Denver"
    assert "denver" in lines["heard"].lower()
    assert float(lines["wer"]) <= 0.2
    assert "first chunk" in lines["tts"] and "after end of turn" in lines["asr"]
    assert "loading ASR whisper" in err  # progress on stderr


def test_speech_test_rejects_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["speech", "test", "--asr", "siri"]) == 2
    assert "asr" in capsys.readouterr().err


def test_cloud_asr_gets_the_offline_fallback() -> None:
    clear_cache()
    asr = build_asr(SpeechSettings(asr="deepgram"))
    assert isinstance(asr, FallbackAsr)
    assert asr.primary.name == "deepgram" and isinstance(asr.fallback, WhisperAsr)
    assert asr is build_asr(SpeechSettings(asr="deepgram"))
    assert isinstance(build_asr(SpeechSettings()), WhisperAsr)
    assert build_asr(SpeechSettings(asr="deepgram-flux", asr_fallback="")).name == "deepgram-flux"
