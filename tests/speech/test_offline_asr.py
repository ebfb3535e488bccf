from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from convener.audio import float_to_pcm16, resample_pcm16
from convener.speech import whisper_asr
from convener.speech.asr import AsrError, EndOfTurn, FinalTranscript, SpeechStarted, transcribe_frames
from convener.speech.channel import add_noise, frames, pad_silence, through_phone
from convener.speech.espeak_tts import EspeakTts
from convener.speech.settings import WhisperSettings
from convener.speech.tts import synthesize_all
from convener.speech.vad import SileroVad
from convener.speech.wer import corpus_wer, wer
from convener.speech.whisper_asr import WhisperAsr

TINY = WhisperSettings(model="tiny.en")


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="cannot load Whisper model"):
        whisper_asr.load_model(WhisperSettings(model=str(tmp_path)))


async def test_hibari_speech_through_phone_is_recognised(whisper_model: object, phone_speech: bytes) -> None:
    asr = WhisperAsr(TINY, vad_factory=lambda rate: SileroVad(rate))
    eot, events, latency = await transcribe_frames(asr, frames(phone_speech, 8000), 8000)
    assert wer("book a flight to denver", eot.text) <= 0.2, eot.text
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, FinalTranscript, EndOfTurn]
    final = events[1]
    assert isinstance(final, FinalTranscript) and 0.3 < final.confidence <= 1.0
    assert final.alternatives[0].text == final.text
    assert latency < 3.0


async def test_16k_input_and_noise_at_20db(whisper: WhisperAsr, phone_speech: bytes) -> None:
    pairs = []
    for seed in range(4):
        noisy = add_noise(phone_speech, 20.0, seed=seed)
        wide = resample_pcm16(noisy, 8000, 16000)
        eot, _, _ = await transcribe_frames(whisper, frames(wide, 16000), 16000)
        pairs.append(("book a flight to denver", eot.text))
    assert corpus_wer(pairs) <= 0.4, pairs  # measured: 0.4 with window_s=10, 0.2 with 30


async def test_espeak_speech_through_phone_is_recognised(whisper: WhisperAsr) -> None:
    text = "I need a hotel in Chicago for two nights."
    r = await synthesize_all(EspeakTts(), text)
    phone = pad_silence(through_phone(r.pcm, r.sample_rate), 8000, 0.2, 0.4)
    eot, _, _ = await transcribe_frames(whisper, frames(phone, 8000), 8000)
    assert wer(text, eot.text) <= 0.3, eot.text


async def test_silence_gives_an_empty_turn(whisper: WhisperAsr) -> None:
    eot, events, _ = await transcribe_frames(whisper, frames(b"\x00\x00" * 8000, 8000), 8000)
    assert eot.text == ""
    assert not any(isinstance(e, FinalTranscript) for e in events)


async def test_two_turns_in_one_session(whisper: WhisperAsr, phone_speech: bytes) -> None:
    session = await whisper.open_session(8000)
    texts = []
    it = session.events()
    for _ in range(2):
        for f in frames(phone_speech, 8000):
            await session.feed(f)
        await session.end_of_turn()
        async for ev in it:
            if isinstance(ev, EndOfTurn):
                texts.append(ev.text)
                break
    await session.close()
    assert len(texts) == 2 and texts[0] == texts[1] and "Denver" in texts[0]


async def test_decoding_does_not_block_the_event_loop(whisper: WhisperAsr, phone_speech: bytes) -> None:
    import asyncio
    import time

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    await whisper.transcribe_pcm(phone_speech, 8000)
    spent = time.perf_counter() - t0
    task.cancel()
    # the loop ticked through the decode (however fast the decode was), and never stalled
    assert len(gaps) >= int(spent / 0.01 / 2), f"{len(gaps)} ticks in {spent * 1000:.0f} ms"
    assert max(gaps, default=0.0) < 0.15, f"event loop stalled {max(gaps) * 1000:.0f} ms"


def test_float_pcm_helper_roundtrip() -> None:
    x = np.linspace(-0.5, 0.5, 100, dtype=np.float32)
    assert len(float_to_pcm16(x)) == 200


