"""The Deepgram clients against tests/fakes/deepgram_server.py (Deepgram's documented protocol)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from convener.speech.asr import (
    AsrAuthError,
    AsrEvent,
    EndOfTurn,
    FinalTranscript,
    PartialTranscript,
    SpeechStarted,
)
from convener.speech.bias import AgentTerms, BiasContext, build_bias
from convener.speech.channel import frames
from convener.speech.deepgram_flux import DeepgramFluxAsr
from convener.speech.deepgram_live import DeepgramLiveAsr
from convener.speech.deepgram_tts import DeepgramTts
from convener.speech.fallback_asr import FallbackAsr
from convener.speech.settings import DeepgramSettings
from convener.speech.tts import TtsError
from convener.speech.whisper_asr import WhisperAsr
from fakes.deepgram_server import FakeDeepgram

KEY = "dg-test-key-4f1c9a7e"
SILENCE_1S = b"\x00\x00" * 8000


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    server = FakeDeepgram(api_key=KEY)
    await server.start()
    yield server
    await server.stop()


def settings(fake: FakeDeepgram, **kw: object) -> DeepgramSettings:
    s = DeepgramSettings(api_key=KEY, base_url=fake.base_url, **kw)  # type: ignore[arg-type]
    return s


async def feed(session: object, pcm: bytes, pace: float = 0.0) -> None:
    for f in frames(pcm, 8000):
        await session.feed(f)  # type: ignore[attr-defined]
        await asyncio.sleep(pace)


async def until_end_of_turn(session: object, limit: float = 5.0) -> list[AsrEvent]:
    out: list[AsrEvent] = []

    async def collect() -> None:
        async for ev in session.events():  # type: ignore[attr-defined]
            out.append(ev)
            if isinstance(ev, EndOfTurn):
                return

    await asyncio.wait_for(collect(), limit)
    return out


async def test_live_results_partials_final_and_server_endpointing(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000)
    await feed(session, phone_speech)
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()

    conn = fake.connections[0]
    assert conn.params["model"] == "nova-3"
    assert conn.params["encoding"] == "mulaw" and conn.params["sample_rate"] == "8000"
    assert conn.params["interim_results"] == "true" and conn.params["vad_events"] == "true"
    assert conn.params["endpointing"] == "300" and conn.params["utterance_end_ms"] == "1000"
    assert conn.audio_bytes == len(frames(phone_speech, 8000)) * 160  # μ-law: 1 byte/sample
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStarted
    assert PartialTranscript in kinds
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [f.text for f in finals] == ["book a flight to denver"]
    assert len(finals[0].alternatives) == 2 and finals[0].confidence == pytest.approx(0.97)
    eot = events[-1]
    assert isinstance(eot, EndOfTurn) and eot.text == "book a flight to denver"
    assert conn.messages[-1] == "CloseStream" and conn.closed_by == "CloseStream"
    assert session.request_ids  # Metadata answered CloseStream


async def test_utterance_end_ends_the_turn_without_endpointing(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramLiveAsr(settings(fake, endpointing_ms=0))
    session = await asr.open_session(8000)
    await feed(session, phone_speech + SILENCE_1S)  # > utterance_end_ms of silence
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    assert fake.connections[0].params["endpointing"] == "false"
    assert any(m.get("type") == "UtteranceEnd" for m in fake.connections[0].sent)
    assert not any(m.get("speech_final") for m in fake.connections[0].sent)
    assert isinstance(events[-1], EndOfTurn) and events[-1].text == "book a flight to denver"


async def test_end_of_turn_sends_finalize_and_gets_from_finalize(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramLiveAsr(settings(fake, endpointing_ms=0))
    session = await asr.open_session(8000)
    speech_only = phone_speech[: int(2.1 * 16000)]  # stop right after the words
    await feed(session, speech_only)
    await session.end_of_turn()
    events = await until_end_of_turn(session, 2.0)
    await session.close()
    await asr.aclose()
    assert "Finalize" in fake.connections[0].messages
    assert any(m.get("from_finalize") for m in fake.connections[0].sent)
    assert isinstance(events[-1], EndOfTurn) and events[-1].text == "book a flight to denver"


async def test_keepalive_while_no_audio(fake: FakeDeepgram) -> None:
    asr = DeepgramLiveAsr(settings(fake, keepalive_s=0.2))
    session = await asr.open_session(8000)
    await asyncio.sleep(0.8)
    await session.close()
    await asr.aclose()
    assert fake.connections[0].messages.count("KeepAlive") >= 2


async def test_wrong_key_is_401_and_auth_error(fake: FakeDeepgram) -> None:
    asr = DeepgramLiveAsr(DeepgramSettings(api_key="wrong-key-xyz", base_url=fake.base_url))
    with pytest.raises(AsrAuthError, match="401") as info:
        await asr.open_session(8000)
    assert "wrong-key-xyz" not in str(info.value)
    assert "Invalid credentials" in str(info.value)
    await asr.aclose()


async def test_missing_key_is_an_auth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(AsrAuthError, match="DEEPGRAM_API_KEY"):
        await DeepgramLiveAsr(DeepgramSettings()).warm()


async def test_error_frame_and_1011_close_reconnects_and_finishes_the_turn(
    fake: FakeDeepgram, phone_speech: bytes
) -> None:
    fake.error_after_s = 0.8
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000)
    await feed(session, phone_speech, pace=0.001)
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    assert len(fake.connections) == 2
    assert fake.connections[0].closed_by == "error"
    assert any("timeout window" in e for e in session.errors)
    assert isinstance(events[-1], EndOfTurn) and "denver" in events[-1].text


async def test_dropped_connection_reconnects_and_replays_unacknowledged_audio(
    fake: FakeDeepgram, phone_speech: bytes
) -> None:
    fake.drop_after_s = 1.0
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000)
    await feed(session, phone_speech, pace=0.001)
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    assert fake.dropped == 1 and len(fake.connections) == 2
    assert fake.connections[0].closed_by == "drop"
    # nothing was final before the drop, so the whole turn so far was replayed
    total = fake.connections[0].audio_bytes + fake.connections[1].audio_bytes
    assert total > len(phone_speech) // 2
    assert fake.connections[1].audio_bytes >= len(phone_speech) // 2 - 8000
    assert isinstance(events[-1], EndOfTurn) and events[-1].text == "book a flight to denver"


async def test_dropped_connection_without_recovery_falls_back_to_whisper(
    fake: FakeDeepgram, phone_speech: bytes, whisper: WhisperAsr
) -> None:
    fake.drop_after_s = 1.0
    fake.refuse_after_drop = True
    asr = FallbackAsr(DeepgramLiveAsr(settings(fake, reconnect_attempts=2)), whisper)
    session = await asr.open_session(8000)
    assert session.active_name == "deepgram"
    await feed(session, phone_speech, pace=0.001)
    for _ in range(100):  # reconnects fail → switch
        if session.active_name == "whisper":
            break
        await asyncio.sleep(0.05)
    assert session.switched and session.active_name == "whisper"
    assert fake.refused == 2
    await session.end_of_turn()
    events = await until_end_of_turn(session, 10.0)
    await session.close()
    eot = events[-1]
    assert isinstance(eot, EndOfTurn) and "denver" in eot.text.lower()


async def test_fallback_from_the_start_when_the_key_is_refused(
    fake: FakeDeepgram, phone_speech: bytes, whisper: WhisperAsr
) -> None:
    dg = DeepgramLiveAsr(DeepgramSettings(api_key="bad", base_url=fake.base_url))
    asr = FallbackAsr(dg, whisper)
    session = await asr.open_session(8000)
    assert session.switched and "401" in session.switch_reason
    await feed(session, phone_speech)
    await session.end_of_turn()
    events = await until_end_of_turn(session, 10.0)
    await session.close()
    assert "denver" in events[-1].text.lower()  # type: ignore[union-attr]


async def test_api_key_never_appears_in_logs(
    fake: FakeDeepgram, phone_speech: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.error_after_s = 0.5
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000)
    await feed(session, phone_speech, pace=0.001)
    await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    logging.getLogger("convener.speech.deepgram").warning("attempt to leak %s", KEY)
    with pytest.raises(AsrAuthError):
        bad = DeepgramLiveAsr(DeepgramSettings(api_key=KEY + "x", base_url=fake.base_url))
        try:
            await bad.open_session(8000)
        finally:
            await bad.aclose()
    assert "reconnect" in caplog.text  # the drop was logged ...
    assert "<redacted>" in caplog.text  # ... and a leak attempt was redacted
    assert KEY not in caplog.text


async def test_flux_turn_events(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramFluxAsr(settings(fake))
    session = await asr.open_session(8000)
    await feed(session, phone_speech)
    events = await until_end_of_turn(session)
    conn = fake.connections[0]
    assert conn.path == "/v2/listen" and conn.params["model"] == "flux-general-en"
    assert conn.params["eot_threshold"] == "0.7"
    assert isinstance(events[0], SpeechStarted)
    assert any(isinstance(e, PartialTranscript) for e in events)
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert finals and finals[0].text == "book a flight to denver"
    assert finals[0].provider == "deepgram-flux"
    # our VAD ends the next turn early: ForceEndTurn
    await feed(session, phone_speech[: int(1.8 * 16000)])
    await session.end_of_turn()
    events = await until_end_of_turn(session, 2.0)
    assert "ForceEndTurn" in conn.messages
    assert isinstance(events[-1], EndOfTurn) and events[-1].text
    await session.close()
    await asr.aclose()
    assert conn.messages[-1] == "CloseStream"


async def test_aura_tts_streams_linear16_chunks(fake: FakeDeepgram) -> None:
    tts = DeepgramTts(settings(fake))
    chunks = [c async for c in tts.synthesize("Your flight is booked. Goodbye.")]
    await tts.aclose()
    assert [r["text"] for r in fake.speak_requests] == ["Your flight is booked.", "Goodbye."]
    params = fake.speak_requests[0]["params"]
    assert params == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "sample_rate": "8000",
        "container": "none",
    }
    assert len(chunks) > 4 and all(len(c.pcm) % 2 == 0 and c.sample_rate == 8000 for c in chunks)
    total = sum(len(c.pcm) for c in chunks) // 2 / 8000
    expected = (len("Your flight is booked.") + len("Goodbye.")) * fake.speak_seconds_per_char
    assert total == pytest.approx(expected, abs=0.01)


async def test_aura_tts_cancel_closes_the_stream(fake: FakeDeepgram) -> None:
    fake.speak_seconds_per_char = 0.5  # a long reply
    tts = DeepgramTts(settings(fake))
    cancel = asyncio.Event()
    got = 0
    async for _ in tts.synthesize("A very long answer that goes on. And on.", cancel):
        got += 1
        if got == 3:
            cancel.set()
    await tts.aclose()
    await asyncio.sleep(0.1)
    assert got == 3
    assert len(fake.speak_requests) == 1  # the second sentence was never requested
    assert fake.speak_aborted == 1  # server saw the client go away mid-stream


async def test_aura_tts_wrong_key(fake: FakeDeepgram) -> None:
    tts = DeepgramTts(DeepgramSettings(api_key="nope", base_url=fake.base_url))
    with pytest.raises(TtsError, match="401"):
        async for _ in tts.synthesize("Hello."):
            pass
    await tts.aclose()


async def test_drop_while_a_turn_awaits_finalize_hands_that_turn_to_whisper(
    fake: FakeDeepgram, phone_speech: bytes, whisper: WhisperAsr
) -> None:
    fake.answer_finalize = False  # the service goes quiet, then the connection dies
    speech_only = phone_speech[: int(1.9 * 16000)]  # ends inside the words
    fake.drop_after_s = len(speech_only) / 2 / 8000 + 0.1
    fake.refuse_after_drop = True
    asr = FallbackAsr(DeepgramLiveAsr(settings(fake, endpointing_ms=0)), whisper)
    session = await asr.open_session(8000)
    await feed(session, speech_only)
    await session.end_of_turn()  # our VAD: turn over; Finalize sent, never answered
    await feed(session, SILENCE_1S[:3200], pace=0.001)  # the next frames hit the drop
    events = await until_end_of_turn(session, 10.0)
    await session.close()
    assert session.switched and fake.dropped == 1, (events, fake.dropped, fake.refused)
    eot = events[-1]
    assert isinstance(eot, EndOfTurn) and "denver" in eot.text.lower()  # not lost, not repeated
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [f.provider for f in finals] == ["whisper"]


# --- biasing: the documented keyterm / keywords query parameters -----------------------------

def _bias() -> BiasContext:
    return build_bias([AgentTerms("Car Rental", ["rent a car"])], question="Where to?",
                      vocabulary=["Denver", "São Paulo"])


async def test_live_nova3_sends_one_keyterm_per_term(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000, bias=_bias())
    await feed(session, phone_speech)
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    conn = fake.connections[0]
    assert [v for k, v in conn.query if k == "keyterm"] == ["Denver", "São Paulo", "Car Rental", "rent a car"]
    assert not any(k == "keywords" for k, _ in conn.query)
    assert "keyterm=S%C3%A3o%20Paulo" in conn.raw_query and "keyterm=rent%20a%20car" in conn.raw_query
    assert isinstance(events[-1], EndOfTurn) and events[-1].text == "book a flight to denver"


async def test_live_nova2_sends_keywords_with_intensifiers(fake: FakeDeepgram) -> None:
    asr = DeepgramLiveAsr(settings(fake, model="nova-2"))
    session = await asr.open_session(8000, bias=_bias())
    await session.close()
    await asr.aclose()
    conn = fake.connections[0]
    assert conn.params["model"] == "nova-2"
    assert [v for k, v in conn.query if k == "keywords"] == [
        "Denver:2", "São:2", "Paulo:2", "Car:1", "Rental:1", "rent:1", "a:1"]
    assert "keywords=Denver:2&keywords=S%C3%A3o:2" in conn.raw_query  # as documented: word:intensifier
    assert not any(k == "keyterm" for k, _ in conn.query)


async def test_flux_sends_keyterm(fake: FakeDeepgram, phone_speech: bytes) -> None:
    asr = DeepgramFluxAsr(settings(fake))
    session = await asr.open_session(8000, bias=_bias())
    await feed(session, phone_speech, pace=0.0)
    await session.end_of_turn()
    events = await until_end_of_turn(session)
    await session.close()
    await asr.aclose()
    conn = fake.connections[0]
    assert conn.path == "/v2/listen"
    assert [v for k, v in conn.query if k == "keyterm"] == ["Denver", "São Paulo", "Car Rental", "rent a car"]
    assert isinstance(events[-1], EndOfTurn) and events[-1].text


async def test_no_bias_no_bias_parameters(fake: FakeDeepgram) -> None:
    asr = DeepgramLiveAsr(settings(fake))
    session = await asr.open_session(8000)
    await session.close()
    await asr.aclose()
    assert not any(k in ("keyterm", "keywords") for k, _ in fake.connections[0].query)


async def test_fallback_passes_the_bias_to_the_primary(fake: FakeDeepgram, whisper: WhisperAsr) -> None:
    asr = FallbackAsr(DeepgramLiveAsr(settings(fake)), whisper)
    session = await asr.open_session(8000, bias=_bias())
    await session.close()
    assert any(k == "keyterm" for k, _ in fake.connections[0].query)
