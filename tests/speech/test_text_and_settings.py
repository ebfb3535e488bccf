from __future__ import annotations

import pytest

from convener.settings import ConfigError, load_section
from convener.speech.settings import SpeechSettings
from convener.speech.text import split_sentences, strip_ssml
from convener.speech.wer import corpus_wer, wer


def test_strip_ssml_keeps_words_and_turns_breaks_into_pauses() -> None:
    ssml = '<speak>Your flight <emphasis>is booked</emphasis>.<break time="300ms"/>Anything &amp; else?</speak>'
    assert strip_ssml(ssml) == "Your flight is booked., Anything & else?"


def test_split_sentences_handles_abbreviations_and_cuts_a_long_first_sentence() -> None:
    assert split_sentences("Hello Dr. Smith. How are you? Fine!") == [
        "Hello Dr. Smith.",
        "How are you?",
        "Fine!",
    ]
    long_first = "Thanks for calling the travel desk, I can help you book flights hotels and cars today. Bye."
    parts = split_sentences(long_first)
    assert parts[0] == "Thanks for calling the travel desk,"
    assert parts[-1] == "Bye."
    assert len(parts) == 3


def test_wer_normalises_case_punctuation_and_digits() -> None:
    assert wer("Book a flight to Denver.", "book a flight to denver") == 0.0
    assert wer("book a flight to denver", "book of flight to denver") == pytest.approx(0.2)
    assert wer("two nights", "2 nights") == 0.0
    assert corpus_wer([("a b", "a"), ("c d e", "c d e")]) == pytest.approx(0.2)


def test_settings_load_nested_and_reject_unknown_keys() -> None:
    s = load_section(
        SpeechSettings,
        {"asr": "deepgram", "deepgram": {"api_key": "sekrit-123", "endpointing_ms": 200}},
        "speech",
    )
    assert s.deepgram.endpointing_ms == 200
    assert "sekrit-123" not in repr(s)
    with pytest.raises(ConfigError, match=r"speech\.whisper\.bogus"):
        load_section(SpeechSettings, {"whisper": {"bogus": 1}}, "speech")
    with pytest.raises(ConfigError, match=r"speech\.asr"):
        load_section(SpeechSettings, {"asr": "siri"}, "speech")


def test_legacy_deepgram_api_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    s = load_section(SpeechSettings, {"deepgram_api_key": "k1"}, "speech")
    assert s.deepgram.resolved_api_key() == "k1"
    monkeypatch.setenv("DEEPGRAM_API_KEY", "from-env")
    assert SpeechSettings().deepgram.resolved_api_key() == "from-env"