async def test_end_of_turn_returns_at_once_and_turns_stay_in_order(whisper: WhisperAsr, phone_speech: bytes) -> None:
    import time

    session = await whisper.open_session(8000)
    for f in frames(phone_speech, 8000):
        await session.feed(f)
    t0 = time.perf_counter()
    await session.end_of_turn()
    assert time.perf_counter() - t0 < 0.05  # decoding runs in the background
    await session.end_of_turn()  # an empty second turn, queued behind the first
    ends = []
    async for ev in session.events():
        if isinstance(ev, EndOfTurn):
            ends.append(ev.text)
            if len(ends) == 2:
                break
    await session.close()
    assert "Denver" in ends[0] and ends[1] == ""


def test_window_choice() -> None:
    s = TINY  # window_s = 10
    assert whisper_asr.window_seconds(2.0, s) == 10.0
    assert whisper_asr.window_seconds(12.0, s) == 15.0
    assert whisper_asr.window_seconds(28.0, s) is None  # does not fit: standard 30 s path
    assert whisper_asr.window_seconds(2.0, WhisperSettings(window_s=30)) is None


async def test_short_window_gives_the_standard_text_faster(
    whisper_model: object, phone_speech: bytes, hibari_engine: object
) -> None:
    import time

    text = (
        "I need a hotel in Chicago for two nights. Then book a flight to Denver on Friday "
        "morning. Please also reserve a rental car at the airport."
    )
    audio = float_to_pcm16(np.asarray(hibari_engine(text, seed=0), dtype=np.float32))  # type: ignore[operator]
    turn = through_phone(audio, 24000)
    assert 7 < len(turn) / 16000 < 27  # a long turn that still takes the short window
    x = np.frombuffer(resample_pcm16(turn, 8000, 16000), dtype="<i2").astype(np.float32) / 32768
    short_s, full_s = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        short = whisper_asr.decode(whisper_model, x, TINY)
        short_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        full = whisper_asr.decode(whisper_model, x, WhisperSettings(model="tiny.en", window_s=30))
        full_s.append(time.perf_counter() - t0)
    assert wer(text, short.text) <= 0.1, short.text
    assert wer(text, short.text) <= wer(text, full.text) + 0.05
    assert min(short_s) < min(full_s)


def test_turn_longer_than_the_window_takes_the_standard_path(
    whisper_model: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    ok = FinalTranscript("fine", 0.9)
    monkeypatch.setattr(whisper_asr, "decode_standard", lambda *a: calls.append("std") or ok)
    monkeypatch.setattr(whisper_asr, "decode_short_window", lambda *a: calls.append("short") or ok)
    whisper_asr.decode(whisper_model, np.zeros(16000 * 28, np.float32), TINY)
    whisper_asr.decode(whisper_model, np.zeros(16000 * 3, np.float32), TINY)
    assert calls == ["std", "short"]


def test_degenerate_short_window_results_are_redone() -> None:
    from convener.speech.asr import FinalTranscript as F

    assert whisper_asr.looks_degenerate(F("to Denver to Denver to Denver to Denver to Denver to Denver", 0.9))
    assert not whisper_asr.looks_degenerate(F("Book a flight", 0.2))  # heard badly: redoing did not help
    assert whisper_asr.looks_degenerate(F("Book a flight", 0.2), math.exp(-1))  # Whisper's own test, on request
    assert not whisper_asr.looks_degenerate(F("Book a flight to Denver.", 0.8))
    assert not whisper_asr.looks_degenerate(F("", 0.0))


def test_only_repetitive_decodes_are_redone_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short-window decode heard with low confidence is kept (its 30 s redo cost 0.45-0.73 s and
    heard no better); a repetitive one is redone; ``redo_below_confidence`` brings Whisper's
    own confidence test back."""
    redone: list[str] = []
    heard = {"text": FinalTranscript("Well, Kath we've been masked.", 0.3)}
    monkeypatch.setattr(whisper_asr, "decode_short_window", lambda *a, **k: heard["text"])

    def standard(*a: object, **k: object) -> FinalTranscript:
        redone.append("30 s")
        return FinalTranscript("Book a suite in Boston.", 0.5)

    monkeypatch.setattr(whisper_asr, "decode_standard", standard)
    audio = np.zeros(16000 * 2, dtype=np.float32)
    assert whisper_asr.decode(None, audio, WhisperSettings()).text == "Well, Kath we've been masked."
    assert redone == []
    assert whisper_asr.decode(None, audio, WhisperSettings(redo_below_confidence=math.exp(-1))).confidence == 0.5
    assert redone == ["30 s"]
    heard["text"] = FinalTranscript("to Denver to Denver to Denver to Denver to Denver to Denver", 0.9)
    assert whisper_asr.decode(None, audio, WhisperSettings()).text == "Book a suite in Boston."
    with pytest.raises(Exception, match="redo_below_confidence"):
        WhisperSettings(redo_below_confidence=1.5).validate()


def test_words_heard_with_doubt_are_decoded_again_with_the_beam(monkeypatch: pytest.MonkeyPatch) -> None:
    """Greedy under ``doubt_beam_below`` → one more short-window decode with the beam; the
    likelier text is kept, the greedy one when the beam hears nothing better."""
    beams: list[int] = []
    heard = {1: FinalTranscript("Get me on the first flight, and Atlanta.", 0.56, last_word_confidence=0.3),
             5: FinalTranscript("Get me on the first flight to Atlanta.", 0.75)}

    def short(model: object, audio: object, settings: WhisperSettings, *a: object) -> FinalTranscript:
        beams.append(settings.beam_size)
        return heard[settings.beam_size]

    monkeypatch.setattr(whisper_asr, "decode_short_window", short)
    monkeypatch.setattr(whisper_asr, "settings_for_line", lambda audio, settings: settings)  # a clean line
    audio = np.zeros(16000 * 2, dtype=np.float32)
    on = WhisperSettings(doubt_beam_below=0.7)
    assert whisper_asr.decode(None, audio, on).text == "Get me on the first flight to Atlanta."
    assert beams == [1, 5]
    beams.clear()
    assert whisper_asr.decode(None, audio, WhisperSettings()).confidence == 0.56  # off by default
    assert beams == [1]
    beams.clear()
    heard[5] = FinalTranscript("Get me on the first flight, Ned Lando.", 0.5)  # the beam is less sure: greedy
    got = whisper_asr.decode(None, audio, on)
    assert got.text == "Get me on the first flight, and Atlanta." and got.last_word_confidence == 0.3
    beams.clear()
    heard[1] = FinalTranscript("Book a flight to Denver.", 0.9)  # heard well: one decode
    assert whisper_asr.decode(None, audio, on).confidence == 0.9 and beams == [1]
    beams.clear()
    heard[1] = FinalTranscript("Book a flight to Denver.", 0.5)  # the same words from the beam: greedy's kept
    heard[5] = FinalTranscript("Book a flight to Denver.", 0.6)
    assert whisper_asr.decode(None, audio, on).confidence == 0.5 and beams == [1, 5]
    with pytest.raises(Exception, match="doubt_beam_below"):
        WhisperSettings(doubt_beam_below=2).validate()


def fake_decodes(monkeypatch: pytest.MonkeyPatch, greedy: FinalTranscript, wide: FinalTranscript) -> list[int]:
    """The short-window decode answers ``greedy`` at beam 1 and ``wide`` with the beam; returns
    the beam sizes it was asked for, in order (the line is never taken as noisy)."""
    beams: list[int] = []

    def short(model: object, audio: object, settings: WhisperSettings, *a: object) -> FinalTranscript:
        beams.append(settings.beam_size)
        return greedy if settings.beam_size == 1 else wide

    monkeypatch.setattr(whisper_asr, "decode_short_window", short)
    monkeypatch.setattr(whisper_asr, "settings_for_line", lambda audio, settings: settings)
    return beams


def test_the_second_decode_waits_for_an_idle_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every decoder taken, a doubted greedy text is kept as it is: the beam's decode would
    hold up another caller's turn. ``WhisperAsr.idle_decoder`` counts the decode asking."""
    beams = fake_decodes(monkeypatch, FinalTranscript("Get me on the first flight, and Atlanta.", 0.56),
                         FinalTranscript("Get me on the first flight to Atlanta.", 0.75))
    audio = np.zeros(16000 * 2, dtype=np.float32)
    on = WhisperSettings(doubt_beam_below=0.7)
    assert whisper_asr.decode(None, audio, on, "", lambda: False).confidence == 0.56 and beams == [1]
    beams.clear()
    assert whisper_asr.decode(None, audio, on, "", lambda: True).confidence == 0.75 and beams == [1, 5]
    asr = whisper_asr.WhisperAsr(WhisperSettings(parallel=2))
    asr._in_flight = 1  # the asking decode alone: the other decoder is free
    assert asr.idle_decoder() and not asr.busy
    asr._in_flight = 2  # another caller's decode runs beside it
    assert not asr.idle_decoder() and asr.busy


async def test_the_beams_words_follow_the_greedy_ones_that_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    """``doubt_beam_decides = false`` (the default): the decode returns the greedy words, which
    the turn decision reads, with the beam's on their way in ``refined``; with every decoder
    taken, or the beam off, there is no second decode. ``true``: the beam's words come back at once."""
    beams = fake_decodes(monkeypatch, FinalTranscript("Tell me flight soon.", 0.6),
                         FinalTranscript("Show me flights to", 0.8))
    pcm = b"\1\0" * 16000  # 2 s at 8 kHz
    asr = WhisperAsr(WhisperSettings(doubt_beam_below=0.7, parallel=2))
    asr._model = object()
    whisper_asr._warmed.add(id(asr._model))
    final = await asr.transcribe_pcm(pcm, 8000)
    assert final.text == "Tell me flight soon." and beams == [1]  # what decides the turn
    assert final.refined is not None
    better = await final.refined
    assert better.text == "Show me flights to" and beams == [1, 5]
    beams.clear()
    asr._in_flight = 2  # other callers' decodes hold both decoders when the greedy one is done
    final = await asr.transcribe_pcm(pcm, 8000)
    assert final.refined is None and beams == [1]  # every decoder taken: no second decode
    asr._in_flight = 0
    beams.clear()
    decides = WhisperAsr(WhisperSettings(doubt_beam_below=0.7, doubt_beam_decides=True, parallel=2))
    decides._model = asr._model
    final = await decides.transcribe_pcm(pcm, 8000)
    assert final.text == "Show me flights to" and final.refined is None and beams == [1, 5]
    beams.clear()
    off = WhisperAsr(WhisperSettings(parallel=2))
    off._model = asr._model
    final = await off.transcribe_pcm(pcm, 8000)
    assert final.refined is None and beams == [1]


def test_a_sentence_whisper_repeats_is_kept_once() -> None:
    drop = whisper_asr.drop_repeated_sentences
    assert drop("From Boston. From Boston.") == "From Boston."
    assert drop("Can you get the power? Can you get the power? can you get the power") == "Can you get the power?"
    assert drop("No. No, thanks.") == "No. No, thanks."  # not the same sentence
    assert drop("Book a flight. To Denver. Book a flight.") == "Book a flight. To Denver. Book a flight."
    assert drop("Next Friday") == "Next Friday"
    assert drop("") == ""
    assert drop("Yes... yes.") == "Yes..."
    assert whisper_asr._final("From Boston. From Boston.", -0.2).text == "From Boston."
    # what a loop stopped by the length limit leaves: the sentence started again
    assert drop("Is it going to rain in Dallas tomorrow? Is it going to") == "Is it going to rain in Dallas tomorrow?"
    assert drop("Rain in Dallas? Rain in Dallas? Rain in") == "Rain in Dallas?"
    assert drop("Book a flight. Book a hotel") == "Book a flight. Book a hotel"  # not a start of the one before
    assert drop("Book a flight. Book a.") == "Book a flight. Book a."  # finished: said so
    assert drop("Is it going to rain? Is it") == "Is it going to rain?"


def test_a_decode_may_write_what_its_audio_can_hold() -> None:
    """The output limit grows with the audio (a loop stops early) and excludes the prompt (which
    CTranslate2's ``max_length`` counts: a 200-token bias prompt left 20 tokens of text)."""
    assert whisper_asr.output_tokens(0.5) == 21
    assert whisper_asr.output_tokens(3.0) == 46
    assert whisper_asr.output_tokens(60.0) == whisper_asr.MAX_OUTPUT_TOKENS
    assert whisper_asr.PROMPT_TOKENS + 4 + whisper_asr.MAX_OUTPUT_TOKENS <= 448


async def test_busy_while_every_decoder_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """``busy`` (speculation holds back) counts decodes running or queued, against ``parallel``."""
    import asyncio
    import threading

    release = threading.Event()

    def slow_decode(model: object, audio: object, settings: object, prompt: str = "",
                    idle_decoder: object = None) -> FinalTranscript:
        release.wait(5)
        return FinalTranscript(text="ok", confidence=1.0)

    monkeypatch.setattr(whisper_asr, "decode", slow_decode)
    asr = WhisperAsr(WhisperSettings(model="tiny.en", parallel=2))
    asr._model = object()
    whisper_asr._warmed.add(id(asr._model))
    pcm = b"\0\0" * 8000
    first = asyncio.create_task(asr.transcribe_pcm(pcm, 8000))
    await asyncio.sleep(0.05)
    assert not asr.busy
    second = asyncio.create_task(asr.transcribe_pcm(pcm, 8000))
    await asyncio.sleep(0.05)
    assert asr.busy
    release.set()
    assert [f.text for f in await asyncio.gather(first, second)] == ["ok", "ok"]
    assert not asr.busy


def test_parallel_sets_the_number_of_replicas(whisper_model: object) -> None:
    one = whisper_asr.load_model(WhisperSettings(model="tiny.en", parallel=1))
    two = whisper_asr.load_model(WhisperSettings(model="tiny.en", parallel=2))
    assert one is not two and two.model.num_workers == 2 and one.model.num_workers == 1


def test_decode_threads_share_the_cores_among_the_replicas() -> None:
    threads = whisper_asr.decode_threads
    assert threads(0, 2, 2) == 1  # the default on 2 cores: two replicas, one thread each
    assert threads(0, 1, 8) == 8  # one replica gets every core
    assert threads(0, 3, 8) == 2
    assert threads(0, 16, 2) == 1  # never 0 threads
    assert threads(4, 2, 2) == 4  # as configured, even oversubscribed
    assert threads(0, 0, 2) == 2  # defensive: an unresolved parallel counts as one


def test_a_replica_gets_its_share_of_the_cores(whisper_model: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_asr.workers, "cores", lambda: 4)
    monkeypatch.setattr(whisper_asr, "_models", {})  # load afresh, and keep no model built here
    seen: dict[str, int] = {}
    import faster_whisper

    real = faster_whisper.WhisperModel

    def spy(*a: object, **kw: object) -> object:
        seen["cpu_threads"], seen["num_workers"] = kw["cpu_threads"], kw["num_workers"]  # type: ignore[assignment]
        return real(*a, **kw)

    monkeypatch.setattr(faster_whisper, "WhisperModel", spy)
    whisper_asr.load_model(WhisperSettings(model="tiny.en", parallel=2, compute_type="int8"))
    assert seen == {"cpu_threads": 2, "num_workers": 2}

def test_last_word_probability_is_the_product_of_its_tokens() -> None:
    lw = whisper_asr.last_word_probability
    lp = np.log
    # "Please remember my vocalist." -> " vocal" "ist" "."
    assert lw([" my", " vocal", "ist", "."], [lp(0.96), lp(0.08), lp(0.28), lp(0.48)]) == pytest.approx(
        0.08 * 0.28, abs=1e-4)
    assert lw([" flight", " 2", "."], [lp(0.4), lp(0.27), lp(0.6)]) == pytest.approx(0.27, abs=1e-4)
    # a word after a hyphen starts there; punctuation alone is no word
    assert lw([" double", "-", "room", " at", "."], [0.0, 0.0, 0.0, lp(0.36), 0.0]) == pytest.approx(0.36, abs=1e-4)
    assert lw(["Hi", "!"], [lp(0.5), lp(0.9)]) == pytest.approx(0.5, abs=1e-4)
    assert lw(["...", "."], [0.0, 0.0]) is None
    assert lw([" a", " b"], [0.0]) is None  # not one log-probability per token


async def test_whisper_gives_the_last_words_probability(whisper: WhisperAsr, phone_speech: bytes) -> None:
    final = await whisper.transcribe_pcm(phone_speech, 8000)
    assert final.text
    assert final.last_word_confidence is not None and 0.0 < final.last_word_confidence <= 1.0
